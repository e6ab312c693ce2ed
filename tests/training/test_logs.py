"""history.csv beside the JSON, and --log tensorboard: every loss term, lr, samples/s and active units per epoch."""

from __future__ import annotations

import csv
from pathlib import Path

import aelab
from aelab.training.checkpoint import complete_checkpoints, read_json


def test_history_csv_and_tensorboard_scalars_hold_every_number_of_every_epoch(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = aelab.train("dense-vae", "digits", out=tmp_path / "r", latent=4, hidden=[16], epochs=2, limit=300,
                      quiet=True, log="tensorboard")
    rows = list(csv.DictReader((tmp_path / "r" / "history.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    history = read_json(complete_checkpoints(tmp_path / "r")[-1] / "state.json")["history"]
    for key in ("loss", "reconstruction", "kl", "lr", "samples_per_s", "val_loss", "val_kl", "active_units"):
        assert [float(r[key]) for r in rows] == [float(h[key]) for h in history], key
    events = EventAccumulator(str(tmp_path / "r" / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "train/reconstruction", "train/kl", "train/lr", "train/samples_per_s",
            "train/active_units", "val/loss", "val/kl"} <= tags
    assert [e.step for e in events.Scalars("train/kl")] == [1, 2]
    assert abs(events.Scalars("train/kl")[-1].value - run.history[-1]["kl"]) < 1e-4
