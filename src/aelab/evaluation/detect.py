"""Anomaly scores per row from a trained run, and how well they separate anomalies (AUROC, AUPR).

A score is large when the model explains a row badly: its reconstruction error, or for VAEs its
negative ELBO. With labels, anomalies are the rows whose label differs from the normal class (or,
for 0/1 labels such as Shuttle's, the rows labelled 1); AUROC and AUPR come from scikit-learn.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from aelab.data import DeviceBatches
from aelab.data.records import Dataset
from aelab.errors import UsageError
from aelab.evaluation.metrics import mse
from aelab.evaluation.nll import importance_sampled
from aelab.evaluation.report import check_fits
from aelab.evaluation.threshold import Threshold, feature_errors, fpr_threshold
from aelab.models.kind import Capability
from aelab.training.rundir import LoadedRun


def _recon(model: Any, xb: Tensor, samples: int) -> Tensor:
    return mse(xb, model(xb).reconstruction)


def _neg_elbo(model: Any, xb: Tensor, samples: int) -> Tensor:
    return -importance_sampled(model, xb, samples).elbo


def _latent(model: Any, xb: Tensor, samples: int) -> Tensor:
    """The row's code, standardised by the training rows' per-dimension mean and std (set by `detect`)."""
    z = model(xb).latent.flatten(1).double()
    mean, std = model.latent_reference
    return (((z - mean) / std) ** 2).mean(1)


#: score name -> (per-row score of a batch, the capabilities it needs, description). A new score is one entry.
SCORES: dict[str, tuple[Callable[[Any, Tensor, int], Tensor], frozenset[Capability], str]] = {
    "recon": (_recon, frozenset(), "mean squared reconstruction error per row"),
    "elbo": (_neg_elbo, frozenset({Capability.POSTERIOR, Capability.LIKELIHOOD}),
             "negative ELBO per row in nats (VAEs), averaged over --samples draws"),
    "latent": (_latent, frozenset(), "mean squared z-score of the row's latent against the training rows' codes "
               "(per dimension)"),
}


@dataclass
class Detection:
    """Scores of the rows, their labels where known, and the separation they achieve."""

    score: str
    rows: Tensor
    scores: Tensor
    labels: Tensor | None
    anomaly: Tensor | None
    auroc: float | None
    aupr: float | None
    normal: str
    data: str = ""
    part: str = ""
    csv: str = ""
    threshold: Threshold | None = None  # --fpr
    features: Tensor | None = None  # --per-feature: (rows, features or time steps) squared errors
    feature_names: list[str] | None = None
    summary_record: dict[str, object] | None = None  # what detect_run wrote beside the CSV

    @property
    def flags(self) -> Tensor | None:
        return self.scores > self.threshold.value if self.threshold is not None else None

    def summary(self) -> dict[str, Any]:
        n_anom = int(self.anomaly.sum()) if self.anomaly is not None else None
        out = {"score": self.score, "rows": len(self.rows), "anomalies": n_anom, "normal": self.normal,
               "auroc": self.auroc, "aupr": self.aupr}
        if self.threshold is not None:
            out |= self.threshold.summary(self.scores, self.anomaly)
        return out


def anomaly_labels(y: Tensor | None, normal_class: int | None) -> tuple[Tensor | None, str]:
    """1 for anomalies, 0 for normal rows: label != normal_class, or the labels themselves when 0/1."""
    if y is None:
        return None, "no labels"
    if normal_class is not None:
        return (y != normal_class).long(), f"label {normal_class} is normal, every other label an anomaly"
    if set(torch.unique(y).tolist()) <= {0, 1}:
        return y.long(), "label 1 marks an anomaly"
    return None, "labels are classes; pass --normal-class to say which one is normal"


@torch.no_grad()
def detect(run: LoadedRun, ds: Dataset, rows: Tensor, score: str = "auto", samples: int = 10,
           normal_class: int | None = None, batch_size: int = 256, fpr: float | None = None,
           per_feature: bool = False) -> Detection:
    """Score every row in `rows`; with usable labels, AUROC and AUPR (higher score = more anomalous).

    `fpr`: flag rows above the threshold that the run's normal validation rows exceed at that rate;
    `per_feature`: keep every row's squared error per feature (per time step for sequences)."""
    check_fits(run, ds)
    model = run.model
    if score == "auto":
        score = "elbo" if all(model.has(c) for c in SCORES["elbo"][1]) else "recon"
    if score not in SCORES:
        raise UsageError(f"unknown score {score!r} (use {', '.join(SCORES)} or auto)")
    fn, needs, _ = SCORES[score]
    missing = [c.value for c in needs if not model.has(c)]
    if missing:
        raise UsageError(f"--score {score} needs a VAE (a model with {' and '.join(missing)}); this run's "
                         f"'{run.info.train.kind}' model has not")
    if samples < 1:
        raise UsageError("--samples must be at least 1")
    if fpr is not None and not 0 < fpr < 1:
        raise UsageError(f"--fpr must be between 0 and 1 (a false-alarm rate such as 0.01), got {fpr}")
    if score == "latent":
        model.latent_reference = latent_reference(run, batch_size)
    scores = _scores(run, ds, rows, fn, samples, batch_size)
    bad = ~torch.isfinite(scores)
    if bool(bad.any()):
        raise UsageError(f"{int(bad.sum())} scores are not finite (first at row {int(rows[bad][0])}): the "
                         "weights or the data hold NaN or inf")
    labels = ds.y[rows] if ds.y is not None else None
    if normal_class is None:
        normal_class = run.info.train.normal_class
    anomaly, normal = anomaly_labels(labels, normal_class)
    auroc = aupr = None
    if anomaly is not None and 0 < int(anomaly.sum()) < len(anomaly):
        from sklearn.metrics import average_precision_score, roc_auc_score

        auroc = float(roc_auc_score(anomaly.numpy(), scores.numpy()))
        aupr = float(average_precision_score(anomaly.numpy(), scores.numpy()))
    elif anomaly is not None:
        normal += "; AUROC needs both normal rows and anomalies"
    det = Detection(score, rows, scores, labels, anomaly, auroc, aupr, normal)
    if normal_class is None and anomaly is not None:  # 0/1 labels: 0 is normal
        normal_class = 0
    if fpr is not None:
        det.threshold = fpr_threshold(run, lambda d, r: _scores(run, d, r, fn, samples, batch_size), fpr, normal_class)
    if per_feature:
        det.features, det.feature_names = feature_errors(run, ds, rows, batch_size)
    return det


def _scores(run: LoadedRun, ds: Dataset, rows: Tensor, fn: Callable[[Any, Tensor, int], Tensor], samples: int,
            batch_size: int) -> Tensor:
    parts = [fn(run.model, xb, samples).double().cpu()
             for xb in DeviceBatches(ds, rows, batch_size, run.device, run.info.normalizer)]
    return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.float64)


def latent_reference(run: LoadedRun, batch_size: int) -> tuple[Tensor, Tensor]:
    """Mean and std (floored at 1e-6) of the codes of (up to 2,000 of) the run's training rows."""
    from aelab.evaluation.report import run_dataset
    from aelab.training.rows import split_rows

    ds = run_dataset(run)
    rows = split_rows(ds, run.info.train).train[:2000]
    codes = torch.cat([run.model(xb).latent.flatten(1).double().cpu()
                       for xb in DeviceBatches(ds, rows, batch_size, run.device, run.info.normalizer)])
    if codes.shape[1] == 0:
        raise UsageError("--score latent: the bottleneck analysis found no latent in this model")
    return codes.mean(0).to(run.device), codes.std(0, unbiased=False).clamp_min(1e-6).to(run.device)


def csv_text(det: Detection) -> str:
    """One line per row: row index, score, and the label and anomaly flag where known."""
    cols = [["row", *map(str, det.rows.tolist())], ["score", *map(repr, det.scores.tolist())]]
    if det.labels is not None:
        cols.append(["label", *map(str, det.labels.tolist())])
    if det.anomaly is not None:
        cols.append(["anomaly", *map(str, det.anomaly.tolist())])
    if det.flags is not None:
        cols.append(["flagged", *map(str, det.flags.long().tolist())])
    return "".join(",".join(line) + "\n" for line in zip(*cols))
