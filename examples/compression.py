"""A copy of compressai's `FactorizedPrior` (Ballé et al. 2018, "bmshj2018-factorized"), written out.

compressai cannot be installed beside torch 2.13, so its layers are copied here as compressai 1.2
writes them: GDN with non-negative reparametrisation, the `EntropyBottleneck` density model (a small
per-channel MLP over the (C, 1, N·H·W) permuted latent, additive uniform noise in training), and
the analysis/synthesis transforms. Like compressai's, the constructors use the legacy `torch.Tensor(...)`
constructor, which refuses the meta device (build with `--device cpu`).

    aelab inspect examples/compression.py:FactorizedPrior --input 1x3x64x64 --device cpu
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


class NonNegativeParametrizer(nn.Module):
    """x -> max(x, bound)² - pedestal: keeps GDN's beta and gamma non-negative while training."""

    def __init__(self, minimum: float = 0.0, reparam_offset: float = 2**-18) -> None:
        super().__init__()
        self.pedestal = reparam_offset**2
        self.register_buffer("bound", torch.Tensor([(minimum + self.pedestal) ** 0.5]))

    def init(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(torch.max(x + self.pedestal, torch.tensor(self.pedestal)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.max(x, self.bound) ** 2 - self.pedestal


class GDN(nn.Module):
    """Generalized divisive normalisation: y = x / sqrt(beta + gamma · x²) (inverse: times the sqrt)."""

    def __init__(self, in_channels: int, inverse: bool = False, beta_min: float = 1e-6,
                 gamma_init: float = 0.1) -> None:
        super().__init__()
        self.inverse = inverse
        self.beta_reparam = NonNegativeParametrizer(minimum=beta_min)
        self.beta = nn.Parameter(self.beta_reparam.init(torch.ones(in_channels)))
        self.gamma_reparam = NonNegativeParametrizer()
        self.gamma = nn.Parameter(self.gamma_reparam.init(gamma_init * torch.eye(in_channels)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.size(1)
        beta = self.beta_reparam(self.beta)
        gamma = self.gamma_reparam(self.gamma).reshape(c, c, 1, 1)
        norm = F.conv2d(x**2, gamma, beta)
        norm = torch.sqrt(norm) if self.inverse else torch.rsqrt(norm)
        return x * norm


class EntropyBottleneck(nn.Module):
    """compressai's factorized density: per-channel cumulative logits through (1, 3, 3, 3, 3, 1) filters."""

    def __init__(self, channels: int, tail_mass: float = 1e-9, init_scale: float = 10.0,
                 filters: tuple[int, ...] = (3, 3, 3, 3), likelihood_bound: float = 1e-9) -> None:
        super().__init__()
        self.channels = channels
        self.filters = filters
        self.init_scale = init_scale
        self.likelihood_bound = likelihood_bound
        dims = (1, *filters, 1)
        scale = init_scale ** (1 / (len(filters) + 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for i in range(len(filters) + 1):
            matrix = torch.Tensor(channels, dims[i + 1], dims[i])
            matrix.data.fill_(math.log(math.expm1(1 / scale / dims[i + 1])))
            self.matrices.append(nn.Parameter(matrix))
            bias = torch.Tensor(channels, dims[i + 1], 1)
            nn.init.uniform_(bias.data, -0.5, 0.5)
            self.biases.append(nn.Parameter(bias))
            if i < len(filters):
                factor = torch.Tensor(channels, dims[i + 1], 1)
                nn.init.zeros_(factor.data)
                self.factors.append(nn.Parameter(factor))
        self.quantiles = nn.Parameter(torch.Tensor([-init_scale, 0, init_scale]).repeat(channels, 1, 1))
        target = math.log(2 / tail_mass - 1)
        self.register_buffer("target", torch.Tensor([-target, 0, target]))

    def _logits_cumulative(self, inputs: torch.Tensor) -> torch.Tensor:
        logits = inputs
        for i in range(len(self.filters) + 1):
            logits = torch.matmul(F.softplus(self.matrices[i]), logits) + self.biases[i]
            if i < len(self.factors):
                logits = logits + torch.tanh(self.factors[i]) * torch.tanh(logits)
        return logits

    def _likelihood(self, inputs: torch.Tensor) -> torch.Tensor:
        lower = self._logits_cumulative(inputs - 0.5)
        upper = self._logits_cumulative(inputs + 0.5)
        sign = -torch.sign(lower + upper)
        return torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        perm = [1, 0, *range(2, x.dim())]  # (N, C, H, W) -> (C, N, H, W): one density per channel
        x = x.permute(*perm).contiguous()
        shape = x.size()
        values = x.reshape(x.size(0), 1, -1)
        if self.training:
            outputs = values + torch.empty_like(values).uniform_(-0.5, 0.5)
        else:
            medians = self.quantiles[:, :, 1:2]
            outputs = torch.round(values - medians) + medians
        likelihood = self._likelihood(outputs).clamp_min(self.likelihood_bound)
        outputs = outputs.reshape(shape).permute(*perm).contiguous()
        likelihood = likelihood.reshape(shape).permute(*perm).contiguous()
        return outputs, likelihood


def _conv(c_in: int, c_out: int, k: int = 5, s: int = 2) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, k, stride=s, padding=k // 2)


def _deconv(c_in: int, c_out: int, k: int = 5, s: int = 2) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(c_in, c_out, k, stride=s, output_padding=s - 1, padding=k // 2)


class FactorizedPrior(nn.Module):
    """bmshj2018-factorized: g_a (4 stride-2 convs + GDN), the entropy bottleneck, g_s (mirrored, IGDN)."""

    def __init__(self, N: int = 128, M: int = 192) -> None:
        super().__init__()
        self.entropy_bottleneck = EntropyBottleneck(M)
        self.g_a = nn.Sequential(_conv(3, N), GDN(N), _conv(N, N), GDN(N), _conv(N, N), GDN(N), _conv(N, M))
        self.g_s = nn.Sequential(_deconv(M, N), GDN(N, inverse=True), _deconv(N, N), GDN(N, inverse=True),
                                 _deconv(N, N), GDN(N, inverse=True), _deconv(N, 3))

    def forward(self, x: torch.Tensor) -> dict[str, Any]:
        y = self.g_a(x)
        y_hat, y_likelihoods = self.entropy_bottleneck(y)
        x_hat = self.g_s(y_hat)
        return {"x_hat": x_hat, "likelihoods": {"y": y_likelihoods}}
