"""The run folder: what `aelab train` leaves behind and what `evaluate` and `detect` read back.

    runs/NAME/config.json                 training config, model config, normalisation, data summary
    runs/NAME/model.safetensors           best weights by validation loss (the last epoch's without validation)
    runs/NAME/checkpoints/epoch-NNNN/     the newest complete epochs, for --resume (see checkpoint.py)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from aelab.data.records import Normalizer
from aelab.errors import UsageError
from aelab.training.checkpoint import (
    atomic_write_json,
    check_finite,
    load_into,
    newest_state,
    read_json,
    read_weights,
)
from aelab.training.config import TrainConfig

if TYPE_CHECKING:
    from aelab.models import Autoencoder

CONFIG = "config.json"
MODEL = "model.safetensors"
FORMAT = 1


@dataclass
class RunInfo:
    """Everything needed to rebuild a run's model and feed it data the way training did."""

    train: TrainConfig
    model: dict[str, Any]
    normalizer: Normalizer
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "train": self.train.to_dict(), "model": self.model,
                "normalizer": self.normalizer.to_dict(), "data": self.data}

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: Path) -> RunInfo:
        try:
            return cls(TrainConfig.from_dict(d["train"]), dict(d["model"]),
                       Normalizer.from_dict(d["normalizer"]), dict(d.get("data", {})))
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"{where} is corrupt: {type(exc).__name__}: {exc}") from exc
        except UsageError as exc:
            raise UsageError(f"{where} is corrupt: {exc}") from exc


def write_info(run_dir: Path, info: RunInfo) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(run_dir / CONFIG, info.to_dict())


def read_info(run_dir: Path) -> RunInfo:
    if not run_dir.is_dir():
        raise UsageError(f"no run folder at {run_dir}")
    if not (run_dir / CONFIG).is_file():
        raise UsageError(f"{run_dir} is not a run folder: it has no {CONFIG}")
    raw = read_json(run_dir / CONFIG)
    if not isinstance(raw, dict):
        raise UsageError(f"{run_dir / CONFIG} is corrupt: not a JSON object")
    return RunInfo.from_dict(raw, run_dir / CONFIG)


def build_model(info: RunInfo, where: Path) -> Autoencoder:
    """The run's model, freshly initialised, from its stored config."""
    from aelab.models import from_config

    if info.train.kind == "user":
        from aelab.training.user import rebuild_user

        return rebuild_user(info.model)  # type: ignore[return-value]
    try:
        return from_config(info.train.kind, info.model)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"{where / CONFIG}: its model config cannot be built: {exc}") from exc


@dataclass
class LoadedRun:
    """A trained run ready to use: its info, the model with weights (eval mode) and its history."""

    path: Path
    info: RunInfo
    model: Any
    history: list[dict[str, Any]]
    device: torch.device


def load_run(run_dir: Path, device: torch.device | str = "cpu") -> LoadedRun:
    """Read config, weights and history; a missing, corrupt or mismatched file is a UsageError."""
    info = read_info(run_dir)
    model = build_model(info, run_dir)
    if not (run_dir / MODEL).is_file():
        raise UsageError(f"{run_dir} has no {MODEL} yet: train it (or resume it) until an epoch ends")
    weights = read_weights(run_dir / MODEL)  # checked against its recorded SHA-256
    check_finite(weights, run_dir / MODEL)  # broken weights are said as such, before any metric
    load_into(model, weights, run_dir / MODEL)
    # only the history: the checkpoint's weights and optimizer state are not needed here
    state = newest_state(run_dir)
    history: list[dict[str, Any]] = list(state.get("history", [])) if state else []
    dev = torch.device(device)
    model.to(dev).eval()
    return LoadedRun(run_dir, info, model, history, dev)
