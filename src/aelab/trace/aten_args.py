"""aten arguments and results: the tensors in them, a map over their leaves, a call on real values.

An aten op's arguments are tensors, scalars, dtypes, devices and lists/tuples of those, never dicts or
objects, so these need neither pytree's registry walk nor `flatten_tensors`' general one: they run on
every op the shadow follows and every FLOP formula, where pytree's per-leaf cost was ~7% of a trace.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils._python_dispatch import _disable_current_modes

# Values that hold no tensor, by exact type. `isinstance(x, torch.Tensor)` costs ~270 ns when x is not a tensor
# (torch's metaclass), 5x a set lookup of its type: the hot paths ask this first.
ATOMS = frozenset({int, float, bool, str, bytes, type(None), torch.dtype, torch.device, torch.Size, torch.layout,
                   torch.memory_format, slice, type(Ellipsis)})


def tensors_of(x: Any) -> list[torch.Tensor]:
    """The tensors of an aten argument or result (a tensor, or lists/tuples of them and scalars), in order."""
    if type(x) in ATOMS:
        return []
    if isinstance(x, torch.Tensor):
        return [x]
    if isinstance(x, (list, tuple)):
        return [t for y in x for t in tensors_of(y)]
    return []


def map_leaves(fn: Callable[[Any], Any], x: Any) -> Any:
    """`fn` applied to every leaf of an aten argument (lists and tuples keep their type)."""
    if type(x) is list or type(x) is tuple:
        return type(x)(map_leaves(fn, y) for y in x)
    return fn(x)


def shapes_of(x: Any) -> Any:
    """`x` with every tensor replaced by its shape (what torch's FLOP formulas take)."""
    tx = type(x)
    if tx is tuple or tx is list:
        out = [y if type(y) in ATOMS else shapes_of(y) for y in x]
        return tuple(out) if tx is tuple else out
    if tx in ATOMS or not isinstance(x, torch.Tensor):
        return x
    return x.shape


def real_call(func: Any, args: Any, kwargs: dict[str, Any]) -> Any:
    """`func` on real values: outside every mode, without autograd. (The hot path of the shadow: plain
    calls, not `torch.no_grad()` and `_disable_current_modes()`, which cost ~17 µs per op together.)"""
    grad = torch.is_grad_enabled()
    torch._C._set_grad_enabled(False)
    try:
        with torch._C.DisableTorchFunction():
            if torch._C._len_torch_dispatch_stack():
                with _disable_current_modes():
                    return func(*args, **kwargs)
            return func(*args, **kwargs)
    finally:
        torch._C._set_grad_enabled(grad)
