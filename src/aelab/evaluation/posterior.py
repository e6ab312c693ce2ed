"""Diagnostics of a VAE's posterior: KL per latent dimension, active units, collapse and scale warnings.

- KL per dimension (nats): KL(q(z_d|x) || N(0, 1)) averaged over rows (and over time steps for a
  per-step latent (N, T, D), whose dimensions are the D features).
- Active units (Burda et al., 2016): dimension d is active when Cov_x(E_q[z_d|x]) > 0.01, i.e. the
  posterior mean moves with the input; an inactive dimension carries no information about x.
- Posterior collapse: the KL is ~0 (< 0.01 nats per sample) or fewer than 10% of the units are active.
- Scale: the reconstruction and the KL per sample and per element side by side; a KL per sample above
  the reconstruction per sample is the signature of a loss that averages the reconstruction over
  elements but sums the KL (a beta-VAE with beta = the element count, by accident).
- Data range: targets beyond [0, 1] behind outputs that stay in [0, 1] (a sigmoid on 0..255 data).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor

#: the first word of each warning (the evaluate verb prints them as warnings, not notes)
WARNINGS = ("posterior collapse", "scale", "data range")
ACTIVE_THRESHOLD = 0.01
COLLAPSE_KL = 0.01
COLLAPSE_SHARE = 0.10


@dataclass
class PosteriorReport:
    """The numbers behind the warnings, per latent dimension and in total."""

    dims: int
    kl_per_dim: list[float]  # nats, mean over rows (and steps)
    activity: list[float]  # Cov_x(E_q[z_d|x])
    active_units: int
    kl_per_sample: float  # nats, summed over every latent value of a sample
    kl_per_element: float  # per latent value
    recon_per_sample: float | None = None  # the reconstruction error summed over a sample's values
    recon_per_element: float | None = None
    rows: int = 0
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _units(t: Tensor) -> Tensor:
    """(N, *latent) -> (rows, D): per-step latents (N, T, D) count their D features as the units."""
    return t.reshape(-1, t.shape[-1]) if t.dim() >= 3 else t.reshape(t.shape[0], -1)


@torch.no_grad()
def posterior_report(model: Any, batches: Iterable[Tensor], max_rows: int = 2000) -> PosteriorReport | None:
    """Diagnose `model` (with Capability.POSTERIOR) on up to `max_rows` rows of `batches`."""
    means, kls, recon_sum, recon_elems, rows = [], [], 0.0, 0, 0
    data_max, out_lo, out_hi = -math.inf, math.inf, -math.inf
    for xb in batches:
        if rows >= max_rows or xb.shape[0] == 0:
            break
        mean, log_var = model.posterior(xb)
        means.append(_units(mean.float()).cpu())
        kls.append(_units((0.5 * (mean.pow(2) + log_var.exp() - 1.0 - log_var)).float()).cpu())
        recon = model(xb).reconstruction.float()
        err = _error(model, xb, recon)
        recon_sum += float(err.sum())
        recon_elems += err.numel()
        data_max = max(data_max, float(xb.max()))
        out_lo, out_hi = min(out_lo, float(recon.min())), max(out_hi, float(recon.max()))
        rows += xb.shape[0]
    if not means:
        return None
    mu, kl = torch.cat(means), torch.cat(kls)
    dims = mu.shape[1]
    activity = mu.double().var(0, unbiased=False) if mu.shape[0] > 1 else torch.zeros(dims, dtype=torch.float64)
    kl_per_dim = kl.double().mean(0)
    per_row_values = kl.shape[0] // max(rows, 1)  # steps per sample for a per-step latent
    kl_per_sample = float(kl_per_dim.sum()) * per_row_values
    report = PosteriorReport(dims, kl_per_dim.tolist(), activity.tolist(), int((activity > ACTIVE_THRESHOLD).sum()),
                             kl_per_sample, float(kl_per_dim.mean()), recon_sum / rows, recon_sum / recon_elems, rows)
    report.warnings = _warnings(report, data_max, out_lo, out_hi)
    return report


def _error(model: Any, x: Tensor, recon: Tensor) -> Tensor:
    """The model's own per-element reconstruction error where it has one, else squared error."""
    error = getattr(model, "error", None)
    if callable(error):
        out: Tensor = error(x, recon)
        return out
    likelihood = getattr(model, "likelihood", None)
    if likelihood is not None and type(likelihood).__name__ == "BernoulliLikelihood":
        p = recon.clamp(1e-7, 1 - 1e-7)
        return -(x * p.log() + (1 - x) * (1 - p).log())
    return (x.float() - recon) ** 2


def _warnings(r: PosteriorReport, data_max: float, out_lo: float, out_hi: float) -> list[str]:
    out = []
    if r.kl_per_sample < COLLAPSE_KL or r.active_units < COLLAPSE_SHARE * r.dims:
        out.append(f"posterior collapse: {r.active_units} of {r.dims} latent units are active (Cov_x E_q[z] > "
                   f"{ACTIVE_THRESHOLD}) and the KL is {r.kl_per_sample:.3g} nats per sample; the decoder ignores z. "
                   "Try --kl-warmup EPOCHS, --free-bits NATS or a smaller --beta")
    if r.recon_per_sample is not None and r.kl_per_sample > r.recon_per_sample > 0:
        out.append(f"scale: the KL per sample ({r.kl_per_sample:.4g} nats) exceeds the reconstruction error per "
                   f"sample ({r.recon_per_sample:.4g}); a loss that averages the reconstruction over elements but "
                   "sums the KL over dimensions weighs the KL too much")
    out.extend(range_warnings(data_max, out_lo, out_hi))
    return out


def range_warnings(data_max: float, out_lo: float, out_hi: float) -> list[str]:
    """Targets beyond [0, 1] that outputs confined to [0, 1] can never reach."""
    if data_max > 1.0 + 1e-6 and out_lo >= 0.0 and out_hi <= 1.0:
        return [f"data range: the targets reach {data_max:.4g} but the outputs stay in [0, 1] (a sigmoid?); "
                "rescale the data to [0, 1] or drop the output activation"]
    return []


def summary_line(r: PosteriorReport) -> str:
    """One line for the training log."""
    return (f"KL {r.kl_per_sample:.4g} nats/sample ({r.kl_per_element:.3g} per latent value), "
            f"active units {r.active_units}/{r.dims}, reconstruction {r.recon_per_sample:.4g}/sample "
            f"({r.recon_per_element:.3g} per value)")
