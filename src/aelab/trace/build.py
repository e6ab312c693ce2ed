"""Construct a model on meta and keep what the constructor knew: the real values of its buffers.

A buffer made on the meta device has no values, yet most are computed from constants (position ids as an
`arange`, rotary `inv_freq`, a sinusoidal table). While the CLI builds a model, `construct` follows the
constructor with the same shadow values the trace uses (`aelab.trace.shadow`), never drawing its random
inits, and hands the buffers it knows to `aelab.trace.materialize`. A constructor that refuses the meta
device (compressai-style: it reads a value of a tensor it made) is built again on CPU, and the notes say so.
"""

from __future__ import annotations

import contextlib
import weakref
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

from aelab.trace.materialize import remember_buffers
from aelab.trace.modes import DispatchMode
from aelab.trace.shadow import Shadow, _kind, written

_BUILD_NOTES: weakref.WeakKeyDictionary[nn.Module, list[str]] = weakref.WeakKeyDictionary()


def build_notes(model: nn.Module) -> list[str]:
    """What `construct` had to do differently for this model (the trace's notes repeat it)."""
    return list(_BUILD_NOTES.get(model, []))


class _FollowBuild(DispatchMode):
    """While a model is constructed on meta: the real values of what the constructor computes from
    constants (a position-id `arange`, rotary `inv_freq`, a sinusoidal table), never its random inits."""

    def __init__(self) -> None:
        super().__init__()
        self.shadow = Shadow(max_numel=1 << 22, budget_bytes=1 << 28)

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        reads, random, _ = _kind(func)
        # a real tensor the kernel writes (`torch.ones(3).mul_(2)` under the meta device) is not written twice
        pre = self.shadow.before(func, args, kwargs) if not (random or reads) else None
        out = func(*args, **kwargs)
        if random:  # a random init is not a value we can promise; drawing it for real would cost the RNG
            for t in written(func, args, kwargs):
                self.shadow.forget(t)
        elif not reads:
            self.shadow.after(func, args, kwargs, out, pre)
        return out


_FROM_DATA = frozenset({torch.tensor, torch.as_tensor, torch.asarray})


class _FollowData(TorchFunctionMode):
    """`torch.tensor(True)` under the meta device copies its CPU data to meta below the dispatcher, so no op of
    `_FollowBuild` sees the value (vector-quantize-pytorch's `initted` flag came back as an unrecoverable
    zero: False, and k-means ran on meta where the real model skips it). Made from Python data only, the
    value is a constant: build it on CPU too and hand it to the shadow."""

    def __init__(self, shadow: Shadow) -> None:
        super().__init__()
        self.shadow = shadow

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func in _FROM_DATA and isinstance(out, torch.Tensor) and out.device.type == "meta" \
                and out.numel() <= self.shadow.max_numel \
                and not any(isinstance(a, torch.Tensor) for a in tree_flatten((args, kwargs))[0]):
            with torch._C.DisableTorchFunction():
                real = func(*args, **{**kwargs, "device": "cpu"})
            if isinstance(real, torch.Tensor) and real.shape == out.shape and real.dtype == out.dtype:
                self.shadow.set(out, real, 0)
        return out


def construct(factory: Any, kwargs: dict[str, Any], device: str | None) -> nn.Module:
    """`factory(**kwargs)` under `torch.device(device)`. On meta, the buffers' real values are kept (see
    `_FollowBuild`); a constructor that refuses meta (it reads a value, or calls a CPU-only routine) is
    built again on CPU, real weights and all, and the notes say so. Other errors are the constructor's."""
    if device != "meta":
        ctx = torch.device(device) if device is not None else contextlib.nullcontext()
        with ctx:
            return factory(**kwargs)
    follow = _FollowBuild()
    try:
        with torch.device("meta"), follow, _FollowData(follow.shadow):
            model = factory(**kwargs)
    except Exception as exc:
        with torch.device("cpu"):
            model = factory(**kwargs)  # if this raises too, the constructor is wrong: its error stands
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
        _BUILD_NOTES[model] = [f"The constructor refuses the meta device ({type(exc).__name__}: {first}): the model "
                               "was built on CPU with real weights instead (as --device cpu would)."]
        return model
    if isinstance(model, nn.Module):
        values = {}
        for name, b in model.named_buffers():
            got = follow.shadow.get(b) if b.device.type == "meta" else None
            if got is not None and not got[1]:
                values[name] = got[0]
        if values:
            remember_buffers(model, values)
    return model
