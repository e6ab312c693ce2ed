"""`linear`: the linear autoencoder x -> W_e x + b_e -> W_d z + b_d, the reference that recovers PCA.

Baldi & Hornik (1989): trained on squared error, every minimum of a linear autoencoder with k < D
hidden units spans the top-k principal subspace of the (centred) data, so its reconstruction error
equals PCA-k's. tests/models/test_linear.py checks both on sklearn's digits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from torch import nn

from aelab.models.base import Autoencoder
from aelab.models.config import AEConfig
from aelab.models.kind import register
from aelab.models.kinds.dense import dense_networks


@dataclass(frozen=True)
class LinearConfig(AEConfig):
    """Only the shared options (noise, sparsity): any other choice would make it non-linear."""


@register("linear", LinearConfig)
class LinearAE(Autoencoder):
    """One Linear each way, no activation, Gaussian (squared error) reconstruction."""

    def networks(self, config: Any) -> tuple[nn.Module, nn.Module]:
        flat = math.prod(config.input_shape)
        if config.latent >= flat:
            raise ValueError(f"linear: latent {config.latent} must be smaller than the input size {flat}, "
                             f"or the best linear autoencoder is the identity")
        return dense_networks(config.input_shape, config.latent, config.latent, (), "relu")
