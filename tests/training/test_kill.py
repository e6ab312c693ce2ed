"""Kill test: `aelab train` killed with SIGKILL at random moments, resumed until done, ends with the
weights of an uninterrupted run; after every kill each checkpoint on disk is complete and verifies."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from aelab.training.checkpoint import complete_checkpoints, load_checkpoint, read_weights

ROOT = Path(__file__).resolve().parents[2]
EPOCHS = 10
ARGS = ["train", "--kind", "dense", "--data", "digits", "--latent", "8", "--hidden", "128,64", "--epochs",
        str(EPOCHS), "--batch-size", "16", "--seed", "3", "--opt", "noise=0.1", "-q"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}


def _start(args: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "aelab", *args], cwd=ROOT, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _newest(run: Path) -> int:
    found = complete_checkpoints(run)
    return int(found[-1].name.split("-")[1]) if found else 0


def _wait_for(p: subprocess.Popen[bytes], ready: object, timeout: float = 120.0) -> bool:
    """Poll until `ready()` is true; False if the process ended first."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if ready():  # type: ignore[operator]
            return True
        if p.poll() is not None:
            return False
        time.sleep(0.005)
    raise AssertionError("the training process made no progress")


def _all_valid(run: Path) -> None:
    """No half-written checkpoint: every epoch-* folder verifies; the best weights parse."""
    for path in complete_checkpoints(run):
        load_checkpoint(path)
    if (run / "model.safetensors").exists():
        read_weights(run / "model.safetensors")


def _trial(run: Path, seed: int, epoch_seconds: float, kills: int) -> int:
    rnd = random.Random(seed)
    killed = 0
    while True:
        fresh = not (run / "config.json").exists()
        p = _start([*ARGS, "--out", str(run)] if fresh else ["train", "--resume", str(run), "-q"])
        if killed < kills:
            start_epoch = _newest(run)
            # fresh: kill any time after it set up the run (maybe before the first epoch ends);
            # resumed: once it has made progress, somewhere inside the next epoch or its save
            ready = (lambda: (run / "config.json").exists()) if fresh else \
                (lambda start=start_epoch: _newest(run) > start)
            if _wait_for(p, ready):
                # fresh: anywhere in the whole run; resumed: inside the next epoch or its save
                time.sleep(rnd.uniform(0.0, (EPOCHS if fresh else 1.5) * epoch_seconds))
                if p.poll() is None:
                    p.send_signal(signal.SIGKILL)
                    p.wait()
                    killed += 1
                    _all_valid(run)
                    continue
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()
        return killed


def _final(run: Path) -> dict[str, torch.Tensor]:
    last = complete_checkpoints(run)[-1]
    assert last.name == f"epoch-{EPOCHS:04d}"
    out = {f"model.{k}": v for k, v in load_file(last / "model.safetensors").items()}
    out |= {f"opt.{k}": v for k, v in load_file(last / "optimizer.safetensors").items()}
    return out | {f"best.{k}": v for k, v in load_file(run / "model.safetensors").items()}


@pytest.mark.slow
def test_sigkill_then_resume_ends_with_the_uninterrupted_weights(tmp_path: Path) -> None:
    ref = tmp_path / "ref"
    p = _start([*ARGS, "--out", str(ref)])
    assert _wait_for(p, lambda: (ref / "config.json").exists())
    t0 = time.monotonic()
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err.decode()
    epoch_seconds = (time.monotonic() - t0) / EPOCHS
    want = _final(ref)
    # three trials side by side, killed at seeded random moments: once, once, and twice (the second kill hits
    # a resumed run); each process start pays the torch import, so the count is kept small
    plan = [1, 1, 2]
    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(_trial, tmp_path / f"trial{i}", 1000 + i, epoch_seconds, n) for i, n in enumerate(plan)]
        killed = [f.result() for f in futures]
    assert sum(killed) >= 3, f"too few kills landed ({killed})"
    for i in range(3):
        got = _final(tmp_path / f"trial{i}")
        assert got.keys() == want.keys()
        assert all(torch.equal(got[k], want[k]) for k in want), f"trial {i} differs"
        assert not list((tmp_path / f"trial{i}" / "checkpoints").glob(".tmp-*"))
