"""Per-row reconstruction metrics, one registry entry each: what it measures, its unit, when it applies."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

_EPS = 1e-7


@dataclass(frozen=True)
class Metric:
    """A per-row metric of a reconstruction `r` of `x` (both (N, *shape)); lower or higher is better."""

    name: str
    unit: str
    better: str
    doc: str
    needs_unit_interval: bool
    compute: Callable[[Tensor, Tensor], Tensor]


def mse(x: Tensor, r: Tensor) -> Tensor:
    """Mean squared error over each row's elements."""
    return ((x.float() - r.float()) ** 2).flatten(1).mean(1)


def psnr(x: Tensor, r: Tensor) -> Tensor:
    """10 log10(1 / MSE) per row for data whose peak value is 1 (MSE floored at 1e-10: at most 100 dB)."""
    return 10.0 * torch.log10(1.0 / mse(x, r).clamp_min(1e-10))


def bce(x: Tensor, r: Tensor) -> Tensor:
    """Mean binary cross-entropy −[x log r + (1−x) log(1−r)] per element, r clamped to [1e-7, 1 − 1e-7]."""
    p = r.float().clamp(_EPS, 1.0 - _EPS)
    xf = x.float()
    return (-(xf * torch.log(p) + (1.0 - xf) * torch.log1p(-p))).flatten(1).mean(1)


#: name -> metric. A new reconstruction metric is one entry.
METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("mse", "", "lower", "mean squared error per element", False, mse),
        Metric("psnr", "dB", "higher", "peak signal-to-noise ratio, peak 1, mean over rows", True, psnr),
        Metric("bce", "nats", "lower", "binary cross-entropy per element", True, bce),
    )
}

#: metrics of VAEs, from the importance sampler (nll.py), described here for the table and the docs.
LIKELIHOOD_METRICS: dict[str, tuple[str, str, str]] = {
    "elbo": ("nats", "higher", "evidence lower bound per row: E_q log p(x|z) − KL(q || p), K samples"),
    "nll": ("nats", "lower", "−log p(x) per row, importance-sampled with K samples from q(z|x)"),
}
