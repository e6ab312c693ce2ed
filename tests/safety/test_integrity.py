"""Issue 12, integrity: every tensor file aelab reads back is checked against the SHA-256 recorded when it was
written (best weights included); a missing or malformed record is corruption; resume falls back to the
newest complete checkpoint and says which; non-finite metrics are JSON null with a `non_finite` list;
NaN/inf weights are reported before any metric. Also the noise: glyph warnings for CJK names."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file


def _strict(text: str) -> dict:
    def refuse(name: str) -> None:
        raise AssertionError(f"bare {name} in JSON")
    return json.loads(text, parse_constant=refuse)


def _empty_record_and_nan_weights(ckpt: Path) -> None:
    state = json.loads((ckpt / "state.json").read_text())
    state["sha256"] = {}
    (ckpt / "state.json").write_text(json.dumps(state))
    weights = load_file(ckpt / "model.safetensors")
    save_file({k: torch.full_like(v, float("nan")) for k, v in weights.items()}, ckpt / "model.safetensors")


def test_an_empty_checksum_record_is_corruption_not_skip(aelab, trained_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    ckpts = sorted((run / "checkpoints").glob("epoch-*"))
    assert [p.name for p in ckpts] == ["epoch-0001", "epoch-0002"]
    _empty_record_and_nan_weights(ckpts[-1])
    r = aelab("train", "--resume", run, "--epochs", "3", "-q")
    assert r.returncode == 0, r.stderr  # the damaged epoch 2 is not used: epoch 1 is, and the run says so
    assert "epoch-0002" in r.stderr and "epoch 1" in r.stderr and "--lr" not in r.stderr, r.stderr
    # with no older checkpoint to fall back to, the same damage is an error naming the file
    alone = tmp_path / "alone"
    shutil.copytree(trained_run, alone)
    shutil.rmtree(alone / "checkpoints" / "epoch-0001")
    _empty_record_and_nan_weights(alone / "checkpoints" / "epoch-0002")
    r = aelab("train", "--resume", alone, "--epochs", "3", "-q")
    assert r.returncode == 2, r.stderr
    assert "state.json" in r.line and "--lr" not in r.line


def test_an_empty_newest_checkpoint_falls_back_to_the_previous_complete_one(aelab, run_copy: Path) -> None:
    (run_copy / "checkpoints" / "epoch-0003").mkdir()
    r = aelab("train", "--resume", run_copy, "--epochs", "4", "-q")
    assert r.returncode == 0, r.stderr
    assert "epoch-0003" in r.stderr and "epoch 2" in r.stderr, r.stderr
    assert (run_copy / "checkpoints" / "epoch-0004" / "state.json").is_file()


def test_unchecked_top_level_weights_are_corruption(aelab, run_copy: Path) -> None:
    weights = load_file(run_copy / "model.safetensors")
    save_file({k: torch.full_like(v, float("nan")) for k, v in weights.items()}, run_copy / "model.safetensors")
    r = aelab("evaluate", run_copy, "--no-plots")
    assert r.returncode == 2, r.stderr
    assert "model.safetensors" in r.line
    assert not (run_copy / "metrics.json").exists()


def test_a_flipped_byte_in_the_best_weights_is_caught(aelab, run_copy: Path) -> None:
    path = run_copy / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x40
    path.write_bytes(bytes(data))
    for argv in (("evaluate", run_copy, "--no-plots"), ("detect", run_copy)):
        r = aelab(*argv)
        assert r.returncode == 2, r.stderr
        assert "model.safetensors" in r.line and "corrupt" in r.line


def test_nan_weights_with_a_valid_checksum_are_reported_before_any_metric(aelab, run_copy: Path) -> None:
    try:
        from aelab.training.checkpoint import weights_bytes
    except ImportError:  # the layout before issue 9's move
        from aelab.train.checkpoint import weights_bytes
    weights = load_file(run_copy / "model.safetensors")
    first = sorted(weights)[0]
    weights[first] = torch.full_like(weights[first], float("inf"))
    (run_copy / "model.safetensors").write_bytes(weights_bytes(weights))
    r = aelab("evaluate", run_copy, "--no-plots")
    assert r.returncode == 2, r.stderr
    assert "inf" in r.line.lower() and first in r.line
    assert r.stdout == ""


def test_non_finite_metrics_are_null_with_a_list(aelab, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    data = tmp_path / "x.npy"
    np.save(data, rng.random((200, 8), dtype=np.float32))
    r = aelab("train", "--kind", "dense", "--data", data, "--latent", "2", "--hidden", "8", "--epochs", "1",
              "--normalize", "none", "--out", "run", "-q")
    assert r.returncode == 0, r.stderr
    np.save(data, np.full((200, 8), 3e38, np.float32))  # the same file, now with values whose square overflows
    r = aelab("evaluate", tmp_path / "run", "--no-plots")
    metrics = _strict((tmp_path / "run" / "metrics.json").read_text())
    assert "mse" in metrics["non_finite"], metrics
    assert metrics["metrics"]["mse"]["mean"] is None
    assert r.returncode in (0, 2) and "mse" in r.stderr


def test_cjk_module_names_draw_without_glyph_warnings(aelab, model_file: Path, tmp_path: Path) -> None:
    r = aelab("inspect", "m.py:CJK", "--input", "2x8", "--hourglass", tmp_path / "h.png")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "h.png").stat().st_size > 0
    assert "Glyph" not in r.stderr and "missing from" not in r.stderr, r.stderr


def test_metrics_json_is_strict_json(aelab, run_copy: Path) -> None:
    r = aelab("evaluate", run_copy, "--no-plots")
    assert r.returncode == 0, r.stderr
    metrics = _strict((run_copy / "metrics.json").read_text())
    assert metrics["non_finite"] == []
    assert all(math.isfinite(m["mean"]) for m in metrics["metrics"].values())


@pytest.mark.slow
def test_compile_prints_no_dynamo_warnings(aelab, tmp_path: Path) -> None:
    r = aelab("train", "--kind", "dense", "--data", "digits", "--latent", "2", "--hidden", "8", "--epochs", "1",
              "--batch-size", "512", "--compile", "--out", "run", "-q")
    assert r.returncode == 0, r.stderr
    assert "torch/_dynamo" not in r.stderr and "Graph break" not in r.stderr, r.stderr


def test_the_real_forward_fallback_leaves_the_global_rng_alone() -> None:
    """In-process (the global RNG is the caller's): a data-dependent op makes the tracer run the model for
    real on random inputs; that must not advance the caller's torch RNG."""
    import aelab

    class DataDependent(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(8, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.fc(x)
            return y[y > 0].sum() + torch.nonzero(y).shape[0]

    model = DataDependent()
    torch.manual_seed(0)
    before = torch.get_rng_state()
    report = aelab.inspect(model, (2, 8))
    assert report.trace.error is None
    assert torch.equal(torch.get_rng_state(), before)
