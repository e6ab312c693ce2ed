"""The seed threads' own models, unchanged (examples/seeds.py), trained, resumed after SIGKILL bit for bit,
evaluated with pictures and diagnostics, and scored by detect; and --free-bits / --kl-warmup against
posterior collapse, with the numbers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import aelab
from aelab.training.checkpoint import complete_checkpoints, read_weights

ROOT = Path(__file__).resolve().parents[2]
SEEDS = str(ROOT / "examples" / "seeds.py")
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
SEQ = ["train", "--model", f"{SEEDS}:SeqVAE", "--data", "speech", "--limit", "24", "--batch-size", "8",
       "--epochs", "2", "--seed", "1"]


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return read_weights(complete_checkpoints(run)[-1] / "model.safetensors")


def test_seed_ae_on_mnist_reshapes_trains_resumes_evaluates_and_detects(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    args = ["train", "--model", f"{SEEDS}:AE", "--data", "mnist", "--limit", "300", "--epochs", "2",
            "--batch-size", "64"]
    straight = cli(*args, "--out", str(tmp_path / "a"))
    assert straight.returncode == 0, straight.stderr
    said = " ".join(straight.stderr.split())
    assert "each 1x28x28 sample is reshaped to 784 values" in said and "encoder.0" in said
    assert "latent: encoder.2 (10 per sample)" in said and "MSE per element" in said
    assert cli(*args, "--out", str(tmp_path / "b"), "--stop-after", "1").returncode == 0
    assert cli("train", "--resume", str(tmp_path / "b")).returncode == 0
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert a.keys() == {"encoder.0.weight", "encoder.0.bias", "encoder.2.weight", "encoder.2.bias",
                        "decoder.0.weight", "decoder.0.bias", "decoder.2.weight", "decoder.2.bias"}
    assert all(torch.equal(a[k], b[k]) for k in a)  # the user's own keys, bit for bit

    ev = cli("evaluate", str(tmp_path / "a"), "--limit", "200")
    assert ev.returncode == 0, ev.stderr
    metrics = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert metrics["latent"]["layer"] == "encoder.2" and metrics["latent"]["dims"] == 10
    for picture in ("reconstructions.png", "latent.png", "loss.png"):
        assert (tmp_path / "a" / picture).is_file()
    det = cli("detect", str(tmp_path / "a"), "--normal-class", "1")
    assert det.returncode == 0 and "AUROC" in det.stdout, det.stderr


def test_seed_seqvae_states_its_posterior_trains_the_elbo_and_survives_sigkill(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    straight = cli(*SEQ, "--out", str(tmp_path / "a"))
    assert straight.returncode == 0, straight.stderr
    said = " ".join(straight.stderr.split())
    assert "posterior sampled at encoder.rsample (Normal.rsample)" in said and "trains the ELBO" in said
    killed = tmp_path / "b"
    p = subprocess.Popen([sys.executable, "-m", "aelab", *SEQ, "--out", str(killed), "-q"], cwd=ROOT, env=ENV,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    end = time.monotonic() + 240
    while not complete_checkpoints(killed) and p.poll() is None and time.monotonic() < end:
        time.sleep(0.01)
    p.send_signal(signal.SIGKILL)
    p.wait()
    while True:  # resumed until done (a kill after the last epoch leaves nothing to do)
        r = cli("train", "--resume", str(killed), "-q")
        assert r.returncode == 0, r.stderr
        if len(json.loads((complete_checkpoints(killed)[-1] / "state.json").read_text())["history"]) == 2:
            break
    a, b = _weights(tmp_path / "a"), _weights(killed)
    assert all(torch.equal(a[k], b[k]) for k in a)

    result = aelab.evaluate(tmp_path / "a", nll_samples=0, limit=24)
    assert result.posterior is not None
    assert result.posterior.kl_per_sample > 0 and result.posterior.dims == 256
    assert 0 <= result.posterior.active_units <= 256 and len(result.posterior.kl_per_dim) == 256
    assert {"reconstructions.png", "samples.png", "latent.png"} <= {Path(p).name for p in result.pictures}
    det = aelab.detect(tmp_path / "a", score="latent")
    assert det.score == "latent" and len(det.scores) == len(det.rows)


def test_free_bits_and_kl_warmup_raise_active_units_on_a_collapsing_vae(tmp_path: Path) -> None:
    """dense-vae on digits with a 16-wide latent: 8 of 16 units stay active; a 10-epoch KL warm-up keeps 10,
    0.5 free nats per dimension keep all 16 (20 epochs, seed 0; numbers in the note)."""
    active = {}
    for name, extra in (("plain", {}), ("warmup", {"kl_warmup": 10}), ("free_bits", {"free_bits": 0.5})):
        run = aelab.train("dense-vae", "digits", out=tmp_path / name, epochs=20, latent=16, hidden=[64], seed=0,
                          quiet=True, **extra)
        active[name] = run.history[-1]["active_units"]
    assert active["plain"] < active["warmup"] and active["plain"] < active["free_bits"], active
    assert active == {"plain": 8, "warmup": 10, "free_bits": 16}


@pytest.mark.parametrize("flag", ["--kl-warmup", "--free-bits"])
def test_kl_options_refuse_negative_values(cli, flag: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    r = cli("train", "--kind", "dense-vae", "--data", "digits", flag, "-1", "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and flag in r.stderr
