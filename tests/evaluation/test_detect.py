"""Anomaly scores and their AUROC/AUPR: hand-computed ranking truths and the one-class protocol on real data."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from aelab.data import load
from aelab.evaluation import detect
from aelab.evaluation.detect import anomaly_labels
from aelab.training import TrainConfig, load_run, train


def _auroc_by_pairs(scores: np.ndarray, anomaly: np.ndarray) -> float:
    """P(score of a random anomaly > score of a random normal row), ties counting one half."""
    pos, neg = scores[anomaly == 1], scores[anomaly == 0]
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


def _average_precision_by_hand(scores: np.ndarray, anomaly: np.ndarray) -> float:
    """Σ over each distinct threshold of (recall gained) × (precision there), highest score first."""
    total, ap, prev_recall = anomaly.sum(), 0.0, 0.0
    for t in np.unique(scores)[::-1]:
        flagged = scores >= t
        tp = anomaly[flagged].sum()
        recall = tp / total
        ap += (recall - prev_recall) * tp / flagged.sum()
        prev_recall = recall
    return float(ap)


def test_anomaly_labels() -> None:
    y = torch.tensor([0, 1, 2, 1])
    assert anomaly_labels(y, 1)[0].tolist() == [1, 0, 1, 0]  # type: ignore[union-attr]
    assert anomaly_labels(torch.tensor([0, 1, 1]), None)[0].tolist() == [0, 1, 1]  # type: ignore[union-attr]
    assert anomaly_labels(y, None)[0] is None and anomaly_labels(None, None)[0] is None


@pytest.mark.slow
def test_one_class_shuttle(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Train on normal Shuttle rows only, score the held-out rows: anomalies reconstruct badly."""
    run = tmp_path / "shuttle"
    config = TrainConfig(kind="dense", data="shuttle", latent=3, model_options={"hidden": [32, 16]}, epochs=3,
                         batch_size=128, normal_class=0, limit=6000, seed=0)
    train(run, config, quiet=True)
    result = cli("detect", str(run), "--out", str(tmp_path / "s.csv"))
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "s.csv") as f:
        rows = list(csv.DictReader(f))
    ds = load("shuttle")
    assert len(rows) == len(ds.parts["test"]) and set(rows[0]) == {"row", "score", "label", "anomaly"}
    scores = np.array([float(r["score"]) for r in rows])
    anomaly = np.array([int(r["anomaly"]) for r in rows])
    assert anomaly.sum() == int(ds.y[ds.parts["test"]].sum())  # type: ignore[index]
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["auroc"] == pytest.approx(_auroc_by_pairs(scores, anomaly), abs=1e-9)
    assert summary["aupr"] == pytest.approx(_average_precision_by_hand(scores, anomaly), abs=1e-9)
    assert summary["auroc"] > 0.95, summary
    assert f"AUROC {summary['auroc']:.4f}" in result.stdout


@pytest.mark.slow
def test_one_class_fashion_mnist_with_elbo_scores(tmp_path: Path) -> None:
    """Train a VAE on trousers only; every other class of the test set is an anomaly."""
    run = tmp_path / "trouser"
    config = TrainConfig(kind="dense-vae", data="fashion-mnist", latent=8, model_options={"hidden": [64]},
                         epochs=2, batch_size=64, normal_class=1, limit=3000, seed=0)
    train(run, config, quiet=True)
    loaded = load_run(run)
    ds = load("fashion-mnist")
    rows = ds.parts["test"][:2000]
    torch.manual_seed(0)
    det = detect(loaded, ds, rows, score="auto", samples=2)
    assert det.score == "elbo" and det.anomaly is not None and det.auroc is not None
    assert int(det.anomaly.sum()) == int((ds.y[rows] != 1).sum())  # type: ignore[index]
    assert det.auroc == pytest.approx(_auroc_by_pairs(det.scores.numpy(), det.anomaly.numpy()), abs=1e-9)
    assert det.auroc > 0.8


def test_detect_a_user_file_without_labels(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    for name, n in (("train.csv", 200), ("new.csv", 70)):
        lines = ["a,b,c"] + [",".join(f"{v:.4f}" for v in rng.normal(size=3)) for _ in range(n)]
        (tmp_path / name).write_text("\n".join(lines) + "\n")
    run = tmp_path / "r"
    train(run, TrainConfig(kind="dense", data=str(tmp_path / "train.csv"), latent=2, model_options={"hidden": [8]},
                           epochs=1, batch_size=32), quiet=True)
    result = cli("detect", str(run), "--data", str(tmp_path / "new.csv"))
    assert result.returncode == 0, result.stderr
    assert "no AUROC: no labels" in result.stdout
    assert len((run / "scores.csv").read_text().splitlines()) == 71  # header + every row of a file not trained on
    own = cli("detect", str(run))  # the run's own file: its held-out test rows (20%)
    assert own.returncode == 0 and len((run / "scores.csv").read_text().splitlines()) == 41
    nowhere = cli("detect", str(run), "--out", str(tmp_path / "missing" / "s.csv"))
    assert nowhere.returncode == 2 and "cannot write" in nowhere.stderr and "Traceback" not in nowhere.stderr
