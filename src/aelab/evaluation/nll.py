"""Importance-sampled log-likelihood of a VAE, with q(z|x) as the proposal (Burda et al., 2016).

    log p(x) ≈ log (1/K) Σ_k p(x|z_k) p(z_k) / q(z_k|x),    z_k ~ q(z|x) = N(mean, exp(log_var))

The estimate is a stochastic lower bound whose expectation rises to log p(x) as K grows; with K = 1
its expectation is the ELBO. Everything is in nats, summed over the data and latent dimensions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

_LOG_2PI = math.log(2.0 * math.pi)


def log_normal(z: Tensor, mean: Tensor, log_var: Tensor) -> Tensor:
    """log N(z; mean, diag(exp(log_var))) per sample, summed over every non-batch dimension."""
    return (-0.5 * (_LOG_2PI + log_var + (z - mean) ** 2 * torch.exp(-log_var))).flatten(1).sum(1)


def log_standard_normal(z: Tensor) -> Tensor:
    """log N(z; 0, I) per sample."""
    return (-0.5 * (_LOG_2PI + z**2)).flatten(1).sum(1)


def kl_to_standard_normal(mean: Tensor, log_var: Tensor) -> Tensor:
    """KL(N(mean, exp(log_var)) || N(0, I)) per sample: 0.5 Σ (mean² + exp(log_var) − 1 − log_var)."""
    return (0.5 * (mean**2 + log_var.exp() - 1.0 - log_var)).flatten(1).sum(1)


@dataclass
class LikelihoodEstimate:
    """Per-row estimates from the same K posterior samples: log p(x) and the ELBO (nats)."""

    log_px: Tensor
    elbo: Tensor
    samples: int


@torch.no_grad()
def importance_sampled(model: Any, x: Tensor, samples: int, max_batch: int = 8192) -> LikelihoodEstimate:
    """log p(x) by importance sampling with K = `samples`, and the K-sample ELBO
    (mean over k of log p(x|z_k) minus the analytic KL), for each row of `x`.

    Works in chunks of at most `max_batch` decoder evaluations (rows × samples). The data are checked
    against the likelihood once here, not once per chunk for every repeated row."""
    model.check_target(x)
    mean, log_var = model.posterior(x)
    n = x.shape[0]
    std = torch.exp(0.5 * log_var)
    chunk = max(1, min(samples, max_batch // max(1, n)))
    log_w_parts, log_lik_sum = [], torch.zeros(n, dtype=torch.float64, device=x.device)
    done = 0
    while done < samples:
        k = min(chunk, samples - done)
        eps = torch.randn((n, k, *mean.shape[1:]), device=x.device, dtype=mean.dtype)
        z = (mean.unsqueeze(1) + std.unsqueeze(1) * eps).flatten(0, 1)  # (n*k, *latent)
        xr = x.repeat_interleave(k, dim=0)
        log_lik = model.log_px_given_z(xr, z, check_range=False).view(n, k)
        m, lv = mean.repeat_interleave(k, dim=0), log_var.repeat_interleave(k, dim=0)
        log_w = log_lik + (log_standard_normal(z) - log_normal(z, m, lv)).view(n, k)
        log_w_parts.append(log_w.to(torch.float64))
        log_lik_sum += log_lik.to(torch.float64).sum(1)
        done += k
    log_w_all = torch.cat(log_w_parts, dim=1)
    log_px = torch.logsumexp(log_w_all, dim=1) - math.log(samples)
    elbo = log_lik_sum / samples - kl_to_standard_normal(mean, log_var).to(torch.float64)
    return LikelihoodEstimate(log_px, elbo, samples)
