"""One file per autoencoder kind; `aelab.models.registry` imports every module here (see kind.py)."""
