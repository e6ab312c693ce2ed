"""The trainer in-process: bit-exact resume, atomic checkpoints, schedules, NaN stops, early stopping."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from aelab.errors import UsageError
from aelab.training import Diverged, TrainConfig, train
from aelab.training import rng as rngmod
from aelab.training.checkpoint import (
    complete_checkpoints,
    latest_checkpoint,
    load_checkpoint,
    optimizer_join,
    optimizer_split,
    read_weights,
    save_checkpoint,
    weights_bytes,
)
from aelab.training.schedule import lr_at


def _config(**over: object) -> TrainConfig:
    base = dict(kind="dense-vae", data="digits", latent=4, model_options={"hidden": [32], "noise": 0.05},
                epochs=3, batch_size=32, limit=400, seed=5)
    base.update(over)
    return TrainConfig(**base)  # type: ignore[arg-type]


def _tensors(run: Path) -> dict[str, torch.Tensor]:
    last = complete_checkpoints(run)[-1]
    out = {f"model.{k}": v for k, v in load_file(last / "model.safetensors").items()}
    out |= {f"opt.{k}": v for k, v in load_file(last / "optimizer.safetensors").items()}
    out |= {f"best.{k}": v for k, v in load_file(run / "model.safetensors").items()}
    return out


def test_resume_gives_the_weights_of_an_uninterrupted_run(tmp_path: Path) -> None:
    """3 epochs straight vs 2 epochs, stop, resume 1: every weight and optimizer tensor equal (torch.equal).
    A VAE with input noise: the reparameterisation and the noise both draw from the checkpointed RNG."""
    straight = train(tmp_path / "a", _config(), quiet=True)
    part = train(tmp_path / "b", _config(), quiet=True, stop_after=2)
    assert part.epochs_done == 2 and not part.finished
    done = train(tmp_path / "b", None, quiet=True)
    assert done.finished and done.resumed_from == 2 and straight.finished
    a, b = _tensors(tmp_path / "a"), _tensors(tmp_path / "b")
    assert a.keys() == b.keys() and len(a) > 10
    assert all(torch.equal(a[k], b[k]) for k in a)
    other = train(tmp_path / "c", _config(seed=6), quiet=True)  # the comparison can fail: another seed differs
    assert other.finished and not all(torch.equal(a[k], v) for k, v in _tensors(tmp_path / "c").items())


def test_resuming_a_finished_run_changes_nothing_and_more_epochs_extend_it(tmp_path: Path) -> None:
    train(tmp_path / "r", _config(epochs=1), quiet=True)
    before = (tmp_path / "r" / "model.safetensors").read_bytes()
    again = train(tmp_path / "r", None, quiet=True)
    assert again.epochs_done == 1 and (tmp_path / "r" / "model.safetensors").read_bytes() == before
    longer = train(tmp_path / "r", None, epochs=2, quiet=True)
    assert longer.epochs_done == 2 and [p.name for p in complete_checkpoints(tmp_path / "r")][-1] == "epoch-0002"


def test_a_new_run_refuses_a_folder_that_holds_one(tmp_path: Path) -> None:
    train(tmp_path / "r", _config(epochs=1), quiet=True)
    with pytest.raises(UsageError, match="already holds a run"):
        train(tmp_path / "r", _config(epochs=1), quiet=True)


def test_checkpoints_are_complete_or_absent(tmp_path: Path) -> None:
    run = tmp_path / "r"
    train(run, _config(epochs=2), quiet=True, stop_after=2)
    root = run / "checkpoints"
    # what a kill during a save leaves behind: a temporary folder with a partial file
    partial = root / ".tmp-epoch-0003-12345"
    partial.mkdir()
    (partial / "model.safetensors").write_bytes(b"\x00" * 10)
    assert [p.name for p in complete_checkpoints(run)] == ["epoch-0001", "epoch-0002"]
    assert latest_checkpoint(run) is not None and latest_checkpoint(run).epoch == 2  # type: ignore[union-attr]
    train(run, None, epochs=3, quiet=True)
    assert not partial.exists()  # resume cleaned it up
    assert [p.name for p in complete_checkpoints(run)] == ["epoch-0002", "epoch-0003"]  # keeps the newest 2


def test_damaged_checkpoint_files_are_reported_not_loaded(tmp_path: Path) -> None:
    run = tmp_path / "r"
    train(run, _config(epochs=1), quiet=True)
    ck = complete_checkpoints(run)[-1]
    good = load_checkpoint(ck)
    assert good.epoch == 1 and good.state["sha256"]["model.safetensors"] == \
        hashlib.sha256((ck / "model.safetensors").read_bytes()).hexdigest()
    for name in ("model.safetensors", "optimizer.safetensors"):
        bad = tmp_path / f"bad-{name}"
        shutil.copytree(ck, bad)
        data = bytearray((bad / name).read_bytes())
        data[-3] ^= 0xFF  # one flipped bit in the tensor bytes: the safetensors header still parses
        (bad / name).write_bytes(bytes(data))
        with pytest.raises(UsageError, match=f"{name} is corrupt"):
            load_checkpoint(bad)
    (ck / "state.json").write_text('{"epoch": 1, "sha2')
    with pytest.raises(UsageError, match=r"state\.json is corrupt"):
        load_checkpoint(ck)
    (run / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{bad")
    with pytest.raises(UsageError, match=r"model\.safetensors is corrupt"):
        read_weights(run / "model.safetensors")


def test_optimizer_state_survives_safetensors_and_json() -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3))
    opt = torch.optim.AdamW(net.parameters(), lr=0.01, weight_decay=0.1)
    for _ in range(3):
        opt.zero_grad()
        net(torch.randn(8, 5)).square().mean().backward()
        opt.step()
    tensors, meta = optimizer_split(opt.state_dict())
    blob = weights_bytes(tensors)
    from safetensors.torch import load as load_bytes

    twin = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3))
    twin.load_state_dict(net.state_dict())
    opt2 = torch.optim.AdamW(twin.parameters(), lr=0.5)
    opt2.load_state_dict(optimizer_join(load_bytes(blob), meta))
    x = torch.randn(8, 5)
    for model, o in ((net, opt), (twin, opt2)):
        o.zero_grad()
        model(x).square().mean().backward()
        o.step()
    assert all(torch.equal(a, b) for a, b in zip(net.parameters(), twin.parameters()))


def test_rng_state_round_trips_through_json() -> None:
    import json
    import random

    gen = torch.Generator().manual_seed(1)
    rngmod.seed_everything(11)
    saved = json.loads(json.dumps(rngmod.capture(gen)))
    first = (torch.rand(3), np.random.rand(3), random.random(), torch.randperm(10, generator=gen))
    rngmod.restore(saved, gen)
    again = (torch.rand(3), np.random.rand(3), random.random(), torch.randperm(10, generator=gen))
    assert torch.equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    assert first[2] == again[2] and torch.equal(first[3], again[3])


def test_schedules_match_torch_schedulers() -> None:
    base, total = 0.01, 40
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=base)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total, eta_min=0.0)
    for step in range(total):
        assert lr_at(step, total, base, "cosine") == pytest.approx(opt.param_groups[0]["lr"], rel=1e-9, abs=1e-15)
        opt.step()
        cosine.step()
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=base)
    multi = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[20, 30], gamma=0.1)
    for step in range(total):
        assert lr_at(step, total, base, "step") == pytest.approx(opt.param_groups[0]["lr"], rel=1e-9)
        opt.step()
        multi.step()
    assert [lr_at(s, 100, 1.0, "constant", warmup_steps=4) for s in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]


def test_a_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    data = tmp_path / "x.npy"
    np.save(data, np.random.default_rng(0).normal(size=(300, 6)).astype(np.float32))
    config = TrainConfig(kind="dense", data=str(data), latent=2, model_options={"hidden": [8]}, epochs=3,
                         batch_size=50, normalize="none")
    run = tmp_path / "r"
    train(run, config, quiet=True, stop_after=1)
    kept = (run / "model.safetensors").read_bytes()
    np.save(data, np.full((300, 6), 1e30, np.float32))  # the data changed under the run: the loss overflows
    with pytest.raises(Diverged, match=r"loss became (inf|nan) in epoch 2.*epoch-0001, epoch 1"):
        train(run, None, quiet=True)
    assert [p.name for p in complete_checkpoints(run)] == ["epoch-0001"]
    assert load_checkpoint(complete_checkpoints(run)[0]).epoch == 1
    assert (run / "model.safetensors").read_bytes() == kept


def test_early_stopping_keeps_the_best_epoch(tmp_path: Path) -> None:
    result = train(tmp_path / "r", _config(epochs=5, patience=2, min_delta=1e9), quiet=True)
    assert result.finished and result.stopped_early and result.epochs_done == 3 and result.best_epoch == 1
    best = read_weights(tmp_path / "r" / "model.safetensors")
    first = complete_checkpoints(tmp_path / "r")
    assert [p.name for p in first] == ["epoch-0002", "epoch-0003"]
    last = load_file(first[-1] / "model.safetensors")
    assert not all(torch.equal(best[k], last[k]) for k in best)  # the best (epoch 1) weights, not the last


def test_save_checkpoint_replaces_an_epoch_redone(tmp_path: Path) -> None:
    sd = {"w": torch.ones(2)}
    opt = {"state": {}, "param_groups": [{"lr": 0.1, "params": [0]}]}
    save_checkpoint(tmp_path, 1, sd, opt, {"history": []})
    save_checkpoint(tmp_path, 1, {"w": torch.zeros(2)}, opt, {"history": []})
    ck = latest_checkpoint(tmp_path)
    assert ck is not None and torch.equal(ck.model["w"], torch.zeros(2))
    assert not list((tmp_path / "checkpoints").glob(".tmp-*"))
