"""Evaluate a trained run on rows it did not train on: metrics overall and per class, and what the plots need."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor

from aelab.data import DeviceBatches, load
from aelab.data.records import Dataset
from aelab.errors import UsageError
from aelab.evaluation.metrics import LIKELIHOOD_METRICS, METRICS
from aelab.evaluation.nll import importance_sampled
from aelab.evaluation.posterior import PosteriorReport, posterior_report, range_warnings
from aelab.io import finite_json
from aelab.models.kind import Capability
from aelab.training.rundir import LoadedRun


@dataclass
class LatentStats:
    """Where the latent is (the bottleneck analysis' layer for a user's model) and each dimension's spread."""

    layer: str
    dims: int
    mean: list[float]
    std: list[float]


@dataclass
class MetricSummary:
    """One metric: its mean over the rows it was computed on, and its mean per class."""

    name: str
    unit: str
    better: str
    doc: str
    mean: float
    rows: int
    per_class: dict[str, float] = field(default_factory=dict)


@dataclass
class Outputs:
    """What the plots draw: a few inputs with their reconstructions, every row's code and label."""

    inputs: Tensor
    reconstructions: Tensor
    latents: Tensor
    labels: Tensor | None


@dataclass
class Evaluation:
    """The metrics of one run on one set of rows."""

    run: str
    data: str
    part: str
    rows: int
    metrics: list[MetricSummary]
    nll_samples: int = 0
    notes: list[str] = field(default_factory=list)
    pictures: list[str] = field(default_factory=list)  # written by aelab.evaluate (not in metrics.json)
    posterior: PosteriorReport | None = None  # models with a posterior: KL per dim, active units, warnings
    latent: LatentStats | None = None  # where the latent is and its per-dimension statistics
    extra: dict[str, float] = field(default_factory=dict)  # metrics only this kind has (VQ-VAE: codebook)

    @property
    def non_finite(self) -> list[str]:
        """The metrics whose mean or a per-class mean is NaN or inf (JSON null in `to_dict`)."""
        return [m.name for m in self.metrics if finite_json([m.mean, m.per_class])[1]]

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.run, "data": self.data, "part": self.part, "rows": self.rows,
                "nll_samples": self.nll_samples, "notes": self.notes, "non_finite": self.non_finite,
                "metrics": finite_json({m.name: {"mean": m.mean, "unit": m.unit, "better": m.better, "rows": m.rows,
                                                 "doc": m.doc, "per_class": m.per_class} for m in self.metrics})[0],
                "posterior": finite_json(self.posterior.to_dict())[0] if self.posterior is not None else None,
                "latent": finite_json(asdict(self.latent))[0] if self.latent is not None else None,
                "kind_metrics": finite_json(self.extra)[0]}


def latent_stats(model: Any, latents: Tensor) -> LatentStats | None:
    """The latent's layer (where known) and each dimension's mean and standard deviation over the rows."""
    if latents.shape[1] == 0:
        return None
    where = getattr(model, "latent", None)
    layer = getattr(where, "layer", None) or "encoder output"
    z = latents.double()
    return LatentStats(layer, int(z.shape[1]), z.mean(0).tolist(), z.std(0, unbiased=False).tolist())


def run_dataset(run: LoadedRun) -> Dataset:
    """The data set a run was trained on, loaded the same way."""
    t = run.info.train
    return load(t.data, t.data_options, t.skip_bad)


def check_fits(run: LoadedRun, ds: Dataset) -> None:
    """A UsageError unless the rows of `ds` have the shape the run's model takes."""
    if ds.sample_shape != tuple(run.model.input_shape):
        raise UsageError(f"data '{ds.name}' has rows of shape {ds.sample_shape}; the run's model takes "
                         f"{tuple(run.model.input_shape)}")


def eval_rows(ds: Dataset, part: str, limit: int | None) -> Tensor:
    if part not in ("test", "train", "all"):
        raise UsageError(f"--part must be test, train or all, got {part!r}")
    rows = ds.rows(part)
    if len(rows) == 0:
        raise UsageError(f"data '{ds.name}' has no {part} rows")
    return rows[:limit] if limit is not None else rows


def _summaries(name: str, unit: str, better: str, doc: str, values: Tensor, labels: Tensor | None,
               class_names: tuple[str, ...] | None) -> MetricSummary:
    s = MetricSummary(name, unit, better, doc, float(values.double().mean()), len(values))
    if labels is not None:
        for c in torch.unique(labels).tolist():
            key = class_names[c] if class_names and 0 <= c < len(class_names) else str(c)
            s.per_class[key] = float(values[labels == c].double().mean())
    return s


@torch.no_grad()
def evaluate(run: LoadedRun, ds: Dataset, rows: Tensor, nll_samples: int = 1000, nll_rows: int = 500,
             batch_size: int = 256, keep: int = 16, part: str = "test") -> tuple[Evaluation, Outputs]:
    """Reconstruction metrics on every row; for VAEs the ELBO and the importance-sampled NLL
    (K = `nll_samples`) on the first `nll_rows` rows. Per-class means where the data have labels."""
    check_fits(run, ds)
    model, device = run.model, run.device
    unit = bool(ds.unit_interval and run.info.normalizer.identity)
    chosen = {k: m for k, m in METRICS.items() if unit or not m.needs_unit_interval}
    values: dict[str, list[Tensor]] = {k: [] for k in chosen}
    latents: list[Tensor] = []
    kept_x: list[Tensor] = []
    kept_r: list[Tensor] = []
    batches = DeviceBatches(ds, rows, batch_size, device, run.info.normalizer)
    data_max, out_lo, out_hi = -math.inf, math.inf, -math.inf
    for xb in batches:
        out = model(xb)
        data_max = max(data_max, float(xb.max()))
        out_lo, out_hi = min(out_lo, float(out.reconstruction.min())), max(out_hi, float(out.reconstruction.max()))
        for k, m in chosen.items():
            values[k].append(m.compute(xb, out.reconstruction).cpu())
        latents.append(out.latent.flatten(1).float().cpu())
        if sum(t.shape[0] for t in kept_x) < keep:
            kept_x.append(xb[:keep].cpu())
            kept_r.append(out.reconstruction[:keep].float().cpu())
    labels = ds.y[rows] if ds.y is not None else None
    names = ds.class_names
    summaries = [_summaries(k, m.unit, m.better, m.doc, torch.cat(values[k]), labels, names)
                 for k, m in chosen.items()]
    notes = range_warnings(data_max, out_lo, out_hi)
    if not unit:
        notes.append("PSNR and BCE need data in [0, 1]; this run's data are not, so they are left out")
    likelihood = model.has(Capability.POSTERIOR) and model.has(Capability.LIKELIHOOD)
    if likelihood and nll_samples > 0:
        summaries += _likelihood(model, ds, rows[:nll_rows], run, nll_samples, labels, names, device)
    elif likelihood:
        notes.append("NLL and ELBO skipped (--nll-samples 0)")
    else:
        notes.append("ELBO and NLL need a posterior and a likelihood (VAEs); this model has not both")
    evaluation = Evaluation(str(run.path), ds.name, part, len(rows), summaries, nll_samples, notes)
    all_latents = torch.cat(latents)
    evaluation.latent = latent_stats(model, all_latents)
    if model.has(Capability.POSTERIOR):
        evaluation.posterior = posterior_report(model, DeviceBatches(ds, rows, batch_size, device,
                                                                     run.info.normalizer))
        if evaluation.posterior is not None:
            evaluation.notes = evaluation.posterior.warnings + evaluation.notes
    evaluation.extra = model.extra_metrics(DeviceBatches(ds, rows, batch_size, device, run.info.normalizer))
    outputs = Outputs(torch.cat(kept_x)[:keep], torch.cat(kept_r)[:keep], all_latents, labels)
    return evaluation, outputs


def _likelihood(model: Any, ds: Dataset, rows: Tensor, run: LoadedRun, samples: int, labels: Tensor | None,
                names: tuple[str, ...] | None, device: torch.device) -> list[MetricSummary]:
    log_px, elbo = [], []
    for xb in DeviceBatches(ds, rows, 64, device, run.info.normalizer):
        est = importance_sampled(model, xb, samples)
        log_px.append(est.log_px.cpu())
        elbo.append(est.elbo.cpu())
    sub = labels[: len(rows)] if labels is not None else None
    nll = -torch.cat(log_px)
    if not bool(torch.isfinite(nll).all()):
        raise UsageError(f"the NLL of {int((~torch.isfinite(nll)).sum())} rows is not finite: the weights "
                         "in this run are broken (NaN or inf)")
    out = []
    for name, vals in (("elbo", torch.cat(elbo)), ("nll", nll)):
        unit, better, doc = LIKELIHOOD_METRICS[name]
        out.append(_summaries(name, unit, better, doc.replace("K samples", f"K = {samples}"), vals, sub, names))
    for m in out:
        m.doc += f" (first {len(rows)} rows)"
        if not math.isfinite(m.mean):
            raise UsageError(f"the {m.name} is not finite")
    return out
