"""The life of every tensor storage during a training step on fake or meta tensors: the dispatch mode.

A `TorchDispatchMode` sees every aten op; each new storage an op returns is born there, and a weak reference
on the storage says when it dies. So views share their base's storage, in-place ops reuse it, saved tensors
die when their autograd node has run, gradients accumulate into one buffer, the optimizer's state appears on
the first step and `.grad` dies at `zero_grad`. `aelab.trace.step` drives the step under it; the records
(`StepLog`) are what `aelab.footprint` reads.

Kernels whose fake/meta implementation returns a different size than the real one (the oneDNN LSTM
workspace, normalisation statistics under autocast) are corrected from the real kernel's
(`aelab.trace.kernel_sizes`), and each correction is listed.
"""
from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils._pytree import tree_leaves

from aelab.trace import fastmeta
from aelab.trace.kernel_sizes import NORM_WEIGHT, real_mkldnn_workspace
from aelab.trace.modes import DispatchMode
from aelab.trace.probe import needs_values, probed_or_raise
from aelab.trace.records import HostDraw, Read
from aelab.trace.shadow import NOTHING, Shadow, _kind
from aelab.trace.tensors import flatten_tensors


class WeakKnown(dict[int, Any]):
    """A `Shadow(table=...)` holding its stand-ins weakly: a known mask must die when the program drops it, as on
    real tensors, or the recording would keep it alive (entries are (tensor, value, taint) to the shadow)."""

    def __setitem__(self, key: int, entry: tuple[torch.Tensor, torch.Tensor, int]) -> None:
        t, value, taint = entry
        me = weakref.ref(self)

        def gone(_ref: Any, key: int = key, me: Any = me) -> None:
            table = me()
            if table is not None and dict.get(table, key, (None,))[0] is _ref:
                dict.pop(table, key, None)

        super().__setitem__(key, (weakref.ref(t, gone), value, taint))

    def get(self, key: int, default: Any = None) -> Any:
        hit = super().get(key)
        return default if hit is None else (hit[0](), hit[1], hit[2])

    def pop(self, key: int, default: Any = None) -> Any:
        hit = super().pop(key, None)
        return default if hit is None else (hit[0](), hit[1], hit[2])


class ValueReadError(Exception):
    """The step reads a tensor value that depends on the weights (the op, and the module it ran in)."""


@dataclass
class Storage:
    """One storage: its bytes, what it is, where it was born and died (event indices)."""

    sid: int
    nbytes: int
    kind: str  # parameter | buffer | input | activation | temporary | gradient | optimizer_state | amp_copy
    step: int  # the step it was born in (0: before the first step)
    phase: str  # phase at birth ("setup" for what existed before the steps)
    module: str  # module scope at birth ("" root)
    op: str  # the aten op that returned it first
    saved_by: str | None = None  # the module whose forward saved it for backward
    correction: int = 0  # bytes added because the fake kernel under-reports the real one


@dataclass(frozen=True)
class Op:
    """One aten op of the step, in order: where it ran."""

    name: str
    step: int
    phase: str
    module: str


@dataclass
class StepLog:
    """Every storage and every birth/death, in order, over the recorded steps."""

    storages: list[Storage]
    ops: list[Op]
    events: list[tuple[int, int, int]]  # (index of the last op recorded, sid, +1 born or -1 died)
    marks: dict[str, int] = field(default_factory=dict)  # part of the run -> index into `events` where it begins
    outputs: dict[str, int] = field(default_factory=dict)  # module path -> bytes of its outputs (first step)
    corrections: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    reads: list[Read] = field(default_factory=list)  # the values the forward read (`Trace.reads`)
    host_draws: list[HostDraw] = field(default_factory=list)  # draws from Python's `random`/NumPy (`Trace`'s)


# --- the recording -----------------------------------------------------------------------------------
class _Lifetimes(DispatchMode):
    """Births of the storages ops return; deaths come from weak references."""

    def __init__(self, log: StepLog, where: Callable[[], tuple[int, str, str]], shadow: Shadow | None = None,
                 meta: bool = False) -> None:
        super().__init__()
        self.log = log
        self.where = where
        self.shadow = shadow  # real values of what does not depend on the weights (the trace ladder's rung 1)
        self.meta = meta
        self.known: dict[int, tuple[weakref.ref[Any], int]] = {}  # id(storage) -> (ref, sid)
        self.corrected: set[str] = set()
        self.param_ids: set[int] = set()

    def adopt(self, t: torch.Tensor, kind: str, *, step: int = 0, phase: str = "setup", module: str = "",
              op: str = "") -> int | None:
        """Track `t`'s storage (once); returns its sid."""
        if not isinstance(t, torch.Tensor) or t.is_sparse or t.is_nested:
            return None
        try:
            st = t.untyped_storage()
        except Exception:  # tensors without a storage (functional wrappers)
            return None
        key = id(st)
        hit = self.known.get(key)
        if hit is not None and hit[0]() is st:
            return hit[1]
        log = self.log
        sid = len(log.storages)
        nbytes = int(st.nbytes())
        log.storages.append(Storage(sid, nbytes, kind, step, phase, module, op))
        log.events.append((len(log.ops) - 1, sid, 1))

        def died(_ref: Any, sid: int = sid, key: int = key) -> None:
            log.events.append((len(log.ops) - 1, sid, -1))
            cur = self.known.get(key)
            if cur is not None and cur[1] == sid:
                del self.known[key]

        self.known[key] = (weakref.ref(st, died), sid)
        return sid

    def sid_of(self, t: torch.Tensor) -> int | None:
        try:
            hit = self.known.get(id(t.untyped_storage()))
        except Exception:
            return None
        return hit[1] if hit is not None else None

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        step, phase, module = self.where()
        out = self._run(func, args, kwargs, module)
        name = func.overloadpacket.__name__
        self.log.ops.append(Op(f"aten.{name}", step, phase, module))
        # autocast's cast of a weight (cached until the autocast region ends, saved for backward)
        kind = ("amp_copy" if name == "_to_copy" and phase == "forward" and args
                and id(args[0]) in self.param_ids else "temporary")
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor):
                self.adopt(t, kind, step=step, phase=phase, module=module, op=f"aten.{name}")
        if name == "mkldnn_rnn_layer" and isinstance(out, tuple) and len(out) > 3:
            self._correct_workspace(args, out[3])
        elif name in NORM_WEIGHT and isinstance(out, tuple) and len(out) == 3:
            self._correct_norm_stats(name, args, out)
        return out

    def _run(self, func: Any, args: Any, kwargs: dict[str, Any], module: str) -> Any:
        """The op, as the trace's recorder runs it: a read of a value the shadow knows (a mask's `.all()`,
        position ids) is answered from it; meta kernels go through `fastmeta`."""
        sh = self.shadow
        if sh is None:
            return func(*args, **kwargs)
        name = func.overloadpacket.__name__
        if name in ("index", "index_put", "index_put_", "_index_put_impl_"):
            args = sh.masks_to_indices(args)
        if _kind(func)[0]:
            out = sh.answer(func, args, kwargs, module)
            if out is not NOTHING:
                return out
            try:
                return func(*args, **kwargs)
            except Exception as exc:
                raise ValueReadError(f"aten.{name}" + (f" in {module}" if module else "")) from exc
        pre = sh.before(func, args, kwargs)
        try:
            out = fastmeta.run(func, args, kwargs) if self.meta else func(*args, **kwargs)
        except Exception as exc:
            return self._probed(func, name, args, kwargs, module, exc)
        sh.after(func, args, kwargs, out, pre)
        return out

    def _probed(self, func: Any, name: str, args: Any, kwargs: dict[str, Any], module: str, exc: Exception) -> Any:
        """A meta/fake kernel stricter than the CPU one (the grouped-mm experts of an MoE want bf16 on meta): the
        CPU kernel's output shapes stand in, as in the trace's recorder (`trace.probe`), and the corrections say
        so; a kernel that fails on the CPU too, or one whose shape needs values, raises as it did."""
        if needs_values(exc):
            raise ValueReadError(f"aten.{name}" + (f" in {module}" if module else "")) from exc
        assert self.shadow is not None
        out = probed_or_raise(self.shadow, func, args, kwargs, exc)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        text = f"aten.{name}: the {'meta' if self.meta else 'fake'} kernel refused ({first}); the CPU kernel's " \
               "output sizes stand in"
        if text not in self.corrected:
            self.corrected.add(text)
            self.log.corrections.append(text)
        return out

    def _correct_norm_stats(self, name: str, args: Any, out: tuple[Any, ...]) -> None:
        """Under autocast a bf16/fp16 input meets an fp32 weight: the CPU kernel (and the meta one) return
        the saved mean and inverse std in fp32, FakeTensor's in the input's dtype."""
        x, weight = args[0], args[NORM_WEIGHT[name]] if len(args) > NORM_WEIGHT[name] else None
        if (type(x).__name__ != "FakeTensor" or weight is None or x.dtype not in (torch.bfloat16, torch.float16)
                or weight.dtype != torch.float32):
            return
        for stat in out[1:]:
            sid = self.sid_of(stat) if isinstance(stat, torch.Tensor) else None
            if sid is None or stat.dtype == torch.float32:
                continue
            s = self.log.storages[sid]
            real = stat.numel() * 4
            if real > s.nbytes and s.correction == 0:
                s.correction, s.nbytes = real - s.nbytes, real
        text = (f"aten.{name}: FakeTensor returns the saved statistics of a {str(x.dtype).removeprefix('torch.')} "
                "input with fp32 weights in the input's dtype; the CPU and meta kernels return fp32 (sizes corrected)")
        if text not in self.corrected:
            self.corrected.add(text)
            self.log.corrections.append(text)

    def _correct_workspace(self, args: Any, ws: torch.Tensor) -> None:
        if not _is_fake_or_meta(ws):
            return
        sid = self.sid_of(ws)
        if sid is None:
            return
        real, measured = real_mkldnn_workspace(args)
        s = self.log.storages[sid]
        extra = real - s.nbytes
        if extra <= 0:
            return
        s.correction = extra
        s.nbytes = real
        how = "measured by running the CPU kernel once on zeros of the same shape" if measured else \
            "extrapolated from the CPU kernel's at batch 1 and 2 (too large to measure)"
        text = (f"aten.mkldnn_rnn_layer (oneDNN LSTM): the fake kernel returns an empty workspace; the CPU "
                f"kernel's is {real} bytes for input {tuple(args[0].shape)} ({how})")
        if text not in self.corrected:
            self.corrected.add(text)
            self.log.corrections.append(text)


def _is_fake_or_meta(t: torch.Tensor) -> bool:
    return t.is_meta or type(t).__name__ == "FakeTensor"


# --- where in the step are we ---------------------------------------------------------------------
# node.metadata key: the node has its module pre-hook. (A set of the nodes kept them alive: a subgraph no loss
# reaches, which a real run frees when the forward returns, lived through the step with its saved tensors.)
_CLAIMED = "aelab.scope"


class _Scope:
    """The current step, phase and module: forward from module hooks, backward from node pre-hooks."""

    def __init__(self, names: Mapping[int, str], log: StepLog, mode: _Lifetimes | None = None) -> None:
        self.names = names
        self.log = log
        self.mode = mode
        self.step = 0
        self.phase = "setup"
        self.stack: list[str] = []
        self.bw_module = ""
        self.handles: list[Any] = []

    def where(self) -> tuple[int, str, str]:
        if self.phase == "backward":
            return self.step, self.phase, self.bw_module
        return self.step, self.phase, self.stack[-1] if self.stack else ""

    def pre(self, module: nn.Module, args: Any) -> None:
        if self.phase == "forward" or self.stack:
            self.stack.append(self.names.get(id(module), type(module).__name__))

    def post(self, module: nn.Module, args: Any, kwargs: Any = None, output: Any = None) -> None:
        if not self.stack:
            return
        path = self.stack.pop()
        if self.phase != "forward" or output is None:
            return
        outs = flatten_tensors(output)
        if self.step == 1 and self.mode is not None:
            seen = set()
            for t in outs:
                sid = self.mode.sid_of(t)
                if sid is not None and sid not in seen:
                    seen.add(sid)
                    self.log.outputs[path] = self.log.outputs.get(path, 0) + self.log.storages[sid].nbytes
        todo: list[Any] = [t.grad_fn for t in outs if t.grad_fn is not None]
        while todo:
            node = todo.pop()
            if node is None or node.metadata.get(_CLAIMED):
                continue
            node.metadata[_CLAIMED] = True
            with contextlib.suppress(Exception):
                self.handles.append(node.register_prehook(self._enter(path)))
            todo.extend(n for n, _ in node.next_functions)

    def _enter(self, path: str) -> Callable[[Any], None]:
        def hook(grad_outputs: Any) -> None:
            self.bw_module = path

        return hook


