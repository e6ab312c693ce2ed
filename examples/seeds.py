"""Every model from the seed Q&A threads (../shared/seeds), as runnable code.

Run any of them through aelab, e.g.::

    aelab inspect examples/seeds.py:SeqVAE --input 4x50x201
    aelab inspect examples/seeds.py:AE --input 1x784 --arg x_dim=784 --arg z_dim=10
"""

from __future__ import annotations

import collections

import torch
import torch.nn.functional as F
from torch import nn


# --- seed 000: the PyTorch tutorial's MNIST MLP (784 -> 512 -> 512 -> 10) -------------------------
class NeuralNetwork(nn.Module):
    """Seed 000: why Linear(512, 512) in a net that should compress? (It is a classifier.)"""

    def __init__(self) -> None:
        super().__init__()
        self.flatten = nn.Flatten()
        self.linear_relu_stack = nn.Sequential(
            nn.Linear(28 * 28, 512),
            nn.ReLU(),
            nn.Linear(512, 512),
            nn.ReLU(),
            nn.Linear(512, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.flatten(x)
        return self.linear_relu_stack(x)


# --- seed 001: a symmetric dense autoencoder -----------------------------------------------------
class AE(nn.Module):
    """Seed 001: which layers encode and which decode?"""

    def __init__(self, x_dim: int = 784, z_dim: int = 10, h_dim: int = 42) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(x_dim, h_dim), nn.ReLU(), nn.Linear(h_dim, z_dim))
        self.decoder = nn.Sequential(nn.Linear(z_dim, h_dim), nn.ReLU(), nn.Linear(h_dim, x_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.encoder(x)
        x = self.decoder(z)
        return x


# --- seed 002: the sigmoid / softmax network, functional activations ------------------------------
class Network(nn.Module):
    """Seed 002: what does nn.Linear(784, 256) compute? Activations are functional calls."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(784, 256)
        self.output = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.sigmoid(self.hidden(x))
        x = F.softmax(self.output(x), dim=1)
        return x


# --- seed 003: the causal-conv sequence VAE ------------------------------------------------------
class Transpose(nn.Module):
    """Swap two dimensions (the seed's custom_nn.Transpose((1, 2)))."""

    def __init__(self, dims: tuple[int, int]) -> None:
        super().__init__()
        self.dims = dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(*self.dims)


class CausalConv1d(nn.Conv1d):
    """A Conv1d that pads on the left only, so step t sees inputs <= t (the seed's custom_nn.CausalConv1d)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 dilation: int = 1) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0, dilation=dilation)
        self.left_pad = (kernel_size - 1) * dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, (self.left_pad, 0)))


def output_to_dist(output: torch.Tensor, dim: int = -1) -> torch.distributions.Normal:
    """Split the last dimension into mean and log-variance halves and make a Normal."""
    mean, log_var = torch.chunk(output, 2, dim=dim)
    return torch.distributions.Normal(mean, torch.exp(0.5 * log_var))


class Encoder(nn.Module):
    """The seed's encoder: (N, T, 201) -> a per-step Normal over 256 latent features, and a sample."""

    def __init__(self, features: int = 201, local_z_size: int = 256) -> None:
        super().__init__()
        self.EncoderOutput = collections.namedtuple("EncoderOutput", ["local_dist", "local_sample"])
        z = local_z_size
        self.local_net = nn.Sequential(
            Transpose((1, 2)),
            CausalConv1d(features, z, kernel_size=3, stride=1),
            nn.Tanh(),
            nn.BatchNorm1d(z),
            CausalConv1d(z, z, kernel_size=3, stride=1),
            nn.Tanh(),
            nn.BatchNorm1d(z),
            CausalConv1d(z, 2 * z, kernel_size=3, stride=1),
            nn.Tanh(),
            nn.BatchNorm1d(2 * z),
            nn.Conv1d(2 * z, 2 * z, kernel_size=1, stride=1),
            Transpose((1, 2)),
        )
        self.light_dropout = nn.Dropout(0.3)
        self.Sigmoid = nn.Sigmoid()

    def forward(self, input: torch.Tensor):  # type: ignore[no-untyped-def]
        # input is a tensor of batch x time x features
        assert len(input.size()) == 3
        local_out = self.local_net(input)
        local_dist = output_to_dist(local_out)
        local_z_sample = local_dist.rsample()
        return self.EncoderOutput(local_dist=local_dist, local_sample=local_z_sample)


class Decoder(nn.Module):
    """The seed's decoder: per-step 1x1 convs from 256 latent features back to 201."""

    def __init__(self, features: int = 201, local_z_size: int = 256) -> None:
        super().__init__()
        self.fc = nn.Sequential(
            Transpose((1, 2)),
            nn.Conv1d(local_z_size, features, kernel_size=1, stride=1),
            nn.Tanh(),
            nn.BatchNorm1d(features),
            nn.Conv1d(features, features, kernel_size=1, stride=1),
            nn.Tanh(),
            nn.BatchNorm1d(features),
            nn.Conv1d(features, features, kernel_size=1, stride=1),
            nn.Tanh(),
            nn.BatchNorm1d(features),
            nn.Conv1d(features, features, kernel_size=1, stride=1),
            nn.Sigmoid(),
            Transpose((1, 2)),
        )

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return self.fc(input)


class SeqVAE(nn.Module):
    """Seed 003: where is the bottleneck of this causal-conv VAE? (201 -> 256 is not a reduction.)"""

    def __init__(self, features: int = 201, local_z_size: int = 256) -> None:
        super().__init__()
        self.encoder = Encoder(features, local_z_size)
        self.decoder = Decoder(features, local_z_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        enc = self.encoder(x)
        return self.decoder(enc.local_sample)


# --- seed 004: convolutions followed by Linear layers --------------------------------------------
class ConvNet2d(nn.Module):
    """Seed 004: 1x28x28 image, Conv2d(1, 16, 5, padding=2), then Linear(16*28*28, 10)."""

    def __init__(self, out_channels: int = 16, num_classes: int = 10) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, out_channels, kernel_size=5, padding=2)
        self.relu = nn.ReLU()
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(out_channels * 28 * 28, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flatten(self.relu(self.conv(x))))


class Conv1dNet(nn.Module):
    """Seed 004: Conv1d(8, 16, kernel_size=3) on length 50, flattened into a Linear (768 = 16 x 48)."""

    def __init__(self, in_channels: int = 8, out_channels: int = 16, length: int = 50, out_features: int = 4):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size=3)
        self.fc = nn.Linear(out_channels * (length - 3 + 1), out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv(x))
        return self.fc(x.view(x.size(0), -1))


class ObjectScorer(nn.Module):
    """Seed 004: a Linear stack over (batch, list, object) inputs scores each object separately."""

    def __init__(self, object_size: int = 12, hidden: int = 32, num_classes: int = 3) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(object_size, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


#: name -> (constructor, an input shape it accepts); tests and docs iterate over this.
SEED_MODELS: dict[str, tuple[type[nn.Module], tuple[int, ...]]] = {
    "NeuralNetwork": (NeuralNetwork, (1, 1, 28, 28)),
    "AE": (AE, (1, 784)),
    "Network": (Network, (1, 784)),
    "SeqVAE": (SeqVAE, (4, 50, 201)),
    "ConvNet2d": (ConvNet2d, (1, 1, 28, 28)),
    "Conv1dNet": (Conv1dNet, (2, 8, 50)),
    "ObjectScorer": (ObjectScorer, (2, 5, 12)),
}
