"""Parameters counted once per storage, and the model flags a run may touch, saved and restored."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.parameter import UninitializedBuffer, UninitializedParameter

from aelab.errors import UsageError
from aelab.trace.records import ParamInfo
from aelab.trace.walk import ModelParts, walk


@dataclass
class Snapshot:
    training: dict[nn.Module, bool]
    requires_grad: dict[nn.Parameter, bool]


def snapshot(model: nn.Module, parts: ModelParts | None = None) -> Snapshot:
    """Every module's training flag and every parameter's `requires_grad` (`parts`: the model's, if walked)."""
    parts = parts or walk(model)
    return Snapshot({m: m.training for _, m in parts.modules}, {p: p.requires_grad for _, p in parts.params})


def restore(model: nn.Module, snap: Snapshot) -> None:
    for m, training in snap.training.items():
        if m.training != training:
            m.training = training
    for p, rg in snap.requires_grad.items():
        if p.requires_grad != rg:
            p.requires_grad_(rg)


def _storage_key(t: torch.Tensor) -> Any:
    if t.is_meta:  # (not `device.type`: a torch.device made per tensor costs 3x the check, on every run)
        return ("id", id(t))
    return ("ptr", t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), tuple(t.stride()))


_LAZY = (UninitializedParameter, UninitializedBuffer)  # by exact type: the set-up of every run asks this


def refuse_lazy(model: nn.Module, parts: ModelParts | None = None) -> None:
    """A lazy module's parameters have no shape before its first forward: one clear `UsageError`, not torch's
    error from deep inside the first analysis that touches them."""
    parts = parts or walk(model)
    for name, t in [*parts.params, *parts.buffers]:
        if type(t) in _LAZY:
            raise UsageError(f"{name} is an uninitialised parameter of a lazy module ({type(t).__name__}): its "
                             "shape is only known after one forward; run the model once on a real batch (or "
                             "give the layer its input size, e.g. nn.Linear(in, out)) and analyse it then")


def count_parameters(model: nn.Module, parts: ModelParts | None = None
                     ) -> tuple[list[ParamInfo], list[ParamInfo], list[ParamInfo]]:
    """(unique params, unique buffers, repeats of a storage already counted): each storage once."""
    parts = parts or walk(model)
    owners: dict[Any, str] = {}
    params: list[ParamInfo] = []
    shared: list[ParamInfo] = []
    refuse_lazy(model, parts)
    for name, p in parts.params:
        key = _storage_key(p)
        module = name.rsplit(".", 1)[0] if "." in name else ""
        info = ParamInfo(name, module, tuple(p.shape), p.numel(), p.numel() * p.element_size(),
                         p.requires_grad, owners.get(key))
        if key in owners:
            shared.append(info)
        else:
            owners[key] = name
            params.append(info)
    buffers = []
    seen: set[Any] = set()
    for name, b in parts.buffers:
        key = _storage_key(b)
        if key in seen:
            continue
        seen.add(key)
        module = name.rsplit(".", 1)[0] if "." in name else ""
        buffers.append(ParamInfo(name, module, tuple(b.shape), b.numel(), b.numel() * b.element_size(), False))
    return params, buffers, shared
