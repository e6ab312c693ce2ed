"""`conv`: the convolutional autoencoder for any (C, L) or (C, H, W) input (`conv-vae` reuses its networks).

Encoder: strided convs (padding (k-1)//2) -> Flatten -> optional hidden Linear layers -> latent.
Decoder: the mirror: Linear -> Reshape to the last conv's (C, *size) -> transposed convs whose
output_padding is solved per stage (geometry.py), so the reconstruction has exactly the input shape
for every size the encoder accepts, odd and non-square ones included.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

from torch import nn

from aelab.models.base import Autoencoder
from aelab.models.blocks import Flatten, Reshape, activation
from aelab.models.config import (
    ACTIVATION,
    LIKELIHOOD,
    AEConfig,
    int_list,
    int_or_int_list,
    option,
)
from aelab.models.geometry import Stage, plan_stages
from aelab.models.kind import register
from aelab.models.kinds.dense import mlp

#: number of spatial dims -> (conv, transposed conv). 3-D would be one more entry (and a DIM_NAMES one).
CONV_LAYERS: dict[int, tuple[type[nn.Module], type[nn.Module]]] = {
    1: (nn.Conv1d, nn.ConvTranspose1d),
    2: (nn.Conv2d, nn.ConvTranspose2d),
}


@dataclass(frozen=True)
class ConvConfig(AEConfig):
    """Channels per stage; kernel and stride for all stages or one per stage."""

    channels: tuple[int, ...] = option((32, 64), int_list(1), "output channels of each conv stage, e.g. [32, 64]")
    kernel: int | tuple[int, ...] = option(3, int_or_int_list, "kernel size, one for all stages or one per stage")
    stride: int | tuple[int, ...] = option(2, int_or_int_list, "stride, one for all stages or one per stage")
    activation: str = option("relu", ACTIVATION, "activation after every conv and hidden layer")
    hidden: tuple[int, ...] = option((), int_list(0), "optional Linear widths between the last conv and the latent")
    likelihood: str = option("gaussian", LIKELIHOOD, "gaussian (MSE / learned sigma) or bernoulli (data in [0,1])")


def _per_stage(name: str, value: int | tuple[int, ...], n_stages: int) -> list[int]:
    if isinstance(value, int):
        return [value] * n_stages
    if len(value) != n_stages:
        raise ValueError(f"{name} has {len(value)} entries but channels has {n_stages}; "
                         f"give one {name} per stage or a single integer")
    return list(value)


def check_conv_shape(input_shape: tuple[int, ...]) -> None:
    """Conv kinds take (C, L) or (C, H, W): say which kind or shape to use otherwise."""
    if len(input_shape) - 1 in CONV_LAYERS:
        return
    shape = "x".join(map(str, input_shape))
    if len(input_shape) == 1:
        hint = "use kind 'dense' for flat vectors, or give channels first, e.g. 1x" + shape
    else:
        hint = "give the per-sample shape without the batch dimension"
    raise ValueError(f"conv kinds need input_shape (C, L) or (C, H, W), got {shape}; {hint}")


def conv_networks(config: Any, latent_out: int) -> tuple[nn.Sequential, nn.Sequential, list[Stage]]:
    """Encoder, mirrored decoder and the stage plan for a ConvConfig."""
    check_conv_shape(config.input_shape)
    in_channels, *spatial = config.input_shape
    n = len(config.channels)
    kernels = _per_stage("kernel", config.kernel, n)
    strides = _per_stage("stride", config.stride, n)
    stages = plan_stages(tuple(spatial), kernels, strides)
    conv, transposed = CONV_LAYERS[len(spatial)]
    widths = [in_channels, *config.channels]

    encoder: list[nn.Module] = []
    for stage, c_in, c_out in zip(stages, widths[:-1], widths[1:]):
        encoder += [conv(c_in, c_out, stage.kernel, stride=stage.stride, padding=stage.padding),
                    activation(config.activation)]
    last_shape = (widths[-1], *stages[-1].out_size)
    flat = math.prod(last_shape)
    encoder += [Flatten(), *mlp([flat, *config.hidden, latent_out], config.activation)]

    decoder: list[nn.Module] = [*mlp([config.latent, *reversed(config.hidden), flat], config.activation),
                                activation(config.activation), Reshape(last_shape)]
    for i in reversed(range(n)):
        stage = stages[i]
        decoder.append(transposed(widths[i + 1], widths[i], stage.kernel, stride=stage.stride,
                                  padding=stage.padding, output_padding=stage.output_padding))
        if i > 0:
            decoder.append(activation(config.activation))
    return nn.Sequential(*encoder), nn.Sequential(*decoder), stages


class ConvMixin:
    """Shared by conv and conv-vae: keeps the stage plan and describes it."""

    stages: list[Stage]
    config: Any
    example_input: ClassVar[tuple[int, ...]] = (1, 12, 10)

    def geometry_lines(self) -> list[str]:
        sizes = [self.stages[0].in_size] + [s.out_size for s in self.stages]
        channels = [self.config.input_shape[0], *self.config.channels]
        path = " -> ".join("x".join(map(str, (c, *s))) for c, s in zip(channels, sizes))
        pads = ", ".join(str(s.output_padding if len(s.output_padding) > 1 else s.output_padding[0])
                         for s in reversed(self.stages))
        return [f"encoder convs: {path}", f"decoder output_padding (solved, per transposed conv): {pads}"]


@register("conv", ConvConfig)
class ConvAE(ConvMixin, Autoencoder):
    """Convolutional autoencoder with a mirrored, shape-exact decoder."""

    def networks(self, config: Any) -> tuple[nn.Module, nn.Module]:
        encoder, decoder, self.stages = conv_networks(config, config.latent)
        return encoder, decoder

    def describe(self) -> list[str]:
        return super().describe() + self.geometry_lines()
