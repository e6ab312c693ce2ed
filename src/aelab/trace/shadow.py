"""Real values beside a meta/fake run, for the tensors that do not depend on the weights.

A meta or fake run has shapes but no values, so code that reads a value (`mask.all()`, `if p < layerdrop`,
`x.nonzero()`, `ids.tolist()`) cannot go on. Most such values do not depend on the weights at all: position
ids are an `arange` of the sequence length, masks are built from the inputs, rotary `inv_freq` from a
constant. `Shadow` computes those for real, on CPU, as the run goes: every aten op whose tensor arguments all
have a known value gets its real result too, so a read of that value has an exact answer and the meta run
continues at the user's batch, with no weights allocated.

What is known: real tensors (constants the code made on CPU), inputs (the user's tensors, or values
synthesised for a shape, see `aelab.trace.inputs.synthetic_input`), buffers with values (looked up at the
first read of their storage, `Shadow.defer`, unless a write of unknown values came first), and whatever is
computed from them only.
Parameters are never known. A result larger than `max_numel` elements is not computed (it becomes unknown):
the values a program reads are masks and indices, not activations.

Each value carries taints: RANDOM (an RNG op is upstream: the read is one random draw), SYNTHETIC (an input
given only as a shape is upstream: its values were chosen by us), REPLAYED (taken from a real run on
initialised weights, see `aelab.trace.materialize`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch._subclasses.fake_tensor import FakeTensor
from torch.utils._python_dispatch import _disable_current_modes
from torch.utils._pytree import tree_flatten, tree_map

from aelab.trace import realwrites
from aelab.trace.aten_args import ATOMS, map_leaves, real_call, tensors_of
from aelab.trace.deferred import Deferred
from aelab.trace.opfacts import facts
from aelab.trace.realwrites import RealWrites
from aelab.trace.realwrites import storage_key as _storage
from aelab.trace.records import Read

RANDOM, SYNTHETIC, REPLAYED = 1, 2, 4
NOTHING: Any = object()  # "no answer": the caller must do something else


def is_real(t: torch.Tensor) -> bool:
    """A tensor with values: not meta, not fake."""
    return not t.is_meta and not isinstance(t, FakeTensor)  # (`is_meta`: a torch.device per call is 5x the cost)


def _kind(func: Any) -> tuple[bool, bool, bool]:
    """(reads values, random, overwrites its first argument whatever it held)."""
    f = facts(func)
    return f.reads, f.random, f.overwrite


def written(func: Any, args: Any, kwargs: dict[str, Any]) -> list[torch.Tensor]:
    """The tensors `func` writes in place, given by position, by keyword (`out=`) or in a list (`_foreach_*_`)."""
    out: list[torch.Tensor] = []
    for i, name in facts(func).mutated:
        arg = args[i] if i < len(args) else kwargs.get(name)
        out.extend(t for t in (arg if isinstance(arg, (list, tuple)) else (arg,)) if isinstance(t, torch.Tensor))
    return out


class Shadow:
    """The real values of the tensors of one meta/fake run that do not depend on the weights."""

    def __init__(self, *, max_numel: int = 1 << 22, budget_bytes: int = 1 << 29,
                 table: dict[int, Any] | None = None) -> None:
        """`table` holds id -> (tensor, value, taint); a weak one (`lifetimes.WeakKnown`) lets a known tensor die."""
        self.max_numel = max_numel
        self.budget = budget_bytes
        self.used = 0
        self._known: dict[int, Any] = {} if table is None else table  # id -> (tensor, value, taint)
        self._by_storage: dict[int, list[int]] = {}
        self.reads: list[Read] = []
        self._real_taint: dict[int, tuple[torch.Tensor, int]] = {}  # real tensors made by RNG ops, and after
        self._deferred: dict[int, Deferred] = {}  # storage -> values looked up on its first read (`defer`)
        self.writes = RealWrites()  # real tensors written in place: saved, and put back by the run's owner
        self.lite = False  # shapes only: nothing is known, only real writes are followed (`recorder.run`)

    # --- the table ---------------------------------------------------------------------------------
    def set(self, t: torch.Tensor, value: torch.Tensor, taint: int = 0) -> None:
        if is_real(t):
            return
        old = self._known.get(id(t))
        if old is not None and old[0] is t and old[1] is value:
            self._known[id(t)] = (t, value, taint)
            return
        self.used += value.numel() * value.element_size()
        self._known[id(t)] = (t, value, taint)
        self._by_storage.setdefault(_storage(t), []).append(id(t))

    def get(self, t: torch.Tensor) -> tuple[torch.Tensor, int] | None:
        """(value, taint) of `t`, or None when it is not known."""
        if is_real(t):
            tainted = self._real_taint.get(id(t))
            return t, (tainted[1] if tainted is not None and tainted[0] is t else 0)
        hit = self._known.get(id(t))
        if hit is not None and hit[0] is t:
            return hit[1], hit[2]
        return self._read_deferred(t) if self._deferred else None

    def defer(self, t: torch.Tensor, value: Callable[[], tuple[torch.Tensor, int] | None]) -> None:
        """`value()` gives stand-in `t`'s (value, taint), or None when it cannot: called only when the run
        first reads `t`, or any tensor on its storage (a view, `.data`), outside every mode. A write of unknown
        values to that storage before then (`forget`) drops it: the initial value is no longer the value."""
        if is_real(t):
            return
        self._deferred.setdefault(_storage(t), Deferred()).stand_ins.append((t, value))

    def _read_deferred(self, t: torch.Tensor) -> tuple[torch.Tensor, int] | None:
        """`t`'s value from its storage's deferred values: every stand-in on it is looked up, into one real
        mirror of the storage when they share a dtype, so a view of them is answered and aliases as on meta."""
        key = _storage(t)
        entry = self._deferred.get(key)
        if entry is None:
            return None
        if entry.stand_ins:
            pending, entry.stand_ins = entry.stand_ins, []
            with _disable_current_modes(), torch._C.DisableTorchFunction(), torch.no_grad():
                for stand, value in pending:
                    got = value()
                    if got is not None:
                        self.set(stand, entry.hold(stand, got[0], got[1], self.max_numel), got[1])
                if not entry.replay(self.get):
                    self.forget(t)
                    return None
            hit = self._known.get(id(t))
            if hit is not None and hit[0] is t:
                return hit[1], hit[2]
        with _disable_current_modes(), torch._C.DisableTorchFunction():
            got = entry.view(t)
        if got is None:
            return None
        self.set(t, *got)
        return got

    def forget(self, t: torch.Tensor) -> None:
        """`t` was written with values we do not know: it and every tensor sharing its storage are unknown."""
        key = _storage(t)
        for known in self._by_storage.pop(key, []):
            self._known.pop(known, None)
        self._deferred.pop(key, None)
        self._known.pop(id(t), None)

    def _known_one(self, x: Any) -> bool:
        if type(x) in ATOMS:
            return True
        if isinstance(x, torch.Tensor):
            hit = self._known.get(id(x))
            if hit is not None and hit[0] is x:
                return True
            # a deferred value only on a deferred storage: looked up there first (the common miss, every op)
            return is_real(x) or (bool(self._deferred) and _storage(x) in self._deferred and self.get(x) is not None)
        if isinstance(x, (list, tuple)):
            return all(self._known_one(y) for y in x)
        return True

    def _all_known(self, args: Any, kwargs: dict[str, Any], skip: int | None) -> bool:
        """The cheap test run on every op: is every tensor argument (but `skip`) known?"""
        for i, a in enumerate(args):
            if i != skip and not self._known_one(a):
                return False
        return all(self._known_one(v) for v in kwargs.values())

    # --- following the run --------------------------------------------------------------------------
    def _values(self, args: Any, kwargs: dict[str, Any], skip: int | None = None) -> tuple[Any, Any, int] | None:
        """args/kwargs with every tensor replaced by its value and devices by cpu; None if one is unknown."""
        taint = 0
        missing = False

        def swap(x: Any) -> Any:
            nonlocal taint, missing
            if isinstance(x, torch.Tensor):
                got = self.get(x)
                if got is None:
                    missing = True
                    return x
                taint |= got[1]
                return got[0]
            if isinstance(x, torch.device):
                return torch.device("cpu")
            return x

        real_args = []
        for i, a in enumerate(args):
            if i == skip and isinstance(a, torch.Tensor):  # overwritten whole: its old values do not matter
                got = self.get(a)
                real_args.append(got[0] if got is not None else torch.empty(a.shape, dtype=a.dtype))
                continue
            real_args.append(map_leaves(swap, a))
        real_kwargs = {k: map_leaves(swap, v) for k, v in kwargs.items()}
        if missing:
            return None
        return real_args, real_kwargs, taint

    def _compute(self, func: Any, args: Any, kwargs: dict[str, Any]) -> tuple[Any, int] | None:
        _, random, overwrite = _kind(func)
        got = self._values(args, kwargs, skip=0 if overwrite else None)
        if got is None:
            return None
        real_args, real_kwargs, taint = got
        if random:
            taint |= RANDOM
        try:
            out = real_call(func, real_args, real_kwargs)
        except Exception:
            return None
        return out, taint

    def before(self, func: Any, args: Any, kwargs: dict[str, Any]) -> list[tuple[torch.Tensor, Any]] | None:
        """Called before an op of a meta/fake run: the real tensors it writes in place, each with a copy of its
        storage (so `after` sees whether the kernel wrote it itself), or None. `RealWrites` keeps the first
        copy, and one of a known value's storage, which `after` writes: it may be the user's (a view of a
        module-level tensor, an input written in place)."""
        if not facts(func).mutated:
            return None
        pre = []
        for t in written(func, args, kwargs):
            if is_real(t):
                contents = realwrites.snapshot(t)
                if contents is not None:
                    self.writes.save(t, contents)
                    pre.append((t, contents))
            elif self.writes.active:
                hit = self._known.get(id(t))
                if hit is not None and hit[0] is t:
                    self.writes.save(hit[1])
        return pre or None

    def after(self, func: Any, args: Any, kwargs: dict[str, Any], out: Any,
              pre: list[tuple[torch.Tensor, Any]] | None = None) -> None:
        """An op ran on meta/fake tensors: compute its real result if all its inputs are known and it is small.
        `pre` is what `before` returned: a real tensor the kernel wrote already is not written again."""
        f = facts(func)
        random, overwrite = f.random, f.overwrite
        mutated = written(func, args, kwargs) if f.mutated else []
        if pre is not None and any(realwrites.written(t, contents) for t, contents in pre):
            self._written_by_kernel(mutated, out)
            return
        if self._deferred and len(mutated) == 1 and not random and args and args[0] is mutated[0]:
            entry = self._deferred.get(_storage(mutated[0]))  # a write to a buffer not read yet can wait
            if entry is not None and entry.postpone(func, args, kwargs):
                return
        if not self._all_known(args, kwargs, skip=0 if overwrite else None):
            for t in mutated:
                self.forget(t)
            return
        outs = tensors_of(out)
        if not outs and not mutated:
            return
        if all(is_real(t) for t in outs) and outs:  # the op ran for real (torch.rand([]) without a device)
            if not mutated and not f.is_view:
                for t in outs:
                    self.writes.made(t)
            taint = RANDOM if random else 0
            if self._real_taint:
                for t in tensors_of((args, tuple(kwargs.values()))):
                    if id(t) in self._real_taint:
                        taint |= self._real_taint[id(t)][1]
            if taint:
                for t in outs:
                    self._real_taint[id(t)] = (t, taint)
            return
        if f.uninitialised:  # no values to know (an overwrite computes from scratch)
            return
        if overwrite and isinstance(args[0], torch.Tensor) and self.get(args[0]) is None:
            self.forget(args[0])  # its new value is a fresh tensor: what shares its storage would keep the old one
        size = sum(t.numel() * t.element_size() for t in outs if not is_real(t))
        numel = max((t.numel() for t in outs), default=0)
        ok = numel <= self.max_numel and self.used + size <= self.budget
        got = self._compute(func, args, kwargs) if ok else None
        if got is None:
            for t in mutated:
                self.forget(t)
            return
        real_out, taint = got
        real_outs = tensors_of(real_out)
        if len(real_outs) != len(outs):
            return
        if not mutated and not f.is_view:
            for real in real_outs:
                self.writes.made(real)
        for fake, real in zip(outs, real_outs, strict=True):
            if tuple(fake.shape) == tuple(real.shape):
                self.set(fake, real, taint)
        for t in mutated:  # an in-place op returns its argument: the value now held is the mutated shadow
            if self.get(t) is None:
                self.forget(t)

    def _written_by_kernel(self, mutated: list[torch.Tensor], out: Any) -> None:
        """The kernel wrote a real tensor in place (all its arguments real, the CPU kernel ran): its value is
        itself; a fake result stands for the real tensor it aliases; any other tensor written is unknown."""
        real = [t for t in mutated if is_real(t)]
        for t in mutated:
            if not is_real(t):
                self.forget(t)
        fakes = [t for t in tensors_of(out) if not is_real(t)]
        if len(fakes) == len(real):
            for fake, value in zip(fakes, real, strict=True):
                if tuple(fake.shape) == tuple(value.shape):
                    self.set(fake, value, 0)

    def getitem(self, base: Any, index: Any, out: Any) -> None:
        """`base[index]` seen at the Python level: a list index (`x[:, [-1, 0]]`) becomes a tensor that no
        traced op made, so the aten op alone cannot be followed; compute the real indexing here."""
        if not isinstance(out, torch.Tensor) or is_real(out) or self.get(out) is not None:
            return
        if not isinstance(base, torch.Tensor) or out.numel() > self.max_numel:
            return
        got = self._values([base, index], {})
        if got is None:
            return
        (real_base, real_index), _, taint = got
        try:
            value = real_call(torch.Tensor.__getitem__, (real_base, real_index), {})
        except Exception:
            return
        if tuple(value.shape) == tuple(out.shape):
            self.set(out, value, taint)

    def masks_to_indices(self, args: Any) -> Any:
        """`x[mask]` with a known boolean mask is `x[mask.nonzero().unbind(1)]`: the same result, but its shape
        no longer needs the values (a meta/fake kernel can run it; backward of a masked assignment does)."""
        if len(args) < 2 or not isinstance(args[1], (list, tuple)):
            return args
        indices: list[Any] = []
        changed = False
        for idx in args[1]:
            got = self.get(idx) if isinstance(idx, torch.Tensor) and not is_real(idx) else None
            if got is None or idx.dtype not in (torch.bool, torch.uint8):
                indices.append(idx)
                continue
            with _disable_current_modes(), torch._C.DisableTorchFunction():
                nz = got[0].bool().nonzero()
            target = idx.device
            indices.extend(self.stand_in(nz[:, j].contiguous(), target, got[1]) for j in range(nz.shape[1]))
            changed = True
        return (args[0], indices, *args[2:]) if changed else args

    def answer(self, func: Any, args: Any, kwargs: dict[str, Any], module: str) -> Any:
        """The result of an op that reads values (`.item()`, `nonzero`, a copy to CPU), if its inputs are known.

        Scalars come back as Python numbers; tensors as meta/fake tensors of the real result's shape (values
        known), or as the real tensor when the op asked for a real device. NOTHING when an input is unknown.
        """
        got = self._compute(func, args, kwargs)
        if got is None:
            return NOTHING
        real_out, taint = got
        self.reads.append(Read(f"aten.{func.overloadpacket.__name__}", module, taint))
        return self.stand_in(real_out, target_device(args, kwargs), taint)

    def stand_in(self, real_out: Any, target: torch.device, taint: int, *, known: bool = True) -> Any:
        """Tensors of `real_out`'s metadata on `target` whose values are `real_out`'s: meta/fake stand-ins
        under a meta/fake run, the real tensor itself when the program asked for a real device."""
        fake = _fake_active()

        def make(r: Any) -> Any:
            if not isinstance(r, torch.Tensor):
                return r
            if not fake and target.type != "meta":
                return r.to(target)
            t = torch.empty_strided(tuple(r.shape), tuple(r.stride()), dtype=r.dtype, device=target)
            if known:
                self.set(t, r, taint)
            return t

        return tree_map(make, real_out)


def target_device(args: Any, kwargs: dict[str, Any]) -> torch.device:
    """Where an op's output goes: its `device=` argument, else its first meta/fake tensor's device."""
    dev = kwargs.get("device")
    if isinstance(dev, torch.device):
        return dev
    if isinstance(dev, str):
        return torch.device(dev)
    for t in tree_flatten(args)[0]:
        if isinstance(t, torch.Tensor) and not is_real(t):
            return t.device
    return torch.device("meta")


def _fake_active() -> bool:
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.utils._python_dispatch import _get_current_dispatch_mode_stack

    return any(isinstance(m, FakeTensorMode) for m in _get_current_dispatch_mode_stack())
