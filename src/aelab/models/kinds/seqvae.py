"""`seqvae`: the seed's causal-conv sequence VAE for (N, T, F) inputs (e.g. spectrogram frames, F = 201).

Encoder: causal convs over time (step t sees only steps <= t), then a 1x1 conv to a per-step
mean and log-variance. Decoder: per-step 1x1 convs from z_t back to the F features of step t.
Unlike the seed, the latent width is free (it can be smaller than F, which is what makes it a
bottleneck), and width, depth, kernel and dilation are options. There is no BatchNorm: in
training mode it normalises over all time steps and so leaks the future into every step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from aelab.models.base import VariationalAutoencoder
from aelab.models.blocks import CausalConv1d, Transpose, activation
from aelab.models.config import (
    ACTIVATION,
    LIKELIHOOD,
    AEConfig,
    VAEOptions,
    dilation_check,
    option,
    positive_int,
)
from aelab.models.kind import register


@dataclass(frozen=True)
class SeqVAEConfig(AEConfig, VAEOptions):
    """Widths and the causal receptive field of the encoder."""

    width: int = option(256, positive_int, "channels of every hidden layer (encoder and decoder)")
    depth: int = option(3, positive_int, "causal conv layers in the encoder (and 1x1 layers in the decoder)")
    kernel: int = option(3, positive_int, "kernel size of the causal convs")
    dilation: int | str = option(1, dilation_check, "dilation of the causal convs, or 'exponential' (1, 2, 4, ...)")
    activation: str = option("tanh", ACTIVATION, "activation after every hidden layer")
    likelihood: str = option("gaussian", LIKELIHOOD, "gaussian (learned sigma) or bernoulli (data in [0,1])")


def dilations(config: Any) -> list[int]:
    """Dilation of each causal conv layer."""
    if config.dilation == "exponential":
        return [2 ** i for i in range(config.depth)]
    return [int(config.dilation)] * config.depth


def receptive_field(config: Any) -> int:
    """How many steps (the current one included) each z_t sees: 1 + sum (k-1) * d_i."""
    return 1 + sum((config.kernel - 1) * d for d in dilations(config))


@register("seqvae", SeqVAEConfig)
class SeqVAE(VariationalAutoencoder):
    """Causal-conv sequence VAE with a per-step latent of shape (N, T, latent)."""

    codegen_note = " (T may be any length)"
    example_input = (6, 9)

    def networks(self, config: Any) -> tuple[nn.Module, nn.Module]:
        if len(config.input_shape) != 2:
            shape = "x".join(map(str, config.input_shape))
            raise ValueError(f"seqvae needs input_shape (T, F): time steps then features per step, e.g. 100x201; "
                             f"got {shape}")
        features = config.input_shape[1]
        w = config.width
        encoder: list[nn.Module] = [Transpose(1, 2)]
        for i, d in enumerate(dilations(config)):
            encoder += [CausalConv1d(features if i == 0 else w, w, config.kernel, dilation=d),
                        activation(config.activation)]
        encoder += [nn.Conv1d(w, 2 * config.latent, kernel_size=1), Transpose(1, 2)]
        decoder: list[nn.Module] = [Transpose(1, 2)]
        for i in range(config.depth):
            decoder += [nn.Conv1d(config.latent if i == 0 else w, w, kernel_size=1), activation(config.activation)]
        decoder += [nn.Conv1d(w, features, kernel_size=1), Transpose(1, 2)]
        return nn.Sequential(*encoder), nn.Sequential(*decoder)

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return (self.input_shape[0], self.latent_dim)

    def accepts(self, shape: tuple[int, ...]) -> bool:
        """Any number of time steps; the features per step must match."""
        return len(shape) == 2 and shape[1] == self.input_shape[1]

    def check_input(self, x: Any) -> None:
        if x.dim() != 3 or not self.accepts(tuple(x.shape[1:])):
            raise ValueError(f"seqvae expects input of shape (N, T, {self.input_shape[1]}) for any T, "
                             f"got {tuple(x.shape)}")

    def describe(self) -> list[str]:
        features, latent = self.input_shape[1], self.latent_dim
        verdict = (f"compresses {features} -> {latent} per step" if latent < features
                   else f"no per-step compression: latent {latent} >= {features} features")
        return [*super().describe(),
                f"causal receptive field: {receptive_field(self.config)} steps (dilations "
                f"{dilations(self.config)}); {verdict}"]
