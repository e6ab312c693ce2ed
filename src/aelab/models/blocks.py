"""Small layers the autoencoders are made of, and the activation registry.

Every class here imports only torch, so `aelab build --out` can copy its source verbatim into a
standalone file (see codegen.py): what the user pastes is exactly what aelab ran.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CausalConv1d(nn.Conv1d):
    """A Conv1d over (N, C, T) padded on the left only, by (kernel_size - 1) * dilation.

    Output step t is computed from input steps t - (k-1)·d ... t, so it never sees the future;
    with stride 1 the output has the input's length T.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 dilation: int = 1, bias: bool = True) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0,
                         dilation=dilation, bias=bias)
        self.left_pad = (kernel_size - 1) * dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, (self.left_pad, 0)))


class Transpose(nn.Module):
    """Swap two dimensions, e.g. (N, T, F) <-> (N, F, T) around a Conv1d over time."""

    def __init__(self, dim0: int, dim1: int) -> None:
        super().__init__()
        self.dim0 = dim0
        self.dim1 = dim1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(self.dim0, self.dim1)

    def extra_repr(self) -> str:
        return f"{self.dim0}, {self.dim1}"


class Flatten(nn.Module):
    """(N, *shape) -> (N, prod(shape)): one vector per sample, whatever the batch size."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


class Reshape(nn.Module):
    """(N, prod(shape)) -> (N, *shape): the per-sample shape is explicit, the batch size is kept.

    This replaces the hard-coded `view(-1, 512, 2, 2)` of copied autoencoders: the builder
    computes `shape` from the encoder's geometry for the actual input shape.
    """

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)

    def extra_repr(self) -> str:
        return f"{self.shape}"


#: activation name (as users write it in configs) -> layer class. A new activation is one entry.
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "leaky_relu": nn.LeakyReLU,
    "silu": nn.SiLU,
    "elu": nn.ELU,
    "sigmoid": nn.Sigmoid,
}


def activation(name: str) -> nn.Module:
    """A fresh activation layer by registry name (validated by the config before we get here)."""
    return ACTIVATIONS[name]()
