"""Models with the shape mistakes users make, for `aelab doctor` (see docs/doctor.md)."""

from __future__ import annotations

import torch
from torch import nn


class ConvNet2dWrong(nn.Module):
    """Seed 004's conv net with the Linear sized by guess: Linear(512, 10) after a 16x28x28 conv."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 16, kernel_size=5, padding=2)
        self.relu = nn.ReLU()
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(512, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flatten(self.relu(self.conv(x))))


class Conv1dNetWrong(nn.Module):
    """Conv1d(8, 16, k=3) on length 50 then Linear(16 * 50, 4): forgets that the conv shortens 50 to 48."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(8, 16, kernel_size=3)
        self.fc = nn.Linear(16 * 50, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv(x))
        return self.fc(x.view(x.size(0), -1))
