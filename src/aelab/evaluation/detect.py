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
from aelab.models.kind import Capability
from aelab.training.rundir import LoadedRun


def _recon(model: Any, xb: Tensor, samples: int) -> Tensor:
    return mse(xb, model(xb).reconstruction)


def _neg_elbo(model: Any, xb: Tensor, samples: int) -> Tensor:
    return -importance_sampled(model, xb, samples).elbo


#: score name -> (per-row score of a batch, the capabilities it needs, description). A new score is one entry.
SCORES: dict[str, tuple[Callable[[Any, Tensor, int], Tensor], frozenset[Capability], str]] = {
    "recon": (_recon, frozenset(), "mean squared reconstruction error per row"),
    "elbo": (_neg_elbo, frozenset({Capability.POSTERIOR, Capability.LIKELIHOOD}),
             "negative ELBO per row in nats (VAEs), averaged over --samples draws"),
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

    def summary(self) -> dict[str, Any]:
        n_anom = int(self.anomaly.sum()) if self.anomaly is not None else None
        return {"score": self.score, "rows": len(self.rows), "anomalies": n_anom, "normal": self.normal,
                "auroc": self.auroc, "aupr": self.aupr}


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
           normal_class: int | None = None, batch_size: int = 256) -> Detection:
    """Score every row in `rows`; with usable labels, AUROC and AUPR (higher score = more anomalous)."""
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
    parts = [fn(model, xb, samples).double().cpu()
             for xb in DeviceBatches(ds, rows, batch_size, run.device, run.info.normalizer)]
    scores = torch.cat(parts)
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
    return Detection(score, rows, scores, labels, anomaly, auroc, aupr, normal)


def csv_text(det: Detection) -> str:
    """One line per row: row index, score, and the label and anomaly flag where known."""
    cols = [["row", *map(str, det.rows.tolist())], ["score", *map(repr, det.scores.tolist())]]
    if det.labels is not None:
        cols.append(["label", *map(str, det.labels.tolist())])
    if det.anomaly is not None:
        cols.append(["anomaly", *map(str, det.anomaly.tolist())])
    return "".join(",".join(line) + "\n" for line in zip(*cols))
