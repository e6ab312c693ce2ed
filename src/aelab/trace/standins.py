"""What stands in for a model's own tensors during a run: its parameters, buffers and plain tensor attributes.

A run never touches the user's parameters and buffers: `functional_call` swaps in fake copies (a model with
weights), meta copies (a meta model's stray real tensors) or real copies that the forward may write (a real
forward: BatchNorm's statistics, a counter). A tensor a module keeps as a plain attribute is no parameter or
buffer, so `functional_call` leaves it the user's: a write to it lands in the user's model (and under
FakeTensorMode, which runs an op of real tensors for real, the shadow ran it a second time, so the value read
was wrong too). So does one in a list, tuple or dict among its attributes (`self.cache = [torch.zeros(3)]`).
`attribute_stand_ins` gives each such tensor a stand-in for the run (the container a copy holding it), and
`followed` puts them in place and the user's objects back afterwards:
- a tensor on the storage of a parameter or buffer (`self.alias = self.width.view(1)` in `__init__`;
  transformers' rotary embedding keeps `original_inv_freq = inv_freq`) is the same view of that tensor's
  stand-in, so a write through it reaches what the module's ops see, as it does in the user's model;
- any other (`self.count = torch.tensor(1)`, a mask made once) gets a copy of its own, a fake or meta one
  whose value is the user's tensor's, looked up at its first read (`Attributes.defer`, `Shadow.defer`).
Not looked into: other containers (a namedtuple, a set, an object of the user's class), and a list or dict that
holds no tensor when the run starts (a forward that appends its outputs to `self.seen = []` appends to the user's).
A tensor in those that a meta/fake run writes in place is still put back (`trace.realwrites`); one a forward
rebinds (`self.box.t = self.box.t + 1`) is the forward's business on the user's object.
"""

from __future__ import annotations

import contextlib
import functools
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import chain, compress, islice, repeat
from typing import Any

import torch
from torch import nn

from aelab.trace.shadow import Shadow, _storage, is_real
from aelab.trace.walk import ModelParts

StandOf = Callable[[torch.Tensor], "torch.Tensor | None"]  # a tensor's stand-in; None: it stays as it is
Swap = tuple[nn.Module, str, Any, Any]  # (module, attribute, the user's tensor or container, its stand-in)


@dataclass
class Attributes:
    """The plain tensor attributes a run swaps (`followed`), and the stand-ins among them whose values are the
    user's tensors' (a copy of its own that is no real tensor: the shadow learns its value at the first read)."""

    swaps: list[Swap] = field(default_factory=list)
    values: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)  # (stand-in, the user's tensor)
    zeroed: list[str] = field(default_factory=list)  # meta tensors without a value, zeros in a real run

    def defer(self, shadow: Shadow) -> None:
        """Give `shadow` each stand-in's value, the user's tensor's, to look up at its first read."""
        for stand, t in self.values:
            shadow.defer(stand, functools.partial(_value_of, t))


def _value_of(t: torch.Tensor) -> tuple[torch.Tensor, int]:
    return t.detach().cpu().clone(), 0


_SEQUENCES = frozenset({list, tuple})
_MAPPINGS = frozenset({dict, OrderedDict, defaultdict})
_CONTAINERS = _SEQUENCES | _MAPPINGS  # looked into by exact type (a namedtuple, a set, an object are not)
# a module's own state (its parameters, buffers, submodules, hooks, flag): nn.Module.__init__ sets these first
_TORCH_OWN_KEYS = tuple(vars(nn.Module()))
_TORCH_OWN = frozenset(_TORCH_OWN_KEYS)


def _may_hold_tensors(modules: list[nn.Module]) -> bool:
    """Whether a module may hold a tensor as a plain attribute or in a list, tuple or dict among its attributes,
    asked in C-level passes over the types of the attributes' values that follow the module's own state (~25 ns
    a value; a Python loop with an isinstance per value took ~70, and nn.Module's own entries are most of a
    module's): most models hold none, and are done here. True also when a module's own state is not first (an
    attribute set before `nn.Module.__init__`): then every attribute is looked at."""
    n = len(_TORCH_OWN_KEYS)
    dicts = list(map(vars, modules))
    last = map(next, map(islice, dicts, repeat(n - 1), repeat(None)))  # each module's n-th key
    if any(map(_TORCH_OWN_KEYS[-1].__ne__, last)):
        return True
    values = list(chain.from_iterable(map(islice, map(dict.values, dicts), repeat(n), repeat(None))))
    types = list(map(type, values))
    kinds = set(types)
    if any(issubclass(k, torch.Tensor) for k in kinds):
        return True
    if kinds.isdisjoint(_CONTAINERS):
        return False
    inner = chain.from_iterable(compress(values, map(_SEQUENCES.__contains__, types)))
    if not kinds.isdisjoint(_MAPPINGS):  # (rarer than a conv's tuples of sizes)
        inner = chain(inner, chain.from_iterable(map(dict.values, compress(values, map(_MAPPINGS.__contains__,
                                                                                      types)))))
    return any(k in _CONTAINERS or issubclass(k, torch.Tensor) for k in set(map(type, inner)))


def attribute_stand_ins(parts: ModelParts, alias_of: StandOf, copy_of: StandOf) -> Attributes:
    """Each tensor a module holds as a plain attribute, or in a list, tuple or dict among its attributes, with its
    stand-in: `alias_of(t)` for one on the storage of a parameter or buffer (the same view of that one's
    stand-in), `copy_of(t)` for any other. A container is swapped for a copy holding the stand-ins (a list the
    forward appends to is the copy). Made before the run's modes are entered (a fake conversion under the
    recorder would be recorded as the model's ops)."""
    out = Attributes()
    modules = [m for _, m in parts.unique_modules]
    if not _may_hold_tensors(modules):
        return out
    storages = {_storage(t) for _, t in (*parts.unique_params, *parts.unique_buffers)}
    valued: set[int] = set()
    held: dict[int, Any] = {}  # id(container) -> its copy: a list kept on two modules is one list in the run

    def stand_of(t: torch.Tensor) -> torch.Tensor | None:
        if _storage(t) in storages:
            return alias_of(t)
        stand = copy_of(t)
        if stand is not None and id(stand) not in valued and is_real(t) and not is_real(stand):
            valued.add(id(stand))  # a tensor kept on two modules has one stand-in, one value
            out.values.append((stand, t))
        return stand

    def swap(v: Any) -> Any:
        """`v`'s stand-in: a tensor's, or a container's copy holding the stand-ins; `v` itself if none."""
        if isinstance(v, torch.Tensor):
            stand = stand_of(v)
            return v if stand is None else stand
        if type(v) not in _CONTAINERS:
            return v
        if id(v) not in held:
            held[id(v)] = v  # (a container holding itself)
            if type(v) in _MAPPINGS:
                swapped = {k: swap(x) for k, x in v.items()}
                changed = [k for k, x in v.items() if swapped[k] is not x]
                copy = v.copy() if changed else v
                for k in changed:
                    copy[k] = swapped[k]
            else:
                items = [swap(x) for x in v]
                copy = v if all(a is b for a, b in zip(items, v, strict=True)) else type(v)(items)
            held[id(v)] = copy
        return held[id(v)]

    for module in modules:
        for attr, v in vars(module).items():
            if attr not in _TORCH_OWN:
                stand = swap(v)
                if stand is not v:
                    out.swaps.append((module, attr, v, stand))
    return out


@contextlib.contextmanager
def followed(attributes: Attributes) -> Iterator[None]:
    """While active, each swapped attribute is its stand-in; the user's tensor or container is put back
    afterwards (also when the forward rebound the attribute: `self.count = self.count + 1`)."""
    for module, attr, _, stand in attributes.swaps:
        module.__dict__[attr] = stand
    try:
        yield
    finally:
        for module, attr, t, _ in attributes.swaps:
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


def run_attributes(parts: ModelParts, fake_mode: Any = None) -> Attributes:
    """The plain attributes' stand-ins of a fake or meta run whose parameters and buffers are made apart (a training
    step, autograd's graph): fake copies under `fake_mode` (an alias a view of its tensor's), else a real tensor's
    own meta copy and a meta one as it is. Call it inside `fake_mode`: one mode's conversions share storages."""
    if fake_mode is not None:
        return attribute_stand_ins(parts, fake_mode.from_tensor, fake_mode.from_tensor)
    copies = StorageCopies("meta")
    return attribute_stand_ins(parts, lambda t: None, lambda t: None if t.is_meta else copies.of(t))


@dataclass
class StandIns:
    """What one run puts in place of the model's tensors: its parameters and buffers by name (`functional_call`;
    {}: it runs on its own) and its plain tensor attributes (`followed`)."""

    tensors: dict[str, torch.Tensor]
    attributes: Attributes


def stand_ins(parts: ModelParts, execution: str, fake_mode: Any = None) -> StandIns:
    """The stand-ins of a run of `execution`. Fake: fake copies of everything. Meta: meta copies of a meta
    model's real tensors (a legacy `torch.Tensor(...)` ignores the meta device context). Real (a recorded real
    forward, or `materialize.real_answers`): the parameters themselves (autograd.grad differentiates them;
    `.grad` is never written), copies of the real buffers and plain tensors, which the forward may write; a
    meta model's meta parameters and buffers get their values from `trace.materialize` as the run touches
    them, and a meta plain tensor (`self.count = torch.tensor(1)` under the meta device), whose value was
    never made, zeros (`Attributes.zeroed` names them for the notes)."""
    named = [*parts.unique_params, *parts.unique_buffers]
    if fake_mode is not None:
        with fake_mode:  # one mode's conversions share storages: an alias's is a view of its buffer's copy
            tensors = {n: fake_mode.from_tensor(t) for n, t in named}
            return StandIns(tensors, run_attributes(parts, fake_mode))
    copies = StorageCopies("meta" if execution == "meta" else None)

    def copy_of(t: torch.Tensor) -> torch.Tensor | None:
        if not t.is_meta:
            return copies.of(t)
        return None if execution == "meta" else torch.zeros(tuple(t.shape), dtype=t.dtype)

    if execution == "meta":  # (`is_meta`, not `device.type`: a torch.device per tensor is 3x the cost)
        tensors = {} if all(t.is_meta for _, t in named) else {n: t if t.is_meta else copies.of(t) for n, t in named}
    else:
        buffers = {n: copies.of(b) for n, b in parts.unique_buffers if not b.is_meta}
        tensors = {**dict(parts.unique_params), **buffers} if buffers else {}
    attributes = attribute_stand_ins(parts, copies.alias_of, copy_of)
    if execution != "meta":
        names = {id(m): n for n, m in parts.unique_modules}
        attributes.zeroed = [f"{names[id(module)]}.{attr}".lstrip(".") for module, attr, t, stand in attributes.swaps
                             if isinstance(t, torch.Tensor) and t.is_meta and not stand.is_meta]
    return StandIns(tensors, attributes)
