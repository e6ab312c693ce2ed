"""A whole training run: data, model, resume, the epoch loop, checkpoints, early stopping.

Reproducibility on the CPU: the seed fixes the weights' initialisation, the train/validation split
and the shuffling generator; every RNG state is checkpointed at the end of each epoch, so
`--resume` from epoch k gives bit-for-bit the weights an uninterrupted run has.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from aelab import data as datamod
from aelab.errors import Interrupted, UsageError
from aelab.evaluation.posterior import PosteriorReport, posterior_report, summary_line
from aelab.models.base import KLControl
from aelab.training import rng
from aelab.training.checkpoint import (
    Checkpoint,
    atomic_write,
    atomic_write_json,
    complete_checkpoints,
    latest_checkpoint,
    load_into,
    remove_partial,
    save_checkpoint,
    weights_bytes,
)
from aelab.training.config import TrainConfig
from aelab.training.distributed import World, barrier, gather_digests, gather_text, setup, teardown, wrap
from aelab.training.lock import run_lock
from aelab.training.logs import TensorBoardLog, write_history_csv
from aelab.training.loop import Diverged, EpochStats, LossModule, train_epoch, validate
from aelab.training.progress import TrainProgress
from aelab.training.rows import Rows, split_rows
from aelab.training.rundir import CONFIG, MODEL, RunInfo, build_model, read_info, write_info
from aelab.training.schedule import lr_at

if TYPE_CHECKING:
    from aelab.models import Autoencoder


@dataclass
class RunResult:
    """How a run (or this invocation of it) ended."""

    run_dir: Path
    epochs_done: int
    finished: bool
    stopped_early: bool
    best_epoch: int | None
    best_val: float | None
    history: list[dict[str, Any]] = field(default_factory=list)
    digests: list[str] = field(default_factory=list)
    resumed_from: int = 0
    main: bool = True  # rank 0 (the process that writes files and reports)


def _default_likelihood(config: TrainConfig, ds: datamod.Dataset, normalizer: datamod.Normalizer) -> None:
    from aelab.models import KINDS
    from aelab.models.config import option_names

    if config.kind == "user":
        return
    if config.kind not in KINDS:
        raise UsageError(f"unknown kind {config.kind!r}; known kinds: {', '.join(KINDS)}")
    if "likelihood" in option_names(KINDS[config.kind].config) and "likelihood" not in config.model_options:
        unit = ds.unit_interval and normalizer.identity
        config.model_options["likelihood"] = "bernoulli" if unit else "gaussian"
    if config.model_options.get("likelihood") == "bernoulli" and not (ds.unit_interval and normalizer.identity):
        raise UsageError(f"--likelihood bernoulli needs data in [0, 1], and '{config.data}' is not "
                         "(after normalisation); use --likelihood gaussian")


def _data_summary(ds: datamod.Dataset, rows: Rows) -> dict[str, Any]:
    return {"name": ds.name, "kind": ds.kind, "sample_shape": list(ds.sample_shape),
            "unit_interval": ds.unit_interval,
            "class_names": list(ds.class_names) if ds.class_names else None,
            "rows": {"train": len(rows.train), "val": len(rows.val), "test": len(rows.test)},
            "meta": {k: v for k, v in ds.meta.items() if k != "files"}, "notes": ds.notes}


@dataclass
class _Ledger:
    """The JSON part of a checkpoint: progress, early stopping and history."""

    epoch: int = 0
    best_val: float | None = None
    best_epoch: int | None = None
    bad_epochs: int = 0
    finished: bool = False
    stopped_early: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> _Ledger:
        return cls(int(state["epoch"]), state.get("best_val"), state.get("best_epoch"),
                   int(state.get("bad_epochs", 0)), bool(state.get("finished", False)),
                   bool(state.get("stopped_early", False)), list(state.get("history", [])))


def train(run_dir: Path, config: TrainConfig | None = None, epochs: int | None = None,
          quiet: bool = False, stop_after: int | None = None, net: torch.nn.Module | None = None) -> RunResult:
    """Train a new run from `config`, or resume the one in `run_dir` when `config` is None.

    Under torchrun every rank calls this. `epochs` changes the number of epochs of a resumed run
    (the schedule then spans the new total); `stop_after` ends this invocation after that many
    epochs of the run are done, leaving it to be resumed, exactly as if it had been killed there.
    `net`: a user's model instance to train (kind "user"; otherwise built from `config.model`).
    """
    info = read_info(run_dir) if config is None else None
    chosen = info.train if info is not None else config
    assert chosen is not None
    world = setup(chosen.device)
    try:  # rank 0 writes the files, so it holds the folder's lock for the whole run
        with run_lock(run_dir, new=info is None) if world.main else contextlib.nullcontext():
            try:
                return _train(chosen, info, run_dir, epochs, quiet, world, stop_after, net)
            except KeyboardInterrupt:
                raise Interrupted(_interrupted(run_dir, world)) from None
    finally:
        teardown(world)


def _interrupted(run_dir: Path, world: World) -> str:
    """What Ctrl-C leaves: the newest complete checkpoint stays (saves finish first), the rest is dropped."""
    if world.main:
        remove_partial(run_dir)
    found = complete_checkpoints(run_dir)
    kept = f"the run keeps epoch {int(found[-1].name[6:])} ({found[-1]})" if found else \
        "no epoch had finished, so no epoch is kept"
    return f"interrupted: {kept}; continue it with: aelab train --resume {run_dir}"


@dataclass
class _Setup:
    """A run ready to train: its config and info, data, rows, model and newest checkpoint."""

    config: TrainConfig
    info: RunInfo
    ds: datamod.Dataset
    rows: Rows
    model: Autoencoder
    ckpt: Checkpoint | None


def _new_model(config: TrainConfig, ds: datamod.Dataset, rows: Rows, normalizer: datamod.Normalizer,
               net: torch.nn.Module | None) -> Any:
    if config.kind == "user":
        from aelab.training.user import prepare_user

        return prepare_user(config, ds, rows.train, normalizer, net)
    from aelab.models import build

    try:
        return build(config.kind, ds.sample_shape, config.latent, **config.model_options)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc


def _prepare(config: TrainConfig, info: RunInfo | None, run_dir: Path, epochs: int | None,
             world: World, net: torch.nn.Module | None = None) -> _Setup:
    """Load the data and build the model; a new run writes config.json, a resumed one finds its checkpoint."""
    ckpt: Checkpoint | None = None
    if info is not None:
        if world.main:
            remove_partial(run_dir)
        barrier(world)
        ckpt = latest_checkpoint(run_dir)
    elif (run_dir / CONFIG).exists():
        raise UsageError(f"{run_dir} already holds a run: continue it with --resume {run_dir} or pick another --out")
    if epochs is not None:
        done = ckpt.epoch if ckpt else 0
        if epochs < done:
            raise UsageError(f"--epochs {epochs}: the run already trained {done} epochs")
        config.epochs = epochs
    config.validate()

    ds = datamod.load(config.data, config.data_options, config.skip_bad)
    rows = split_rows(ds, config)
    if info is None:
        normalizer = datamod.fit_normalizer(ds, rows.train, config.normalize)
        _default_likelihood(config, ds, normalizer)
    rng.seed_everything(config.seed)  # the weights' initialisation
    model: Autoencoder
    if info is None:
        model = _new_model(config, ds, rows, normalizer, net)
        info = RunInfo(config, model.config_dict(), normalizer, _data_summary(ds, rows))
        if world.main:
            write_info(run_dir, info)
        barrier(world)
    else:
        model = build_model(info, run_dir)
    if tuple(info.data.get("sample_shape", ds.sample_shape)) != ds.sample_shape:
        raise UsageError(f"data '{config.data}' now has rows of shape {ds.sample_shape}, the run was "
                         f"trained on {tuple(info.data['sample_shape'])}")
    model.to(world.device)
    return _Setup(config, info, ds, rows, model, ckpt)


def _train(config: TrainConfig, info: RunInfo | None, run_dir: Path, epochs: int | None, quiet: bool,
           world: World, stop_after: int | None, net: torch.nn.Module | None = None) -> RunResult:
    run = _prepare(config, info, run_dir, epochs, world, net)
    config, model, ckpt = run.config, run.model, run.ckpt
    resumed_from = ckpt.epoch if ckpt else 0
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay,
                                  fused=True if world.device.type == "cuda" else None)
    shuffle = torch.Generator()
    ledger = _Ledger()
    if ckpt is not None:
        ledger = _restore(ckpt, model, optimizer, shuffle, world)
        if epochs is not None and epochs > ledger.epoch and not ledger.stopped_early:
            ledger.finished = False
    else:
        shuffle.manual_seed(config.seed)
        torch.manual_seed(config.seed + 7919 * (world.rank + 1))  # per-rank noise and VAE samples
    if ledger.finished:
        if world.main and not quiet:
            print(f"{run_dir}: already finished after {ledger.epoch} epochs")
        return _result(run_dir, ledger, gather_digests(model, world), resumed_from, world)
    if stop_after is not None and ledger.epoch >= stop_after:
        return _result(run_dir, ledger, gather_digests(model, world), resumed_from, world)
    _epochs(run, ledger, optimizer, shuffle, run_dir, world, quiet, stop_after)
    digests = gather_digests(model, world)
    if world.distributed and world.main:
        atomic_write_json(run_dir / "ranks.json", {"world_size": world.size, "sha256": digests,
                                                   "identical": len(set(digests)) == 1})
    if len(set(digests)) != 1:
        raise UsageError(f"the {world.size} ranks ended with different weights: {digests}")
    return _result(run_dir, ledger, digests, resumed_from, world)


def _epochs(run: _Setup, ledger: _Ledger, optimizer: torch.optim.Optimizer, shuffle: torch.Generator,
            run_dir: Path, world: World, quiet: bool, stop_after: int | None) -> None:
    """The epoch loop: train, validate, keep the best weights, checkpoint, stop early or on NaN."""
    config, model, rows, normalizer = run.config, run.model, run.rows, run.info.normalizer
    shaped = LossModule(model, kl_control(config, 0, 1))
    net = wrap(shaped, world)
    if config.compile:
        torch._logging.set_logs(dynamo=logging.ERROR)  # graph-break advice is for aelab's developers
        net = torch.compile(net)  # type: ignore[assignment]
    plain = LossModule(model)
    batches = datamod.DeviceBatches(run.ds, rows.train, config.batch_size, world.device, normalizer, shuffle,
                                    world.rank, world.size)
    val_batches = datamod.DeviceBatches(run.ds, rows.val, config.batch_size, world.device, normalizer, None,
                                        world.rank, world.size) if len(rows.val) else None
    steps = len(batches)
    if steps == 0:
        raise UsageError(f"--batch-size {config.batch_size} leaves no batch for {len(rows.train)} training rows")
    first = ledger.epoch + 1
    # reading the running loss synchronises a GPU, and across ranks it is a collective: only a single
    # CPU process reads it every step for free
    check_every = 1 if world.device.type == "cpu" and not world.distributed else 50

    board = TensorBoardLog(run_dir) if config.log == "tensorboard" and world.main else None
    try:
        _loop(run, ledger, optimizer, shuffle, run_dir, world, quiet, stop_after, net, shaped, plain, batches,
              val_batches, steps, first, check_every, board)
    finally:
        if board is not None:
            board.close()


def _loop(run: _Setup, ledger: _Ledger, optimizer: torch.optim.Optimizer, shuffle: torch.Generator, run_dir: Path,
          world: World, quiet: bool, stop_after: int | None, net: Any, shaped: LossModule, plain: LossModule,
          batches: Any, val_batches: Any, steps: int, first: int, check_every: int,
          board: TensorBoardLog | None) -> None:
    config, model = run.config, run.model
    total_steps, warmup = steps * config.epochs, steps * config.warmup_epochs
    rows = run.rows
    with TrainProgress(config.epochs, steps, first, quiet=quiet or not world.main) as progress:
        described = model.describe()
        if first == 1:
            progress.line("; ".join(described[:1] if config.kind == "user" else described)
                          + f"; {len(rows.train):,} train / {len(rows.val):,} val rows"
                          + (f"; {world.size} ranks" if world.distributed else ""))
        for line in described[1:] if config.kind == "user" else []:
            progress.line(line)

        def set_kl(step: int) -> None:
            shaped.control = kl_control(config, step, steps)

        for epoch in range(first, config.epochs + 1):
            progress.start_epoch(epoch)
            try:
                stats = train_epoch(net, optimizer, batches, steps,
                                    lambda s: lr_at(s, total_steps, config.lr, config.schedule, warmup),
                                    (epoch - 1) * steps, world, config.amp, config.grad_clip, check_every,
                                    progress.update, epoch, set_kl)
                val = validate(plain, val_batches, world, config.amp) if val_batches is not None else None
                if val is not None and not math.isfinite(val.loss):
                    raise Diverged(f"the validation loss became {val.loss} in epoch {epoch}")
            except Diverged as exc:
                raise Diverged(f"{exc}; stopped, keeping the last good checkpoint "
                               f"({_last_good(run_dir, ledger)}); lower --lr (now {config.lr:g}) "
                               f"or set --grad-clip and train again") from None
            _end_epoch(ledger, epoch, stats, val, optimizer, config)
            diagnosis = _diagnose(model, val_batches)
            if diagnosis is not None:
                ledger.history[-1].update(active_units=diagnosis.active_units, latent_units=diagnosis.dims,
                                          kl_per_sample=diagnosis.kl_per_sample)
            improved = ledger.best_epoch == epoch
            if world.main and improved:  # before the checkpoint: a resumed run then always finds them consistent
                atomic_write(run_dir / MODEL, weights_bytes(model.state_dict()))
            states = gather_text(json.dumps(rng.capture(shuffle)), world)
            if world.main:
                state = {"best_val": ledger.best_val, "best_epoch": ledger.best_epoch,
                         "bad_epochs": ledger.bad_epochs, "finished": ledger.finished,
                         "stopped_early": ledger.stopped_early, "history": ledger.history,
                         "world_size": world.size, "rng": [json.loads(s) for s in states]}
                save_checkpoint(run_dir, epoch, model.state_dict(), optimizer.state_dict(), state,
                                config.keep_checkpoints)
                write_history_csv(run_dir, ledger.history)
                if board is not None:
                    board.epoch(ledger.history[-1])
            barrier(world)
            progress.line(_epoch_line(ledger.history[-1], config.epochs, improved and val is not None))
            if diagnosis is not None and (epoch == config.epochs or ledger.finished or diagnosis.warnings):
                progress.line(f"  posterior on the validation rows: {summary_line(diagnosis)}")
                for warning in diagnosis.warnings:
                    progress.line(f"  warning: {warning}")
            if ledger.finished or (stop_after is not None and epoch >= stop_after):
                if ledger.stopped_early:
                    progress.line(f"stopped early: no better validation loss for {config.patience} epochs; "
                                  f"best was epoch {ledger.best_epoch}")
                return


def _diagnose(model: Any, val_batches: Any) -> PosteriorReport | None:
    """KL per dimension and active units of a model with a posterior, on (up to 1,000) validation rows."""
    from aelab.models.kind import Capability

    if val_batches is None or not model.has(Capability.POSTERIOR):
        return None
    model.eval()
    return posterior_report(model, val_batches, max_rows=1000)


def kl_control(config: TrainConfig, step: int, steps_per_epoch: int) -> KLControl | None:
    """The KL shaping at optimizer `step`: weight (step + 1) / (kl_warmup epochs' steps), capped at 1; free bits."""
    if not config.kl_warmup and not config.free_bits:
        return None
    weight = min(1.0, (step + 1) / (config.kl_warmup * steps_per_epoch)) if config.kl_warmup else 1.0
    return KLControl(weight, config.free_bits)


def _restore(ckpt: Checkpoint, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
             shuffle: torch.Generator, world: World) -> _Ledger:
    saved_world = int(ckpt.state.get("world_size", 1))
    if saved_world != world.size:
        raise UsageError(f"{ckpt.path} was written by {saved_world} process(es); resume with the same number "
                         f"(now {world.size})")
    load_into(model, ckpt.model, ckpt.path / "model.safetensors")
    try:
        optimizer.load_state_dict(ckpt.optimizer)
    except (ValueError, KeyError, RuntimeError) as exc:
        raise UsageError(f"{ckpt.path / 'optimizer.safetensors'} does not fit the model: {exc}") from exc
    try:
        rng.restore(ckpt.state["rng"][world.rank], shuffle)
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as exc:
        raise UsageError(f"{ckpt.path / 'state.json'} is corrupt: bad RNG state ({exc})") from exc
    return _Ledger.from_state(ckpt.state)


def _end_epoch(ledger: _Ledger, epoch: int, stats: EpochStats, val: EpochStats | None,
               optimizer: torch.optim.Optimizer, config: TrainConfig) -> None:
    ledger.epoch = epoch
    record: dict[str, Any] = {"epoch": epoch, "loss": stats.loss, **stats.terms,
                              "lr": optimizer.param_groups[0]["lr"],
                              "samples_per_s": stats.samples_per_s, "seconds": stats.seconds}
    if val is not None:
        record.update(val_loss=val.loss, **{f"val_{k}": v for k, v in val.terms.items()})
        if ledger.best_val is None or val.loss < ledger.best_val - config.min_delta:
            ledger.best_val, ledger.best_epoch, ledger.bad_epochs = val.loss, epoch, 0
        else:
            ledger.bad_epochs += 1
    else:
        ledger.best_epoch = epoch
    ledger.history.append(record)
    ledger.stopped_early = bool(config.patience) and ledger.bad_epochs >= config.patience
    ledger.finished = ledger.stopped_early or epoch >= config.epochs


def _epoch_line(rec: dict[str, Any], epochs: int, best: bool) -> str:
    text = f"epoch {rec['epoch']}/{epochs}  loss {rec['loss']:.5g}"
    if "val_loss" in rec:
        text += f"  val {rec['val_loss']:.5g}"
    if "active_units" in rec:
        text += f"  kl {rec['kl_per_sample']:.4g}  active {rec['active_units']}/{rec['latent_units']}"
    text += f"  lr {rec['lr']:.3g}  {rec['samples_per_s']:,.0f} samples/s  {rec['seconds']:.1f} s"
    return text + ("  (best)" if best else "")


def _last_good(run_dir: Path, ledger: _Ledger) -> str:
    if ledger.epoch == 0:
        return "none: no epoch had finished"
    return f"{run_dir / 'checkpoints' / f'epoch-{ledger.epoch:04d}'}, epoch {ledger.epoch}"


def _result(run_dir: Path, ledger: _Ledger, digests: list[str], resumed_from: int, world: World) -> RunResult:
    return RunResult(run_dir, ledger.epoch, ledger.finished, ledger.stopped_early, ledger.best_epoch,
                     ledger.best_val, ledger.history, digests, resumed_from, world.main)
