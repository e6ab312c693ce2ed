"""Autoencoders built for any input shape: dense, conv, their VAEs, a causal sequence VAE, linear.

    model = build("conv-vae", (1, 28, 28), latent=16, channels=[32, 64], likelihood="bernoulli")
    out = model(x)            # AEOutput(reconstruction, latent, mean, log_var)
    loss = model.loss(x)      # LossOutput(total, terms={"reconstruction": ..., "kl": ...})
    model.has(Capability.POSTERIOR)   # what a kind offers, declared by the kind (kind.py)

See docs/models.md.
"""

from __future__ import annotations

from aelab.models.base import AEOutput, Autoencoder, KLControl, LossOutput, VariationalAutoencoder
from aelab.models.kind import Capability
from aelab.models.likelihood import likelihood_for
from aelab.models.registry import KINDS, Kind, build, from_config

__all__ = [
    "KINDS",
    "AEOutput",
    "Autoencoder",
    "Capability",
    "KLControl",
    "Kind",
    "LossOutput",
    "VariationalAutoencoder",
    "build",
    "from_config",
    "likelihood_for",
]
