"""Rewrite chosen function calls inside a model's forward while it runs: a view/reshape gets another shape,
the inputs of a cat are padded (the shape doctor's fixes to forward() code, traced on to find the next
problem). A call is recognised by its function, its first input's shape and its occurrence; the model's
code and objects are never changed.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from aelab.trace.state import active

#: the functions a patch can rewrite, by the names the trace gives them
FUNCTIONS: dict[Any, str] = {torch.Tensor.view: "Tensor.view", torch.Tensor.reshape: "Tensor.reshape",
                             torch.reshape: "torch.reshape", torch.cat: "torch.cat", torch.concat: "torch.concat",
                             torch.concatenate: "torch.concatenate"}


@dataclass(frozen=True)
class CallPatch:
    """One call to rewrite: the `occurrence`-th call of `function` on a first input of `input_shape`."""

    function: str  # a value of FUNCTIONS
    input_shape: tuple[int, ...]
    occurrence: int
    shape: tuple[int, ...] | None = None  # view/reshape: the shape to use instead
    pads: Mapping[int, Sequence[int]] = field(default_factory=dict)  # cat: input index -> F.pad amounts


class CallPatches(TorchFunctionMode):
    """While active, apply `patches` to the calls they name; every other call runs as written."""

    def __init__(self, patches: list[CallPatch]) -> None:
        super().__init__()
        self.patches = patches
        self.seen: dict[tuple[str, tuple[int, ...]], int] = {}
        self.run: Any = None  # the recording whose calls `seen` counts (a record() may run the forward twice)

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        name = FUNCTIONS.get(func)
        if name is None or not args:
            return func(*args, **kwargs)
        first = args[0][0] if name.startswith("torch.c") else args[0]
        if not isinstance(first, torch.Tensor):
            return func(*args, **kwargs)
        run = active()
        if (self.run() if self.run is not None else None) is not run:  # a new run counts occurrences anew
            self.run = weakref.ref(run) if run is not None else None
            self.seen.clear()
        key = (name, tuple(first.shape))
        n = self.seen.get(key, 0)
        self.seen[key] = n + 1
        for p in self.patches:
            if p.function == name and p.input_shape == key[1] and p.occurrence == n:
                if p.shape is not None:
                    return func(args[0], p.shape)
                tensors = [F.pad(t, list(p.pads[i])) if i in p.pads else t for i, t in enumerate(args[0])]
                return func(tensors, *args[1:], **kwargs)
        return func(*args, **kwargs)
