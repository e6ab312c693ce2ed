"""Checkpoints written atomically: safetensors for tensors, JSON for everything else, never pickle.

A checkpoint is a folder `checkpoints/epoch-NNNN/` holding `model.safetensors`, `optimizer.safetensors`
and `state.json`. It is first written as `checkpoints/.tmp-epoch-NNNN-PID/`, every file and the folder
fsync'ed, then renamed into place: a folder named `epoch-*` is always complete, and `.tmp-*` folders
(left by a killed run) are never read. `state.json` records each file's SHA-256, so a file damaged
later is reported as corrupt instead of loaded. Single files (the best weights) are written to a
temporary name, fsync'ed, and `os.replace`d.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from safetensors import SafetensorError
from torch import Tensor

from aelab.errors import UsageError

CHECKPOINTS = "checkpoints"
_NAME = re.compile(r"^epoch-(\d{4,})$")


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in `path` durable (no-op where directories cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_durable(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def atomic_write(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so that readers see either the old or the new file, never a part."""
    tmp = path.with_name(f".tmp-{path.name}-{os.getpid()}")
    _write_durable(tmp, data)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode()


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write(path, _json_bytes(obj))


def weights_bytes(tensors: dict[str, Tensor], metadata: dict[str, str] | None = None) -> bytes:
    """safetensors bytes of `tensors` (copied to contiguous CPU memory)."""
    flat = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    return bytes(safetensors.torch.save(flat, metadata=metadata))


def read_weights(path: Path) -> dict[str, Tensor]:
    """Tensors of a safetensors file; a damaged or missing file is a UsageError naming it."""
    try:
        return safetensors.torch.load(path.read_bytes())
    except FileNotFoundError as exc:
        raise UsageError(f"{path} is missing") from exc
    except (SafetensorError, ValueError, OSError, RuntimeError) as exc:
        raise UsageError(f"{path} is corrupt: {exc}") from exc


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise UsageError(f"{path} is missing") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path} is corrupt: not valid JSON ({exc})") from exc


def optimizer_split(sd: dict[str, Any]) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """An optimizer state_dict as (tensors keyed `state.<param>.<name>`, JSON for the rest)."""
    tensors: dict[str, Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, entry in sd["state"].items():
        for name, value in entry.items():
            if isinstance(value, Tensor):
                tensors[f"state.{pid}.{name}"] = value
            else:
                scalars.setdefault(str(pid), {})[name] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def optimizer_join(tensors: dict[str, Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    """Inverse of `optimizer_split`."""
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        _, pid, name = key.split(".", 2)
        state.setdefault(int(pid), {})[name] = value
    for pid, entry in meta["scalars"].items():
        state.setdefault(int(pid), {}).update(entry)
    groups = [dict(g, betas=tuple(g["betas"])) if "betas" in g else dict(g) for g in meta["param_groups"]]
    return {"state": state, "param_groups": groups}


@dataclass
class Checkpoint:
    """One complete checkpoint: weights, optimizer state and the JSON state (RNG, history, epoch)."""

    path: Path
    epoch: int
    model: dict[str, Tensor]
    optimizer: dict[str, Any]
    state: dict[str, Any]


def save_checkpoint(run_dir: Path, epoch: int, model: dict[str, Tensor], optimizer: dict[str, Any],
                    state: dict[str, Any], keep: int = 2) -> Path:
    """Write `checkpoints/epoch-NNNN/` atomically; then drop all but the newest `keep`."""
    root = run_dir / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"epoch-{epoch:04d}"
    tmp = root / f".tmp-epoch-{epoch:04d}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    opt_tensors, opt_meta = optimizer_split(optimizer)
    files = {"model.safetensors": weights_bytes(model),
             "optimizer.safetensors": weights_bytes(opt_tensors, {"optimizer": json.dumps(opt_meta)})}
    for name, data in files.items():
        _write_durable(tmp / name, data)
    body = dict(state, epoch=epoch, sha256={n: hashlib.sha256(d).hexdigest() for n, d in files.items()})
    _write_durable(tmp / "state.json", _json_bytes(body))
    fsync_dir(tmp)
    if final.exists():  # an epoch redone after a resume from an older checkpoint
        shutil.rmtree(final)
    os.rename(tmp, final)
    fsync_dir(root)
    for old in complete_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def complete_checkpoints(run_dir: Path) -> list[Path]:
    """The `epoch-NNNN` folders, oldest first; temporary folders are not checkpoints."""
    root = run_dir / CHECKPOINTS
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def remove_partial(run_dir: Path) -> int:
    """Delete `.tmp-*` leftovers of a killed run; returns how many there were."""
    root = run_dir / CHECKPOINTS
    leftovers = [p for p in root.glob(".tmp-*")] if root.is_dir() else []
    leftovers += list(run_dir.glob(".tmp-*"))
    for p in leftovers:
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    return len(leftovers)


def load_checkpoint(path: Path) -> Checkpoint:
    """Read and verify one checkpoint folder; anything damaged is a UsageError naming the file."""
    state = read_json(path / "state.json")
    if not isinstance(state, dict) or "sha256" not in state or "epoch" not in state:
        raise UsageError(f"{path / 'state.json'} is corrupt: no epoch or checksums")
    for name, digest in state["sha256"].items():
        try:
            actual = hashlib.sha256((path / name).read_bytes()).hexdigest()
        except FileNotFoundError as exc:
            raise UsageError(f"{path / name} is missing") from exc
        if actual != digest:
            raise UsageError(f"{path / name} is corrupt: its SHA-256 does not match state.json")
    model = read_weights(path / "model.safetensors")
    opt_tensors = read_weights(path / "optimizer.safetensors")
    with safetensors.safe_open(str(path / "optimizer.safetensors"), "pt") as f:
        meta = json.loads((f.metadata() or {})["optimizer"])
    return Checkpoint(path, int(state["epoch"]), model, optimizer_join(opt_tensors, meta), state)


def latest_checkpoint(run_dir: Path) -> Checkpoint | None:
    """The newest complete checkpoint of a run, verified; None before the first epoch ended."""
    found = complete_checkpoints(run_dir)
    return load_checkpoint(found[-1]) if found else None


def load_into(model: torch.nn.Module, weights: dict[str, Tensor], source: Path) -> None:
    """Load weights whose keys and shapes must match the model exactly; say what differs otherwise."""
    own = model.state_dict()
    missing = sorted(set(own) - set(weights))
    extra = sorted(set(weights) - set(own))
    wrong = [k for k in own if k in weights and tuple(own[k].shape) != tuple(weights[k].shape)]
    if missing or extra or wrong:
        parts = []
        if wrong:
            k = wrong[0]
            parts.append(f"{k} is {tuple(weights[k].shape)} in the file but {tuple(own[k].shape)} in the model")
        if missing:
            parts.append(f"{len(missing)} weights missing (e.g. {missing[0]})")
        if extra:
            parts.append(f"{len(extra)} unexpected weights (e.g. {extra[0]})")
        raise UsageError(f"{source} does not match its config: {'; '.join(parts)}")
    model.load_state_dict(weights)
