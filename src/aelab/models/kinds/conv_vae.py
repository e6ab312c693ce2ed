"""`conv-vae`: the convolutional VAE; the last Linear of the encoder gives mean and log-variance."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from aelab.models.base import VariationalAutoencoder
from aelab.models.config import VAEOptions
from aelab.models.kind import register
from aelab.models.kinds.conv import ConvConfig, ConvMixin, conv_networks


@dataclass(frozen=True)
class ConvVAEConfig(ConvConfig, VAEOptions):
    """A conv config plus beta."""


@register("conv-vae", ConvVAEConfig)
class ConvVAE(ConvMixin, VariationalAutoencoder):
    """Convolutional VAE: the last Linear of the encoder gives mean and log-variance."""

    def networks(self, config: Any) -> tuple[nn.Module, nn.Module]:
        encoder, decoder, self.stages = conv_networks(config, 2 * config.latent)
        return encoder, decoder

    def describe(self) -> list[str]:
        return super().describe() + self.geometry_lines()
