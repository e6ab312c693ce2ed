"""Anomaly thresholds without labelled anomalies, and per-feature errors.

`--fpr a` sets the threshold at the (1 - a) quantile of the scores of the run's own *normal validation
rows* (held out from training, so never fitted): on normal data like them a share a of the rows scores
higher, which is the false-alarm rate asked for. Rows above it are flagged; with labels the summary adds
precision, recall and the false-alarm rate measured on the scored normal rows.
`--per-feature`: each row's squared reconstruction error per feature (tables, flattened images), or per
time step (the mean over the features of each step) for (T, F) sequences.
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


@dataclass
class Threshold:
    """The score above which a row is flagged, and where it came from."""

    fpr: float
    value: float
    normal_rows: int  # validation rows it was set on

    def summary(self, scores: Tensor, anomaly: Tensor | None) -> dict[str, Any]:
        flagged = scores > self.value
        out: dict[str, Any] = {"fpr": self.fpr, "threshold": self.value, "flagged": int(flagged.sum()),
                               "threshold_rows": self.normal_rows}
        if anomaly is not None:
            a = anomaly.bool()
            hits = int((flagged & a).sum())
            out["precision"] = hits / int(flagged.sum()) if int(flagged.sum()) else None
            out["recall"] = hits / int(a.sum()) if int(a.sum()) else None
            out["false_alarm_rate"] = int((flagged & ~a).sum()) / int((~a).sum()) if int((~a).sum()) else None
        return out


def fpr_threshold(run: Any, score_rows: Callable[[Dataset, Tensor], Tensor], fpr: float,
                  normal_class: int | None) -> Threshold:
    """The (1 - fpr) quantile of the scores of the run's normal validation rows."""
    from aelab.evaluation.report import run_dataset
    from aelab.training.rows import split_rows

    ds = run_dataset(run)
    val = split_rows(ds, run.info.train).val
    if ds.y is not None and normal_class is not None:
        val = val[ds.y[val] == normal_class]
    if len(val) == 0:
        raise UsageError("--fpr needs the run's normal validation rows, and it has none (trained with "
                         "--val-fraction 0?)")
    if len(val) * fpr < 1:
        raise UsageError(f"--fpr {fpr}: the run has {len(val)} normal validation rows, too few to set a threshold "
                         f"at that rate (need at least {int(1 / fpr) + 1})")
    scores = score_rows(ds, val)
    return Threshold(fpr, float(torch.quantile(scores, 1.0 - fpr)), len(val))


@torch.no_grad()
def feature_errors(run: Any, ds: Dataset, rows: Tensor, batch_size: int) -> tuple[Tensor, list[str]]:
    """(rows, columns) squared errors and the column names: per feature, or per time step for sequences."""
    parts = []
    sequence = ds.kind == "spectrogram" or len(ds.sample_shape) == 2
    for xb in DeviceBatches(ds, rows, batch_size, run.device, run.info.normalizer):
        err = (xb.float() - run.model(xb).reconstruction.float()) ** 2
        parts.append((err.mean(2) if sequence else err.flatten(1)).double().cpu())
    errors = torch.cat(parts)
    prefix = "step" if sequence else "feature"
    return errors, [f"{prefix}_{i}" for i in range(errors.shape[1])]


def feature_csv(rows: Tensor, errors: Tensor, names: list[str]) -> str:
    lines = [",".join(["row", *names])]
    lines += [",".join([str(r), *map(repr, e)]) for r, e in zip(rows.tolist(), errors.tolist())]
    return "\n".join(lines) + "\n"
