"""A small VQ-VAE around vector-quantize-pytorch's `VectorQuantize` (conv encoder, codebook, conv decoder).

    aelab inspect examples/vqvae.py:VQVAE --input 2x3x32x32
"""

from __future__ import annotations

import torch
from torch import nn


class VQVAE(nn.Module):
    """(N, 3, H, W) -> (N, dim, H/4, W/4) latent, snapped to `codebook_size` codes (EMA-updated while
    training, straight-through gradient), -> (N, 3, H, W). Returns (reconstruction, code indices, commit loss)."""

    def __init__(self, dim: int = 64, codebook_size: int = 512, hidden: int = 64) -> None:
        super().__init__()
        from vector_quantize_pytorch import VectorQuantize

        self.encoder = nn.Sequential(nn.Conv2d(3, hidden, 4, stride=2, padding=1), nn.ReLU(),
                                     nn.Conv2d(hidden, dim, 4, stride=2, padding=1))
        self.vq = VectorQuantize(dim=dim, codebook_size=codebook_size, accept_image_fmap=True, decay=0.8,
                                 commitment_weight=1.0)
        self.decoder = nn.Sequential(nn.ConvTranspose2d(dim, hidden, 4, stride=2, padding=1), nn.ReLU(),
                                     nn.ConvTranspose2d(hidden, 3, 4, stride=2, padding=1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        quantized, indices, commit_loss = self.vq(self.encoder(x))
        return self.decoder(quantized), indices, commit_loss
