"""Autoencoder architectures whose bottleneck is easy to misread, as runnable code.

Each one shows a case `aelab inspect --bottleneck-only` has to get right::

    aelab inspect examples/architectures.py:UNet --input 2x3x64x64 --bottleneck-only
    aelab inspect examples/architectures.py:LSTMAE --input 4x30x8 --bottleneck-only
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class TiedAE(nn.Module):
    """Tied weights: the decoder applies the encoder's weight transposed (W^T), so it owns only a bias."""

    def __init__(self, features: int = 784, latent: int = 64) -> None:
        super().__init__()
        self.encoder = nn.Linear(features, latent)
        self.decoder_bias = nn.Parameter(torch.zeros(features))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.encoder(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(F.linear(z, self.encoder.weight.t(), self.decoder_bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


class LSTMAE(nn.Module):
    """Sequence autoencoder: the last hidden state (N, hidden) summarises the whole (N, T, features) sequence and
    is repeated at every step for the decoder LSTM."""

    def __init__(self, features: int = 8, hidden: int = 16) -> None:
        super().__init__()
        self.encoder = nn.LSTM(features, hidden, batch_first=True)
        self.decoder = nn.LSTM(hidden, hidden, batch_first=True)
        self.head = nn.Linear(hidden, features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (h, _) = self.encoder(x)
        z = h[-1]  # (N, hidden)
        steps = z.unsqueeze(1).repeat(1, x.size(1), 1)
        out, _ = self.decoder(steps)
        return self.head(out)


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU())


class UNet(nn.Module):
    """U-Net: a narrow middle (8 x 16 x 16 = 2,048 per sample for a 3 x 64 x 64 input), but skip connections
    hand the full-resolution encoder features to the decoder around it."""

    def __init__(self, channels: int = 3, width: int = 16) -> None:
        super().__init__()
        self.enc1 = _block(channels, width)
        self.enc2 = _block(width, 2 * width)
        self.pool = nn.MaxPool2d(2)
        self.mid = nn.Sequential(nn.Conv2d(2 * width, 8, 1), nn.ReLU())
        self.up2 = nn.ConvTranspose2d(8, 2 * width, 2, stride=2)
        self.dec2 = _block(4 * width, width)
        self.up1 = nn.ConvTranspose2d(width, width, 2, stride=2)
        self.dec1 = _block(2 * width, width)
        self.out = nn.Conv2d(width, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.enc1(x)  # (N, 16, 64, 64)
        e2 = self.enc2(self.pool(e1))  # (N, 32, 32, 32)
        m = self.mid(self.pool(e2))  # (N, 8, 16, 16)
        d2 = self.dec2(torch.cat([self.up2(m), e2], dim=1))
        d1 = self.dec1(torch.cat([self.up1(d2), e1], dim=1))
        return self.out(d1)


class ConvAE(nn.Module):
    """Convolutional AE for 3 x 64 x 64 images: three stride-2 convs to 64 x 8 x 8, a Linear to the code, and the
    mirror image back."""

    def __init__(self, channels: int = 3, latent: int = 128) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(channels, 16, 4, stride=2, padding=1), nn.ReLU(),  # 32 x 32
            nn.Conv2d(16, 32, 4, stride=2, padding=1), nn.ReLU(),  # 16 x 16
            nn.Conv2d(32, 64, 4, stride=2, padding=1), nn.ReLU(),  # 8 x 8
            nn.Flatten(), nn.Linear(64 * 8 * 8, latent),
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent, 64 * 8 * 8), nn.ReLU(), nn.Unflatten(1, (64, 8, 8)),
            nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(32, 16, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(16, channels, 4, stride=2, padding=1), nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class AsymmetricAE(nn.Module):
    """Named `encoder`/`decoder`, but the decoder narrows further (64 -> 16) before it widens: by the data path,
    the first decoder layer still encodes."""

    def __init__(self, features: int = 784) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(features, 64), nn.ReLU())
        self.decoder = nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class ReparamVAE(nn.Module):
    """A dense VAE that samples by hand: z = mu + exp(log_var / 2) * randn_like(mu)."""

    def __init__(self, features: int = 784, hidden: int = 256, latent: int = 16) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(features, hidden), nn.ReLU())
        self.fc_mu = nn.Linear(hidden, latent)
        self.fc_log_var = nn.Linear(hidden, latent)
        self.head = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, features), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = self.body(x)
        mu, log_var = self.fc_mu(h), self.fc_log_var(h)
        z = mu + torch.exp(0.5 * log_var) * torch.randn_like(mu)
        return self.head(z), mu, log_var


class DenoisingAE(nn.Module):
    """Noise is added to the input, not sampled in a latent: a plain AE whose bottleneck is its narrowest layer."""

    def __init__(self, features: int = 784, latent: int = 32, noise: float = 0.1) -> None:
        super().__init__()
        self.noise = noise
        self.net = nn.Sequential(nn.Linear(features, 128), nn.ReLU(), nn.Linear(128, latent), nn.ReLU(),
                                 nn.Linear(latent, 128), nn.ReLU(), nn.Linear(128, features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x + self.noise * torch.randn_like(x))


class OvercompleteAE(nn.Module):
    """A latent wider than the input (20 -> 64 -> 20): nothing in the shapes forces compression."""

    def __init__(self, features: int = 20, latent: int = 64) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(features, latent), nn.ReLU())
        self.decoder = nn.Linear(latent, features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class ResidualAE(nn.Module):
    """The input is added back to the output (y = x + f(x)): the whole input bypasses the 8-wide middle."""

    def __init__(self, features: int = 64, latent: int = 8) -> None:
        super().__init__()
        self.f = nn.Sequential(nn.Linear(features, latent), nn.ReLU(), nn.Linear(latent, features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.f(x)


class GatedConvAE(nn.Module):
    """A squeeze-excitation gate (N, C, 1, 1) rescales the channels: narrow, but a side branch, not the latent."""

    def __init__(self, channels: int = 3, width: int = 32) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, width, 3, stride=2, padding=1)
        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 4), nn.ReLU(),
                                  nn.Linear(4, width), nn.Sigmoid())
        self.squeeze = nn.Conv2d(width, 8, 1)
        self.up = nn.ConvTranspose2d(8, channels, 2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv(x))
        h = h * self.gate(h).view(h.size(0), -1, 1, 1)
        return self.up(torch.relu(self.squeeze(h)))

