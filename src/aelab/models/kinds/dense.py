"""`dense`: the fully connected autoencoder (the seed's AE(x_dim, z_dim, h_dim) generalised).

Any input shape is flattened to D = prod(shape) and reshaped back at the end; a flat (D,) input
gets no Flatten/Reshape at all, so `build("dense", (784,), 10, hidden=[42])` has exactly the seed
AE's layers and state_dict keys.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

from torch import nn

from aelab.models.base import Autoencoder
from aelab.models.blocks import Flatten, Reshape, activation
from aelab.models.config import ACTIVATION, LIKELIHOOD, AEConfig, int_list, option
from aelab.models.kind import register


@dataclass(frozen=True)
class DenseConfig(AEConfig):
    """Hidden widths from the input towards the latent; the decoder mirrors them."""

    hidden: tuple[int, ...] = option((256, 64), int_list(0), "hidden widths, input side first, e.g. [256, 64]")
    activation: str = option("relu", ACTIVATION, "activation after every hidden layer")
    likelihood: str = option("gaussian", LIKELIHOOD, "gaussian (MSE / learned sigma) or bernoulli (data in [0,1])")


def mlp(widths: list[int], act: str) -> list[nn.Module]:
    """Linear layers through `widths`, an activation after every layer but the last."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(widths)):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(widths) - 2:
            layers.append(activation(act))
    return layers


def dense_networks(input_shape: tuple[int, ...], latent_out: int, latent: int, hidden: tuple[int, ...],
                   act: str) -> tuple[nn.Sequential, nn.Sequential]:
    """Encoder D -> hidden... -> latent_out and decoder latent -> reversed hidden... -> D."""
    flat = math.prod(input_shape)
    encoder = mlp([flat, *hidden, latent_out], act)
    decoder = mlp([latent, *reversed(hidden), flat], act)
    if len(input_shape) > 1:
        encoder.insert(0, Flatten())
        decoder.append(Reshape(input_shape))
    return nn.Sequential(*encoder), nn.Sequential(*decoder)


@register("dense", DenseConfig)
class DenseAE(Autoencoder):
    """Fully connected autoencoder for any input shape."""

    def networks(self, config: Any) -> tuple[nn.Module, nn.Module]:
        return dense_networks(config.input_shape, config.latent, config.latent, config.hidden, config.activation)
