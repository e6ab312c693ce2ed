"""`torchrun --nproc-per-node 2 -m aelab train` on the CPU (gloo): both ranks end with identical weights,
equal (to rounding) to one process training on the same global batches."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from aelab.errors import UsageError
from aelab.training import TrainConfig, load_run, train
from aelab.training.checkpoint import complete_checkpoints
from aelab.training.distributed import weights_digest

ROOT = Path(__file__).resolve().parents[2]
ARGS = ["--kind", "dense", "--data", "digits", "--latent", "8", "--hidden", "32", "--epochs", "2",
        "--batch-size", "64", "--device", "cpu", "--seed", "1"]


@pytest.mark.slow
def test_two_gloo_ranks_train_identical_weights(tmp_path: Path) -> None:
    run = tmp_path / "ddp"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           "-m", "aelab", "train", *ARGS, "--out", str(run)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("finished after 2 epochs") == 1  # only rank 0 reports

    ranks = json.loads((run / "ranks.json").read_text())
    assert ranks["world_size"] == 2 and ranks["identical"] and len(set(ranks["sha256"])) == 1
    last = complete_checkpoints(run)[-1]
    assert json.loads((last / "state.json").read_text())["world_size"] == 2
    model = load_run(run).model
    model.load_state_dict(load_file(last / "model.safetensors"))
    assert weights_digest(model) == ranks["sha256"][0]  # the digests are of the weights that were saved

    # one process on the same global batches: DDP averages the two half-batch gradients into the same mean
    single = TrainConfig(kind="dense", data="digits", latent=8, model_options={"hidden": [32]}, epochs=2,
                         batch_size=64, device="cpu", seed=1)
    train(tmp_path / "one", single, quiet=True)
    a, b = load_file(last / "model.safetensors"), load_file(complete_checkpoints(tmp_path / "one")[-1] /
                                                            "model.safetensors")
    assert a.keys() == b.keys()
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-4

    with pytest.raises(UsageError, match="written by 2 process"):
        train(run, None, epochs=3, quiet=True)
