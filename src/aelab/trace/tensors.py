"""Find the tensors inside whatever a model takes or returns: tuples, dicts, dataclasses, caches."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch


def flatten_tensors(obj: Any, _depth: int = 0, _seen: set[int] | None = None) -> list[torch.Tensor]:
    """Every tensor reachable from `obj`, in order, each once.

    Walks tuples, lists, dicts (so `transformers` ModelOutput), dataclasses, namedtuples and, a few
    levels deep, plain objects' attributes (a KV cache object, a `torch.distributions.Normal`).
    """
    seen = _seen if _seen is not None else set()
    out: list[torch.Tensor] = []
    if _depth > 6 or obj is None or isinstance(obj, (str, bytes, int, float, bool, torch.dtype, torch.device)):
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
