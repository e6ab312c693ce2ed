"""Find the tensors inside whatever a model takes or returns: tuples, dicts, dataclasses, caches."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch


_ATOMS = (int, float, str, type(None), torch.dtype, torch.device)  # values that hold no tensor (bool is an int)


def flatten_tensors(obj: Any, _depth: int = 0, _seen: set[int] | None = None) -> list[torch.Tensor]:
    """Every tensor reachable from `obj`, in order, each once.

    Walks tuples, lists, dicts (so `transformers` ModelOutput), dataclasses, namedtuples and, a few
    levels deep, plain objects' attributes (a KV cache object, a `torch.distributions.Normal`).
    """
    if _seen is None:  # the common cases first: one tensor, a flat tuple of tensors and scalars
        if isinstance(obj, torch.Tensor):
            return [obj]
        if type(obj) is tuple:
            flat: list[torch.Tensor] = []
            for x in obj:
                if isinstance(x, torch.Tensor):
                    if all(x is not y for y in flat):
                        flat.append(x)
                elif not isinstance(x, _ATOMS):
                    break
            else:
                return flat
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
