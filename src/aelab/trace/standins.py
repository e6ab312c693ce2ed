"""What stands in for a model's own tensors during a run, and the plain attributes kept on their storages.

A run never touches the user's parameters and buffers: `functional_call` swaps in fake copies (a model with
weights), meta copies (a meta model's stray real tensors) or real copies that the forward may write (a real
forward of a model with weights: BatchNorm's statistics, a counter). A tensor kept as a plain attribute on
the storage of one of them (`self.alias = self.width.view(1)` in `__init__`; transformers' rotary embedding
keeps `original_inv_freq = inv_freq`) is no parameter or buffer, so `functional_call` leaves it the user's:
a write through it lands in the user's model and the run's own copy never sees it, and a read of it misses
what the run wrote. `followed` puts each such attribute, for the run, on its stand-in's storage at the same
geometry (`alias_swaps`), and the user's tensor back afterwards (the same object).
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from aelab.trace.shadow import _storage
from aelab.trace.walk import ModelParts

AliasOf = Callable[[torch.Tensor], "torch.Tensor | None"]
# what a module's __dict__ holds but tensors (flags, sizes, its OrderedDicts of parameters, buffers, hooks):
# skipped by type before isinstance, which is 4x slower per value (a 400-module model: 0.5 ms, not 1.8 ms)
_NOT_TENSORS = frozenset({bool, int, float, str, type(None), dict, OrderedDict, set, list, tuple})


def plain_aliases(parts: ModelParts) -> list[tuple[nn.Module, str, torch.Tensor]]:
    """(module, attribute, tensor) of every tensor a module holds as a plain attribute on the storage of one
    of the model's parameters or buffers (the tensor itself, a view of it, its `.data`)."""
    found = [(m, k, v) for _, m in parts.unique_modules for k, v in vars(m).items()
             if type(v) not in _NOT_TENSORS and isinstance(v, torch.Tensor)]
    if not found:  # most models keep none: the storages are not looked up
        return []
    storages = {_storage(t) for _, t in (*parts.unique_params, *parts.unique_buffers)}
    return [(m, k, v) for m, k, v in found if _storage(v) in storages]


Swap = tuple[nn.Module, str, torch.Tensor, torch.Tensor]  # (module, attribute, the user's tensor, its stand-in)


def alias_swaps(parts: ModelParts, alias_of: AliasOf) -> list[Swap]:
    """Each plain attribute on a parameter's or buffer's storage (`plain_aliases`) with its stand-in,
    `alias_of(tensor)`: the same view of the run's stand-in (None: it stays as it is). Made before the run's
    modes are entered (a fake conversion under the recorder would be recorded as the model's ops)."""
    out = []
    for module, attr, t in plain_aliases(parts):
        stand = alias_of(t)
        if stand is not None:
            out.append((module, attr, t, stand))
    return out


@contextlib.contextmanager
def followed(swaps: list[Swap]) -> Iterator[None]:
    """While active, each attribute of `swaps` is its stand-in; the user's tensor is put back afterwards."""
    for module, attr, _, stand in swaps:
        module.__dict__[attr] = stand
    try:
        yield
    finally:
        for module, attr, t, _ in swaps:
            module.__dict__[attr] = t


class StorageCopies:
    """Copies of tensors, one new storage per storage copied (its bytes; none on meta), each copy at its
    original's geometry on it: tensors that shared a storage share the copy's, as the originals did (a
    `t.clone()` is a fresh contiguous tensor of its own)."""

    def __init__(self, device: str | None = None) -> None:
        self.device = device  # "meta": storages without bytes; None: the original's device and bytes
        self.storages: dict[int, Any] = {}  # original storage -> its copy
        self.made: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # id(original) -> (original, copy)

    def of(self, t: torch.Tensor) -> torch.Tensor:
        """`t`'s copy (a Parameter with its `requires_grad` for a Parameter), made once per tensor."""
        hit = self.made.get(id(t))
        if hit is not None and hit[0] is t:
            return hit[1]
        key = _storage(t)
        store = self.storages.get(key)
        if store is None:
            with torch.no_grad():
                source = t.untyped_storage()
                store = torch.UntypedStorage(source.nbytes(), device="meta") if self.device == "meta" \
                    else source.clone()
            self.storages[key] = store
        with torch.no_grad():
            copy = torch.empty(0, dtype=t.dtype, device=store.device).set_(store, t.storage_offset(),
                                                                          tuple(t.shape), tuple(t.stride()))
        if isinstance(t, nn.Parameter):
            copy = nn.Parameter(copy, requires_grad=t.requires_grad)
        elif t.requires_grad:
            copy.requires_grad_(True)
        self.made[id(t)] = (t, copy)
        return copy

    def alias_of(self, t: torch.Tensor) -> torch.Tensor | None:
        """`t`'s copy when a storage it lies on was copied, else None (it stays the user's tensor)."""
        return self.of(t) if _storage(t) in self.storages else None


def stand_ins(parts: ModelParts, execution: str, fake_mode: Any = None) -> tuple[dict[str, torch.Tensor],
                                                                                 list[Swap]]:
    """The tensors a run of `execution` swaps in for the model's (by name; {}: it runs on its own) and the
    plain attributes on their storages with theirs (`followed`). Fake: fake copies. Meta: meta copies of a
    meta model's real tensors (a legacy `torch.Tensor(...)` ignores the meta device context). Real, a model
    with weights (a recorded real forward): its own parameters (autograd.grad differentiates them; `.grad`
    is never written) and copies of its buffers, which the forward may write. A meta model's real forward
    runs on the model itself: `trace.materialize` makes its values."""
    named = [*parts.unique_params, *parts.unique_buffers]
    if fake_mode is not None:
        with fake_mode:  # one mode's conversions share storages: an alias's is a view of its buffer's copy
            return {n: fake_mode.from_tensor(t) for n, t in named}, alias_swaps(parts, fake_mode.from_tensor)
    if execution == "meta" and any(t.device.type != "meta" for _, t in named):
        meta = StorageCopies("meta")
        swapped = {n: t if t.device.type == "meta" else meta.of(t) for n, t in named}
        return swapped, alias_swaps(parts, meta.alias_of)
    if execution == "real" and named and not any(t.device.type == "meta" for _, t in named):
        real = StorageCopies()
        swapped = dict(parts.unique_params)
        swapped.update({n: real.of(b) for n, b in parts.unique_buffers})
        return swapped, alias_swaps(parts, real.alias_of)
    return {}, []
