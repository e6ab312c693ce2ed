"""A kernel stricter on meta or fake tensors than on real ones, run on the CPU for its output shapes.

Mixtral's grouped-mm experts refuse meta (`Expected inputs of BF16 type`), a legacy CPU tensor meets meta ones:
the CPU kernel runs them. `probe` runs it on the values the shadow knows and zeros for the rest, and hands back
stand-ins of its outputs' shapes (values unknown), so the run goes on at the user's batch without the weights.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils._python_dispatch import _disable_current_modes
from torch.utils._pytree import tree_flatten, tree_map

from aelab.trace.shadow import NOTHING, Shadow, target_device, written

_PROBED: dict[Any, Any] = {}  # (op, input shapes/dtypes/strides, other args) -> the CPU kernel's outputs, on meta
_NEEDS_VALUES = frozenset({"DataDependentOutputException", "DynamicOutputShapeException"})


def needs_values(exc: BaseException) -> bool:
    """Whether a fake/meta kernel raised because its output's shape depends on values (`nonzero`, `unique`)."""
    return type(exc).__name__ in _NEEDS_VALUES


def probed_or_raise(shadow: Shadow, func: Any, args: Any, kwargs: dict[str, Any], exc: Exception) -> Any:
    """After a fake/meta kernel raised `exc`: the CPU kernel's output shapes (`probe`); `exc` again when the
    shape needs values or the CPU kernel fails too."""
    if needs_values(exc):
        raise exc
    out = probe(shadow, func, args, kwargs)
    if out is NOTHING:
        raise exc
    return out


def probe(shadow: Shadow, func: Any, args: Any, kwargs: dict[str, Any], max_bytes: int = 1 << 30) -> Any:
    """Run the CPU kernel on the known values and zeros for the unknown, and return stand-ins of its
    outputs' shapes whose values stay unknown; NOTHING if the CPU kernel fails too.

    Unknown inputs are one zero broadcast to their shape (no memory: a 3.7 GB expert weight costs
    nothing), or, if the kernel refuses that, real zeros up to `max_bytes`. Answers are cached by the
    op and its inputs' shapes, dtypes and strides, so a layer repeated 32 times is probed once."""
    flat = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
    known = [shadow.get(t) for t in flat]
    key = (func, tuple((tuple(t.shape), t.dtype, tuple(t.stride()), k is not None) for t, k in zip(flat, known)),
           repr([a for a in tree_flatten((args, kwargs))[0] if not isinstance(a, torch.Tensor)]))
    if all(k is None for k in known) and key in _PROBED:
        return shadow.stand_in(_PROBED[key], target_device(args, kwargs), 0, known=False)
    writes = {id(t) for t in written(func, args, kwargs)}

    def attempt(broadcast: bool) -> Any:
        def value(x: Any) -> Any:
            if isinstance(x, torch.Tensor):
                got = shadow.get(x)
                if got is not None:
                    return got[0]
                if broadcast and id(x) not in writes:
                    return torch.zeros((), dtype=x.dtype).expand(x.shape)
                return torch.zeros(x.shape, dtype=x.dtype)
            if isinstance(x, torch.device):
                return torch.device("cpu")
            return x

        with _disable_current_modes(), torch._C.DisableTorchFunction(), torch.no_grad():
            try:
                return func(*tree_map(value, args), **tree_map(value, kwargs))
            except Exception:
                return NOTHING

    real_out = attempt(broadcast=True)
    if real_out is NOTHING:
        if sum(t.numel() * t.element_size() for t, k in zip(flat, known) if k is None) > max_bytes:
            return NOTHING
        real_out = attempt(broadcast=False)
        if real_out is NOTHING:
            return NOTHING
    meta_out = tree_map(lambda r: torch.empty_strided(tuple(r.shape), tuple(r.stride()), dtype=r.dtype,
                                                      device="meta") if isinstance(r, torch.Tensor) else r,
                        real_out)
    if all(k is None for k in known):
        _PROBED[key] = meta_out
    return shadow.stand_in(meta_out, target_device(args, kwargs), 0, known=False)
