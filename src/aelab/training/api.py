"""`aelab.train(model, data, **options) -> Run`: the trainer behind `aelab train`, from Python.

`model` is a built kind's name (`"conv-vae"`), a spec (`"examples/seeds.py:AE"`), a class or factory
(with `args=`), or an nn.Module instance (trained in place; `args=` its constructor arguments, so the
run can rebuild it). `data` is an embedded set's name, a path, a tensor or array, or a torch Dataset
(rows `x` or `(x, label)`): in-memory data are saved into the run folder as `data.npy`.
Every other keyword is a `TrainConfig` field (`epochs`, `batch_size`, `kl_warmup`, `free_bits`, ...)
or, for a built kind, a model option (`channels`, `beta`, ...).
"""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from aelab.errors import UsageError
from aelab.io import atomic_write
from aelab.training.config import TrainConfig
from aelab.training.run import RunResult
from aelab.training.run import train as train_run

DataLike = str | Path | torch.Tensor | np.ndarray | torch.utils.data.Dataset
ModelLike = str | nn.Module | type[nn.Module] | Any


@dataclass
class Run(RunResult):
    """A finished (or stopped) run: how it ended (`RunResult`), the trained model and its config."""

    model: nn.Module | None = None  # the user's own module (with the best weights), or the built autoencoder
    config: TrainConfig | None = None
    lines: list[str] = field(default_factory=list)  # what the run said about the model at the start

    @property
    def path(self) -> Path:
        return self.run_dir

    def __str__(self) -> str:
        state = "finished" if self.finished else "stopped"
        return f"run {self.run_dir}: {state} after {self.epochs_done} epochs"


def _npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def _save_arrays(out: Path, x: np.ndarray, y: np.ndarray | None) -> tuple[str, dict[str, Any]]:
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "data.npy", _npy_bytes(np.ascontiguousarray(x)))
    options: dict[str, Any] = {}
    if y is not None:
        atomic_write(out / "data-labels.npy", _npy_bytes(np.asarray(y).reshape(-1)))
        options["labels"] = str((out / "data-labels.npy").resolve())
    return str((out / "data.npy").resolve()), options


def _data(data: DataLike, out: Path) -> tuple[str, dict[str, Any]]:
    """The data as the run stores it: a name or path (and its options)."""
    if isinstance(data, str | Path):
        return str(data), {}
    if isinstance(data, torch.Tensor):
        return _save_arrays(out, data.detach().cpu().numpy(), None)
    if isinstance(data, np.ndarray):
        return _save_arrays(out, data, None)
    if isinstance(data, torch.utils.data.Dataset):
        items = [data[i] for i in range(len(data))]  # type: ignore[arg-type]
        if not items:
            raise UsageError("the Dataset is empty")
        if isinstance(items[0], tuple | list):
            x = torch.stack([torch.as_tensor(it[0]) for it in items]).numpy()
            y = np.asarray([int(torch.as_tensor(it[1])) for it in items]) if len(items[0]) > 1 else None
            return _save_arrays(out, x, y)
        return _save_arrays(out, torch.stack([torch.as_tensor(it) for it in items]).numpy(), None)
    raise UsageError(f"data must be a name, a path, a tensor, an array or a torch Dataset, not {type(data).__name__}")


def _split_options(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    fields = {f.name for f in dataclasses.fields(TrainConfig)} - {"kind", "data", "model", "model_args"}
    return {k: v for k, v in options.items() if k in fields}, {k: v for k, v in options.items() if k not in fields}


def train(model: ModelLike, data: DataLike | TrainConfig | None = None, *, out: str | Path | None = None,
          args: dict[str, Any] | None = None, quiet: bool = False, epochs: int | None = None,
          **options: Any) -> Run:
    """Train `model` on `data` into the run folder `out` (default runs/NAME-DATA); see the module docstring.

    `train(run_dir, config)` trains a run from a `TrainConfig`, and `train(run_dir)` resumes the run there
    (`epochs`: a new total). Raises UsageError (one sentence) for bad options, data that do not fit, or an
    ambiguous loss."""
    if isinstance(data, TrainConfig) or data is None:
        if not isinstance(model, str | Path):
            raise UsageError("train(run_dir, config) or train(run_dir) to resume: the run folder comes first")
        return _finish(Path(model), train_run(Path(model), data, epochs=epochs, quiet=quiet), None)
    if epochs is not None:
        options["epochs"] = epochs
    from aelab.models import KINDS
    from aelab.training.user import absolute_spec, construct, spec_of

    train_opts, model_opts = _split_options(options)
    instance: nn.Module | None = None
    if isinstance(model, str) and model in KINDS:
        kind, spec, name = model, None, model
    else:
        kind = "user"
        if isinstance(model, str):
            spec = absolute_spec(model)
        elif isinstance(model, nn.Module):
            instance, spec = model, spec_of(model)
        elif isinstance(model, type):
            spec = _class_spec(model)
        else:
            raise UsageError(f"model must be a kind name, FILE.py:Name, an nn.Module class or instance, "
                             f"not {type(model).__name__}")
        name = spec.rpartition(":")[2]
        beta = model_opts.pop("beta", None)
        if model_opts:
            raise UsageError(f"unknown options for your own model: {', '.join(sorted(model_opts))} "
                             "(constructor arguments go in args={...})")
        if beta is not None:
            train_opts["beta"] = float(beta)
        if instance is not None:
            _check_rebuild(instance, spec, args or {}, construct)
    stem = Path(str(data)).stem if isinstance(data, str | Path) else "data"
    run_dir = Path(out) if out is not None else Path("runs") / f"{name}-{stem}"
    data_name, data_options = _data(data, run_dir)
    train_opts.setdefault("latent", 16)
    if isinstance(model, str) and model in KINDS:
        if "beta" in train_opts:  # a built VAE's beta is an option of its model
            model_opts["beta"] = train_opts.pop("beta")
        train_opts["model_options"] = {**model_opts, **train_opts.get("model_options", {})}
    config = TrainConfig(kind=kind, data=data_name, model=spec, model_args=dict(args or {}),
                         data_options={**data_options, **train_opts.pop("data_options", {})}, **train_opts)
    config.validate()
    return _finish(run_dir, train_run(run_dir, config, quiet=quiet, net=instance), instance)


def _finish(run_dir: Path, result: RunResult, instance: nn.Module | None) -> Run:
    """The Run record: the result, and the model with the run's best weights (loaded back from its folder)."""
    from aelab.training.rundir import load_run

    loaded = load_run(run_dir)
    trained: nn.Module = loaded.model
    lines: list[str] = []
    if loaded.info.train.kind == "user":
        lines = loaded.model.describe()[1:]
        trained = loaded.model.net
        if instance is not None:  # the user's own object ends with the run's best weights
            instance.load_state_dict(trained.state_dict())
            trained = instance
    fields = {f.name: getattr(result, f.name) for f in dataclasses.fields(RunResult)}
    return Run(**fields, model=trained, config=loaded.info.train, lines=lines)


def _class_spec(cls: type) -> str:
    import inspect as pyinspect

    path = pyinspect.getsourcefile(cls)
    if path is None:
        raise UsageError(f"{cls.__qualname__} has no source file a run could rebuild it from")
    return f"{Path(path).resolve()}:{cls.__qualname__}"


def _check_rebuild(instance: nn.Module, spec: str, args: dict[str, Any], construct: Any) -> None:
    """A run rebuilds the model from spec + args: they must make a model of the instance's shapes."""
    try:
        with torch.device("meta"):
            again = construct(spec, args)
    except UsageError as exc:
        raise UsageError(f"{exc}; pass the constructor arguments as aelab.train(model, data, args={{...}})") from exc
    mine = {k: tuple(v.shape) for k, v in instance.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in again.state_dict().items()}
    if mine != theirs:
        raise UsageError(f"{spec} built with args={args} has other weights than the model given; pass its "
                         "constructor arguments as args={...} so the run can rebuild it")
