"""The kinds registry and the builder: `build(kind, input_shape, latent, **config)`.

A new kind is one entry in KINDS: its config class and its model class.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from aelab.models.base import Autoencoder
from aelab.models.config import AEConfig, make_config
from aelab.models.conv import ConvAE, ConvConfig, ConvVAE, ConvVAEConfig
from aelab.models.dense import DenseAE, DenseConfig, DenseVAE, DenseVAEConfig
from aelab.models.linear import LinearAE, LinearConfig
from aelab.models.sequence import SeqVAE, SeqVAEConfig


class Kind(NamedTuple):
    """A kind: its typed config and its nn.Module (unpacks as `config_class, model_class`)."""

    config: type[AEConfig]
    model: type[Autoencoder]


#: kind name (as used in the API and the CLI) -> (config class, model class)
KINDS: dict[str, Kind] = {
    "dense": Kind(DenseConfig, DenseAE),
    "conv": Kind(ConvConfig, ConvAE),
    "dense-vae": Kind(DenseVAEConfig, DenseVAE),
    "conv-vae": Kind(ConvVAEConfig, ConvVAE),
    "seqvae": Kind(SeqVAEConfig, SeqVAE),
    "linear": Kind(LinearConfig, LinearAE),
}


def build(kind: str, input_shape: Any, latent: int, **config: Any) -> Autoencoder:
    """An autoencoder of `kind` for per-sample `input_shape` (no batch dim) with a `latent`-sized code.

    Raises ValueError, one sentence saying what to change, for an unknown kind or option, a bad
    value, or a geometry the input cannot support.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; known kinds: {', '.join(KINDS)}")
    config_class, model_class = KINDS[kind]
    return model_class(make_config(config_class, kind, input_shape, latent, config))


def from_config(kind: str, config: Mapping[str, Any]) -> Autoencoder:
    """Rebuild exactly the model whose `config_dict()` is `config` (checkpoints store it as JSON)."""
    options = dict(config)
    stored = options.pop("kind", kind)
    if stored != kind:
        raise ValueError(f"config is for kind {stored!r}, not {kind!r}")
    missing = [key for key in ("input_shape", "latent") if key not in options]
    if missing:
        raise ValueError(f"config lacks {' and '.join(missing)}; pass a dict made by model.config_dict()")
    return build(kind, options.pop("input_shape"), options.pop("latent"), **options)
