"""Small models whose forward draws random numbers outside torch (NumPy, Python's `random`), and their truths."""

from __future__ import annotations

import random

import numpy as np
import torch
from numpy.random import rand as imported_rand
from torch import nn


class NumpyEncoder(nn.Module):
    """A LayerDrop written with NumPy, as transformers' Wav2Vec2 adapter does: the loop draws, not the layers."""

    def __init__(self, width: int = 8, depth: int = 4, p: float = 0.5) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            if self.training and np.random.rand() < self.p:
                continue
            x = layer(x)
        return x


class NumpyLayerDrop(nn.Module):
    """An embedding, the NumPy LayerDrop encoder (`encoder`), a head."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(4, 8)
        self.encoder = NumpyEncoder()
        self.head = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(self.embed(x)))


class PythonBlock(nn.Module):
    """A block that skips itself in training when `random.random() < p` (MusicGen's `random.uniform` style)."""

    def __init__(self, width: int = 8, p: float = 0.5) -> None:
        super().__init__()
        self.fc = nn.Linear(width, width)
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and random.random() < self.p:
            return x
        return torch.relu(self.fc(x))


class PythonLayerDrop(nn.Module):
    """Three blocks under `blocks`, each drawing from Python's `random`."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*(PythonBlock() for _ in range(3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


class Deterministic(nn.Module):
    """No randomness: a seeded NumPy Generator made in forward gives the same numbers every time."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = float(np.random.default_rng(0).random())
        return self.fc(x) * scale


class HeldGenerator(nn.Module):
    """A module holding its own NumPy Generator (`noise.rng`) and drawing from it in forward."""

    def __init__(self) -> None:
        super().__init__()
        self.rng = np.random.default_rng(1234)
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) if self.rng.random() < 0.5 else x


class HeldNoise(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.noise = HeldGenerator()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.noise(x)


class ImportedName(nn.Module):
    """Draws through a name imported from numpy.random before the run: only NumPy's state shows it."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) if imported_rand() < 0.5 else x


class DrawsInEval(nn.Module):
    """Draws whatever the mode, uses the number only in training (transformers' Wav2Vec2Adapter)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = np.random.random()
        return x if self.training and p < 0.5 else self.fc(x)
