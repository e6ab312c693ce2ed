"""detect --fpr: the threshold is the (1 - fpr) quantile of the run's normal validation rows' scores, and the
summary's counts, precision, recall and false-alarm rate are those of the flagged rows; --per-feature."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import torch

import aelab
from aelab.data import load
from aelab.evaluation.metrics import mse
from aelab.training.rows import split_rows
from aelab.training.rundir import load_run


def test_fpr_threshold_flags_and_per_feature_errors(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run = tmp_path / "sh"
    aelab.train("dense", "shuttle", out=run, latent=3, hidden=[16], epochs=2, limit=3000, normal_class=0,
                quiet=True)
    r = cli("detect", str(run), "--fpr", "0.05", "--per-feature")
    assert r.returncode == 0, r.stderr
    summary = json.loads((run / "scores.json").read_text())
    loaded = load_run(run)
    ds = load("shuttle")
    val = split_rows(ds, loaded.info.train).val
    with torch.no_grad():
        x = loaded.info.normalizer.apply(ds.x[val])
        val_scores = mse(x, loaded.model(x).reconstruction).double()
    assert summary["threshold"] == float(torch.quantile(val_scores, 0.95))
    assert summary["threshold_rows"] == len(val)
    rows = list(csv.DictReader((run / "scores.csv").open()))
    flagged = [float(row["score"]) > summary["threshold"] for row in rows]
    anomaly = [row["anomaly"] == "1" for row in rows]
    assert [row["flagged"] == "1" for row in rows] == flagged and summary["flagged"] == sum(flagged)
    hits = sum(f and a for f, a in zip(flagged, anomaly))
    assert summary["precision"] == hits / sum(flagged) and summary["recall"] == hits / sum(anomaly)
    assert summary["false_alarm_rate"] == sum(f and not a for f, a in zip(flagged, anomaly)) / anomaly.count(False)
    assert abs(summary["false_alarm_rate"] - 0.05) < 0.02  # held-out normal rows flagged at about the asked rate
    features = list(csv.reader((run / "scores-features.csv").open()))
    assert features[0] == ["row", *(f"feature_{i}" for i in range(9))] and len(features) == len(rows) + 1
    bad = cli("detect", str(run), "--fpr", "1.5")
    assert bad.returncode == 2 and "--fpr must be between 0 and 1" in bad.stderr
