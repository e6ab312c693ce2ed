"""The model's own `encode()` / `decode()` as marks in the trace: where its encoder ends, its decoder begins.

While a recording runs, the methods of the model's class are wrapped (and restored afterwards), as
`samplers.py` wraps `Distribution.rsample`. A wrapped call records the tensors it reads and returns,
the range of calls made inside it, and the distribution objects it hands on (diffusers'
`DiagonalGaussianDistribution`, any `torch.distributions.Distribution`) with their tensor attributes.
It adds no row to the trace's calls: the layer table and the FLOP counts stay as they were.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from aelab.trace.records import DistributionInfo, MethodCall
from aelab.trace.state import State, active
from aelab.trace.tensors import flatten_tensors

METHODS = ("encode", "decode")


def _is_distribution(obj: Any) -> bool:
    return isinstance(obj, torch.distributions.Distribution) or type(obj).__name__.endswith("Distribution")


def _distributions(obj: Any, st: State, depth: int = 0) -> list[DistributionInfo]:
    """Distribution objects inside a method's result (a tuple, a dict-like output record, an attribute)."""
    if depth > 3 or obj is None or isinstance(obj, (torch.Tensor, str, bytes, int, float, bool)):
        return []
    if _is_distribution(obj):
        fields = {k: st.info(v) for k, v in vars(obj).items() if isinstance(v, torch.Tensor)}
        for name in ("mean", "loc", "scale", "stddev"):  # torch.distributions keep some as properties
            if name not in fields:
                with contextlib.suppress(Exception):
                    value = getattr(obj, name)
                    if isinstance(value, torch.Tensor):
                        fields[name] = st.info(value)
        return [DistributionInfo(type(obj).__name__, fields)]
    items: Any
    if isinstance(obj, dict):
        items = obj.values()
    elif isinstance(obj, (list, tuple)):
        items = obj
    elif hasattr(obj, "__dict__") and not isinstance(obj, nn.Module) and not callable(obj):
        items = vars(obj).values()
    else:
        return []
    return [d for item in items for d in _distributions(item, st, depth + 1)]


def _wrap(model: nn.Module, method: Any, name: str, found: list[MethodCall]) -> Any:
    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        st = active()
        if self is not model or st is None or st.phase != "forward":
            return method(self, *args, **kwargs)
        st.suppress_functions += 1  # reading the tensors' shapes must not be recorded as calls
        try:
            inputs = tuple(st.infos((args, kwargs)))
        finally:
            st.suppress_functions -= 1
        first = len(st.calls)
        out = method(self, *args, **kwargs)
        st.suppress_functions += 1
        try:
            outputs = tuple(st.info(t) for t in flatten_tensors(out))
            dists = tuple(_distributions(out, st))
        finally:
            st.suppress_functions -= 1
        found.append(MethodCall(name, f"{type(self).__name__}.{name}", inputs, outputs, (first, len(st.calls)),
                                dists))
        return out

    return wrapper


@contextlib.contextmanager
def recorded_methods(model: nn.Module) -> Iterator[list[MethodCall]]:
    """Wrap `encode`/`decode` of `model`'s class while the block runs; yields the list the calls go to."""
    cls = type(model)
    found: list[MethodCall] = []
    patched: list[tuple[str, Any, bool]] = []
    try:
        for name in METHODS:
            method = getattr(cls, name, None)
            if not callable(method) or isinstance(cls.__dict__.get(name), (staticmethod, classmethod)):
                continue
            patched.append((name, cls.__dict__.get(name), name in cls.__dict__))
            setattr(cls, name, _wrap(model, method, name, found))
        yield found
    finally:
        for name, original, own in reversed(patched):
            if own:
                setattr(cls, name, original)
            else:
                delattr(cls, name)
