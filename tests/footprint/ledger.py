"""The truth the memory predictions are checked against: a real CPU training step, measured.

`Ledger` is a dispatch mode that keeps every live tensor storage's bytes, from the op that returned it
first to its release (a `weakref.finalize` on the storage), and samples glibc's in-use heap bytes
(`mallinfo2`: small chunks + mmapped chunks) after every op, so the two can be compared. It shares no
code with `aelab.trace.lifetimes` or `aelab.trace.step`: the step is the plain training loop every tutorial writes.
"""

from __future__ import annotations

import contextlib
import ctypes
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves


class _MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                "fsmblks", "uordblks", "fordblks", "keepcost")]


_libc = ctypes.CDLL("libc.so.6")
_libc.mallinfo2.restype = _MallInfo2


def heap_in_use() -> int:
    """Bytes glibc has handed out and not got back: chunks in the arenas plus mmapped chunks."""
    m = _libc.mallinfo2()
    return int(m.uordblks + m.hblkhd)


class Ledger(TorchDispatchMode):
    """Live storage bytes over a run, with the peak; heap bytes sampled at the same points."""

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, int] = {}  # id(storage) -> nbytes
        self.finalizers: dict[int, Any] = {}
        self.bytes = 0
        self.peak = 0
        self.peak_op = ""
        self.phase = ""
        self.peak_phase = ""
        self.heap0 = 0
        self.heap_peak = 0

    def track(self, t: torch.Tensor, label: str = "") -> None:
        st = t.untyped_storage()
        key = id(st)
        if key in self.live:
            return
        n = st.nbytes()
        self.live[key] = n
        self.bytes += n
        self.finalizers[key] = weakref.finalize(st, self._release, key)
        if self.bytes > self.peak:
            self.peak, self.peak_op, self.peak_phase = self.bytes, label, self.phase

    def _release(self, key: int) -> None:
        self.bytes -= self.live.pop(key)
        self.finalizers.pop(key, None)

    def reset_peak(self) -> None:
        self.peak, self.peak_op, self.peak_phase = self.bytes, "", self.phase
        self.heap0 = heap_in_use()
        self.heap_bytes0 = self.bytes
        self.heap_peak = self.heap0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor) and not t.is_sparse:
                self.track(t, str(func))
        self.heap_peak = max(self.heap_peak, heap_in_use())
        return out


@dataclass
class Measured:
    """One step, measured."""

    peak: int  # live storage bytes, parameters, buffers, inputs and optimizer state included
    phase: str  # where the peak was
    op: str
    heap_rise: int  # glibc in-use bytes: peak during the step minus at its start
    ledger_rise: int  # the ledger's peak minus its bytes at the step's start


def loss_of(out: Any) -> torch.Tensor:
    """The sum of every floating output that needs a gradient, in fp32: the rule `aelab cost` and
    `aelab memory` use (a transformers output's KV cache included). The rule is shared; the measuring is not."""
    from aelab.trace.tensors import flatten_tensors

    diff = [t for t in flatten_tensors(out) if t.requires_grad and t.is_floating_point()]
    return torch.stack([t.float().sum() for t in diff]).sum()


OPTIMIZERS: dict[str, Callable[[list[nn.Parameter]], torch.optim.Optimizer]] = {
    "sgd": lambda ps: torch.optim.SGD(ps, lr=1e-3),
    "sgd-momentum": lambda ps: torch.optim.SGD(ps, lr=1e-3, momentum=0.9),
    "adam": lambda ps: torch.optim.Adam(ps, lr=1e-3),
    "adamw": lambda ps: torch.optim.AdamW(ps, lr=1e-3),
}


def measure_steps(model: nn.Module, inputs: Sequence[torch.Tensor], *, optimizer: str = "adam",
                  amp: str = "off", steps: int = 2, kwinputs: dict[str, torch.Tensor] | None = None) -> list[Measured]:
    """Run `steps` real training steps on CPU and measure each one's peak."""
    model.train()
    opt = OPTIMIZERS[optimizer]([p for p in model.parameters() if p.requires_grad])
    dtype = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}[amp]
    ledger = Ledger()
    out: list[Measured] = []
    kwinputs = kwinputs or {}
    with ledger:
        for t in [*model.parameters(), *model.buffers(), *inputs, *kwinputs.values()]:
            ledger.track(t, "before")
        for _ in range(steps):
            for state in opt.state.values():
                for v in state.values():
                    if isinstance(v, torch.Tensor):
                        ledger.track(v, "state")
            ledger.reset_peak()
            start = ledger.bytes
            ledger.phase = "forward"
            cast = torch.autocast("cpu", dtype=dtype) if dtype is not None else contextlib.nullcontext()
            with cast:
                result = model(*inputs, **kwinputs)
                loss = loss_of(result)
            del result
            ledger.phase = "backward"
            loss.backward()
            del loss
            ledger.phase = "optimizer"
            opt.step()
            ledger.phase = "zero_grad"
            opt.zero_grad(set_to_none=True)
            out.append(Measured(ledger.peak, ledger.peak_phase, ledger.peak_op, ledger.heap_peak - ledger.heap0,
                                ledger.peak - start))
    return out
