"""Find the tensors inside whatever a model takes or returns: tuples, dicts, dataclasses, caches."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from aelab.trace.aten_args import ATOMS

_ATOMS = ATOMS  # values that hold no tensor, by exact type (a set lookup is cheaper than an isinstance chain)


def shallow_tensors(items: Any) -> list[torch.Tensor] | None:
    """The tensors of a call's arguments when they are tensors, atoms and tuples/lists/dicts of those (the
    common case, two levels at most: `(args, kwargs)` too), each once; None for anything else (the general walk
    below answers it, in the same order)."""
    out: list[torch.Tensor] = []
    ids: set[int] = set()
    for x in items:
        tx = type(x)
        if tx in _ATOMS:
            continue
        if tx is tuple or tx is list or tx is dict:
            for y in (x.values() if tx is dict else x):
                if type(y) in _ATOMS:
                    continue
                if not isinstance(y, torch.Tensor):
                    return None
                if id(y) not in ids:
                    ids.add(id(y))
                    out.append(y)
        elif isinstance(x, torch.Tensor):
            if id(x) not in ids:
                ids.add(id(x))
                out.append(x)
        else:
            return None
    return out


def flatten_tensors(obj: Any, _depth: int = 0, _seen: set[int] | None = None) -> list[torch.Tensor]:
    """Every tensor reachable from `obj`, in order, each once.

    Walks tuples, lists, dicts (so `transformers` ModelOutput), dataclasses, namedtuples and, a few
    levels deep, plain objects' attributes (a KV cache object, a `torch.distributions.Normal`).
    """
    if _seen is None:  # the hot path of every recorded call: a tensor, or a call's flat arguments
        if isinstance(obj, torch.Tensor):
            return [obj]
        if type(obj) is tuple or type(obj) is list:
            flat = shallow_tensors(obj)
            if flat is not None:
                return flat
    seen = _seen if _seen is not None else set()
    out: list[torch.Tensor] = []
    if _depth > 6 or type(obj) in _ATOMS or isinstance(obj, (str, bytes, int, float, bool, torch.dtype, torch.device)):
        return out
    if isinstance(obj, torch.Tensor):
        if id(obj) not in seen:
            seen.add(id(obj))
            out.append(obj)
        return out
    if id(obj) in seen:
        return out
    seen.add(id(obj))
    items: Any
    if isinstance(obj, dict):
        items = obj.values()
    elif isinstance(obj, (list, tuple, set, frozenset)):
        items = obj
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        items = [getattr(obj, f.name, None) for f in dataclasses.fields(obj)]
    elif isinstance(obj, torch.nn.Module) or callable(obj) or isinstance(obj, type):
        return out
    elif hasattr(obj, "__dict__"):
        items = [v for k, v in vars(obj).items() if not k.startswith("__")]
    else:
        return out
    for item in items:
        out.extend(flatten_tensors(item, _depth + 1, seen))
    return out
