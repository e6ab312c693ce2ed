"""Issue 12, values taken silently: every numeric option refuses what is meaningless (exit 2, the option
named), float labels are not truncated, and contradictory globs are not obeyed in silence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from safety.helpers import TRAIN

RUN = "{run}"

#: (id, argv, the option the one line must name)
CASES = [
    ("train --epochs 0", (*TRAIN, "--epochs", "0", "--out", "r"), "--epochs"),
    ("train --epochs -1", (*TRAIN, "--epochs", "-1", "--out", "r"), "--epochs"),
    ("train --batch-size 0", (*TRAIN, "--batch-size", "0", "--out", "r"), "--batch-size"),
    ("train --latent 0", (*TRAIN, "--latent", "0", "--out", "r"), "--latent"),
    ("train --lr 0", (*TRAIN, "--lr", "0", "--out", "r"), "--lr"),
    ("train --lr nan", (*TRAIN, "--lr", "nan", "--out", "r"), "--lr"),
    ("train --lr inf", (*TRAIN, "--lr", "inf", "--out", "r"), "--lr"),
    ("train --val-fraction 1.5", (*TRAIN, "--val-fraction", "1.5", "--out", "r"), "--val-fraction"),
    ("train --keep-checkpoints 0", (*TRAIN, "--keep-checkpoints", "0", "--out", "r"), "--keep-checkpoints"),
    ("train --limit 0", (*TRAIN, "--limit", "0", "--out", "r"), "--limit"),
    ("train --grad-clip -1", (*TRAIN, "--grad-clip", "-1", "--out", "r"), "--grad-clip"),
    ("train --stop-after 0", (*TRAIN, "--stop-after", "0", "--out", "r"), "--stop-after"),
    ("resume --epochs 0", ("train", "--resume", RUN, "--epochs", "0"), "--epochs"),
    ("evaluate --limit -3", ("evaluate", RUN, "--limit", "-3", "--no-plots"), "--limit"),
    ("evaluate --nll-samples -5", ("evaluate", RUN, "--nll-samples", "-5", "--no-plots"), "--nll-samples"),
    ("detect --samples 0", ("detect", RUN, "--samples", "0"), "--samples"),
    ("demo --epochs 0", ("demo", "--epochs", "0", "--out", "d"), "--epochs"),
    ("demo --limit 0", ("demo", "--limit", "0", "--out", "d"), "--limit"),
    ("cost --threads 0", ("cost", "m.py:Net", "--input", "2x8", "--measure", "--threads", "0"), "--threads"),
]


@pytest.mark.parametrize(("argv", "option"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_meaningless_numbers_are_refused(aelab, model_file: Path, run_copy: Path, argv: tuple[str, ...],
                                         option: str) -> None:
    r = aelab(*(str(run_copy) if a == RUN else a for a in argv))
    assert r.returncode == 2, f"exit {r.returncode}: {r.stderr}"
    assert option in r.line


def test_epochs_help_says_what_0_means(aelab) -> None:
    r = aelab("train", "--help")
    text = " ".join(r.stdout.split())
    assert "--epochs" in text and "at least 1" in text[text.index("--epochs"):][:300]


def test_float_labels_are_refused_not_truncated(aelab, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", rng.random((64, 8), dtype=np.float32))
    np.save(tmp_path / "y.npy", np.linspace(0.0, 1.9, 64))
    r = aelab("data", "show", "x.npy", "--data-opt", "labels=y.npy")
    assert r.returncode == 2 and "y.npy" in r.line and "integer" in r.line, r.stderr
    np.save(tmp_path / "y.npy", np.repeat([0.0, 1.0], 32))  # whole numbers stored as floats are fine
    r = aelab("data", "show", "x.npy", "--data-opt", "labels=y.npy")
    assert r.returncode == 0, r.stderr


def test_trainable_and_freeze_of_the_same_parameters_is_refused(aelab, model_file: Path) -> None:
    r = aelab("cost", "m.py:Net", "--input", "2x8", "--trainable", "fc", "--freeze", "fc")
    assert r.returncode == 2, r.stderr
    assert "--trainable" in r.line and "--freeze" in r.line and "fc" in r.line
