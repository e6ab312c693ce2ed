"""`dense-vae`: the fully connected VAE; the encoder's last Linear gives mean and log-variance."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from aelab.models.base import VariationalAutoencoder
from aelab.models.config import VAEOptions
from aelab.models.kind import register
from aelab.models.kinds.dense import DenseConfig, dense_networks


@dataclass(frozen=True)
class DenseVAEConfig(DenseConfig, VAEOptions):
    """A dense config plus beta."""


@register("dense-vae", DenseVAEConfig)
class DenseVAE(VariationalAutoencoder):
    """Fully connected VAE: the encoder's last Linear gives mean and log-variance."""

    def networks(self, config: Any) -> tuple[nn.Module, nn.Module]:
        return dense_networks(config.input_shape, 2 * config.latent, config.latent, config.hidden,
                              config.activation)
