"""Bad input to train/evaluate/detect/data exits 2 with one clear line on stderr, never a traceback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from aelab.training import TrainConfig, train
from aelab.training.checkpoint import complete_checkpoints

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "tiny"
    config = TrainConfig(kind="dense", data="digits", latent=3, model_options={"hidden": [16]}, epochs=1,
                         batch_size=64, limit=300)
    train(run, config, quiet=True)
    return run


def _spawn(args: list[str], **env: str) -> subprocess.Popen[str]:
    full = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1", **env}
    return subprocess.Popen([sys.executable, "-m", "aelab", *args], cwd=ROOT, env=full, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("aelab: ") and "Traceback" not in stderr, stderr
    return lines[0]


@pytest.mark.slow
def test_bad_input_through_the_real_entry_point(trained: Path, tmp_path: Path) -> None:
    """All invocations start at once (each pays the torch import); each must exit 2 with one line."""
    nan = tmp_path / "nan.npy"
    x = np.zeros((20, 4), np.float32)
    x[[3, 11]] = np.nan
    np.save(nan, x)
    corrupt = tmp_path / "corrupt"
    shutil.copytree(trained, corrupt)
    blob = complete_checkpoints(corrupt)[-1] / "model.safetensors"
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0x01
    blob.write_bytes(bytes(data))
    mismatch = tmp_path / "mismatch"
    shutil.copytree(trained, mismatch)
    config = json.loads((mismatch / "config.json").read_text())
    config["model"]["latent"] = 5
    (mismatch / "config.json").write_text(json.dumps(config))
    cases = {
        "unknown data": (["train", "--kind", "dense", "--data", "nope", "--out", str(tmp_path / "a")], {},
                         "unknown data 'nope'"),
        "uninstalled set": (["train", "--kind", "conv", "--data", "fashion-mnist", "--out", str(tmp_path / "b")],
                            {"AELAB_DATA_FASHION_MNIST": "/nonexistent"}, "apt-get install dataset-fashion-mnist"),
        "nan data": (["train", "--kind", "dense", "--data", str(nan), "--out", str(tmp_path / "c")], {},
                     "2 rows contain NaN or inf (row 3, row 11); pass --skip-bad"),
        "corrupt checkpoint": (["train", "--resume", str(corrupt), "--epochs", "2"], {},
                               "model.safetensors is corrupt"),
        "config vs weights": (["evaluate", str(mismatch)], {}, "does not match its config"),
    }
    procs = {name: (_spawn(args, **env), want) for name, (args, env, want) in cases.items()}
    for name, (proc, want) in procs.items():
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 2, f"{name}: exit {proc.returncode}: {err}"
        assert want in _one_line(err), f"{name}: {err}"


def test_more_bad_input_in_process(cli, trained: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cases = [
        (["train", "--kind", "dense", "--data", "digits", "--channels", "8", "--out", str(tmp_path / "x")],
         "unknown option 'channels' for kind 'dense'"),
        (["train", "--resume", str(trained), "--lr", "0.1"], "drop --lr"),
        (["train", "--kind", "dense", "--data", "digits", "--latent", "0"], "'--latent': 0 is not in the range x>=1"),
        (["train", "--kind", "dense", "--data", "shuttle", "--likelihood", "bernoulli", "--out", str(tmp_path / "y")],
         "likelihood bernoulli needs data in [0, 1]"),
        (["train", "--kind", "dense", "--data", "digits", "--normal-class", "42", "--out", str(tmp_path / "z")],
         "no training rows have label 42"),
        (["train", "--kind", "dense", "--data", "digits", "--out", str(trained)], "already holds a run"),
        (["evaluate", str(tmp_path)], "is not a run folder"),
        (["detect", str(trained), "--data", "shuttle"], "has rows of shape (9,)"),
        (["detect", str(trained), "--score", "elbo"], "needs a VAE"),
    ]
    for args, want in cases:
        result = cli(*args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert want in _one_line(result.stderr), (args, result.stderr)


def test_data_list_says_what_is_installed_and_how(cli, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AELAB_DATA_SPEECH", "/nonexistent")
    result = cli("data", "list")
    assert result.returncode == 0
    rows = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if line.count("│") > 5}
    assert set(rows) >= {"fashion-mnist", "mnist", "digits", "speech", "shuttle"}
    assert "70,000" in rows["fashion-mnist"] and "49,097" in rows["shuttle"]
    assert " no " in rows["speech"] and "apt-get install alsa-utils" in rows["speech"]
    assert " yes " in rows["digits"]
    shown = cli("data", "show", "speech")
    assert shown.returncode == 2 and "apt-get install alsa-utils" in _one_line(shown.stderr)
