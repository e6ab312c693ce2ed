"""Checkpoints written atomically: safetensors for tensors, JSON for everything else, never pickle.

A checkpoint is a folder `checkpoints/epoch-NNNN/` holding `model.safetensors`, `optimizer.safetensors`
and `state.json`. It is first written as `checkpoints/.tmp-epoch-NNNN-PID/`, every file and the folder
fsync'ed, then renamed into place: a folder named `epoch-*` is always complete, and `.tmp-*` folders
(left by a killed run) are never read. `state.json` records each file's SHA-256, and every safetensors
file aelab writes also carries the SHA-256 of its tensors in its own header (`aelab_sha256`), so the
best weights, which live outside any checkpoint, are checked too; a file damaged later is reported
as corrupt instead of loaded, and a missing or malformed record is corruption, never a reason to skip
the check. Resume takes the newest checkpoint that verifies and says which ones it passed over.
Single files are written by `aelab.io.atomic_write` (temporary name, fsync, rename); `atomic_write` and
`atomic_write_json` are re-exported here for the modules that write run files.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from safetensors import SafetensorError
from torch import Tensor

from aelab.errors import UsageError
from aelab.io import atomic_write as atomic_write  # re-exported: the run files are written through these
from aelab.io import atomic_write_json as atomic_write_json
from aelab.io import deferred_interrupts, fsync_dir, json_bytes

CHECKPOINTS = "checkpoints"
FILES = ("model.safetensors", "optimizer.safetensors")
DIGEST_KEY = "aelab_sha256"
_NAME = re.compile(r"^epoch-(\d{4,})$")
_HEX = re.compile(r"^[0-9a-f]{64}$")


def _write_durable(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _header(data: bytes) -> tuple[dict[str, Any], int]:
    """The safetensors header of `data` and where its tensor bytes start (ValueError if malformed)."""
    if len(data) < 8:
        raise ValueError("shorter than a safetensors header")
    n = int.from_bytes(data[:8], "little")
    if n > len(data) - 8:
        raise ValueError("its header runs past the end of the file")
    header = json.loads(data[8:8 + n])
    if not isinstance(header, dict):
        raise ValueError("its header is not a JSON object")
    return header, 8 + n


def tensors_digest(data: bytes) -> str:
    """SHA-256 of a safetensors file's tensors: their names, dtypes, shapes and offsets, and every byte."""
    header, start = _header(data)
    index = {k: v for k, v in header.items() if k != "__metadata__"}
    h = hashlib.sha256(json.dumps(index, sort_keys=True).encode())
    h.update(memoryview(data)[start:])
    return h.hexdigest()


def weights_bytes(tensors: dict[str, Tensor], metadata: dict[str, str] | None = None) -> bytes:
    """safetensors bytes of `tensors` (copied to contiguous CPU memory), with their SHA-256 in the header."""
    flat = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    plain = bytes(safetensors.torch.save(flat, metadata=metadata))
    digest = tensors_digest(plain)
    return bytes(safetensors.torch.save(flat, metadata={**(metadata or {}), DIGEST_KEY: digest}))


def read_weights(path: Path) -> dict[str, Tensor]:
    """Tensors of a safetensors file aelab wrote, checked against the SHA-256 in its header; a missing,
    damaged or unchecked file is a UsageError naming it."""
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise UsageError(f"{path} is missing") from exc
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        header, _ = _header(data)
        recorded = (header.get("__metadata__") or {}).get(DIGEST_KEY)
        if not isinstance(recorded, str) or not _HEX.match(recorded):
            raise UsageError(f"{path} is corrupt: it carries no SHA-256 record of its tensors (it was not "
                             "written by this aelab, or its header was changed)")
        if tensors_digest(data) != recorded:
            raise UsageError(f"{path} is corrupt: its SHA-256 does not match the one recorded when it was written")
        return safetensors.torch.load(data)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise UsageError(f"{path} is corrupt: {exc}") from exc


def check_finite(tensors: dict[str, Tensor], path: Path) -> None:
    """A UsageError naming the first weights that hold NaN or inf."""
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        first = tensors[bad[0]]
        what = "NaN" if bool(torch.isnan(first).any()) else "inf"
        raise UsageError(f"{path} holds non-finite weights: {what} in {len(bad)} tensor(s), e.g. {bad[0]}; the "
                         "run is broken (retrain it, or resume it from an earlier checkpoint)")


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise UsageError(f"{path} is missing") from exc
    except IsADirectoryError as exc:
        raise UsageError(f"{path} is corrupt: it is a folder, not a file") from exc
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc
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
    """Write `checkpoints/epoch-NNNN/` atomically; then drop all but the newest `keep`. Ctrl-C waits until
    the save is done; a failed write (a full disk) leaves no temporary folder and names the checkpoint."""
    root = run_dir / CHECKPOINTS
    final = root / f"epoch-{epoch:04d}"
    tmp = root / f".tmp-epoch-{epoch:04d}-{os.getpid()}"
    opt_tensors, opt_meta = optimizer_split(optimizer)
    files = {"model.safetensors": weights_bytes(model),
             "optimizer.safetensors": weights_bytes(opt_tensors, {"optimizer": json.dumps(opt_meta)})}
    body = dict(state, epoch=epoch, sha256={n: hashlib.sha256(d).hexdigest() for n, d in files.items()})
    with deferred_interrupts():
        try:
            root.mkdir(parents=True, exist_ok=True)
            if tmp.exists():
                shutil.rmtree(tmp)
            tmp.mkdir()
            for name, data in files.items():
                _write_durable(tmp / name, data)
            _write_durable(tmp / "state.json", json_bytes(body))
            fsync_dir(tmp)
            if final.exists():  # an epoch redone after a resume from an older checkpoint
                shutil.rmtree(final)
            os.rename(tmp, final)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise UsageError(f"cannot write {final}: {exc.strerror or exc}") from None
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


#: state.json fields and the types a checkpoint written by aelab has (None allowed where listed)
_STATE_TYPES: dict[str, tuple[type, ...]] = {
    "epoch": (int,), "sha256": (dict,), "history": (list,), "rng": (list,), "world_size": (int,),
    "best_val": (float, int, type(None)), "best_epoch": (int, type(None)), "bad_epochs": (int,),
    "finished": (bool,), "stopped_early": (bool,)}


def check_state(state: Any, where: Path) -> dict[str, Any]:
    """`state` if it is a state.json aelab could have written; else a UsageError saying what is wrong."""
    if not isinstance(state, dict):
        raise UsageError(f"{where} is corrupt: not a JSON object")
    for key, types in _STATE_TYPES.items():
        if key not in state and key in ("epoch", "sha256"):
            raise UsageError(f"{where} is corrupt: it has no {key!r}")
        value = state.get(key)
        if key in state and (not isinstance(value, types) or (isinstance(value, bool) and bool not in types)):
            names = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise UsageError(f"{where} is corrupt: {key!r} is {value!r}, not {names}")
    sha = state["sha256"]
    if sorted(sha) != sorted(FILES) or not all(isinstance(v, str) and _HEX.match(v) for v in sha.values()):
        raise UsageError(f"{where} is corrupt: its sha256 record must give a SHA-256 for each of "
                         f"{', '.join(FILES)}, and it gives {sorted(sha) or 'none'}")
    return state


def load_checkpoint(path: Path) -> Checkpoint:
    """Read and verify one checkpoint folder; anything damaged is a UsageError naming the file."""
    state = check_state(read_json(path / "state.json"), path / "state.json")
    m = _NAME.match(path.name)
    if m and int(m.group(1)) != state["epoch"]:
        raise UsageError(f"{path / 'state.json'} is corrupt: it says epoch {state['epoch']} in {path.name}")
    for name, digest in state["sha256"].items():
        try:
            actual = hashlib.sha256((path / name).read_bytes()).hexdigest()
        except FileNotFoundError as exc:
            raise UsageError(f"{path / name} is missing") from exc
        except OSError as exc:
            raise UsageError(f"cannot read {path / name}: {exc.strerror or exc}") from exc
        if actual != digest:
            raise UsageError(f"{path / name} is corrupt: its SHA-256 does not match state.json")
    model = read_weights(path / "model.safetensors")
    check_finite(model, path / "model.safetensors")
    opt_tensors = read_weights(path / "optimizer.safetensors")
    try:
        with safetensors.safe_open(str(path / "optimizer.safetensors"), "pt") as f:
            meta = json.loads((f.metadata() or {})["optimizer"])
        optimizer = optimizer_join(opt_tensors, meta)
    except (KeyError, ValueError, TypeError, AttributeError, SafetensorError) as exc:
        raise UsageError(f"{path / 'optimizer.safetensors'} is corrupt: bad optimizer record ({exc})") from exc
    return Checkpoint(path, state["epoch"], model, optimizer, state)


def _note(text: str) -> None:
    if os.environ.get("RANK", "0") == "0":  # under torchrun, once
        print(f"aelab: {text}", file=sys.stderr)


def latest_checkpoint(run_dir: Path) -> Checkpoint | None:
    """The newest checkpoint of a run that is complete and verifies; None before the first epoch ended.

    A newer one that is empty, incomplete or damaged is passed over, and stderr says so and which
    epoch the run continues from; when none verifies, the newest one's problem is the error.
    """
    found = complete_checkpoints(run_dir)
    skipped: list[tuple[Path, str]] = []
    for path in reversed(found):
        try:
            ckpt = load_checkpoint(path)
        except UsageError as exc:
            skipped.append((path, str(exc)))
            continue
        for bad, why in skipped:
            _note(f"passing over {bad}: {why}")
        if skipped:
            _note(f"resuming from {path}, epoch {ckpt.epoch}")
        return ckpt
    if skipped:
        more = f" (and the {len(skipped) - 1} older checkpoint(s) do not verify either)" if len(skipped) > 1 else ""
        raise UsageError(f"{skipped[0][1]}{more}")
    return None


def newest_state(run_dir: Path) -> dict[str, Any] | None:
    """The state.json of the newest checkpoint whose state.json is sound (history for evaluate); None
    without checkpoints; a UsageError naming the newest when none is sound."""
    problems: list[str] = []
    for path in reversed(complete_checkpoints(run_dir)):
        try:
            state = check_state(read_json(path / "state.json"), path / "state.json")
        except UsageError as exc:
            problems.append(str(exc))
            continue
        for why in problems:
            _note(f"{why}; the history comes from {path.name}")
        return state
    if problems:
        raise UsageError(problems[0])
    return None


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
