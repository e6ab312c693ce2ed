"""The names a trace gives torch functions: `x + y` is "+" (type "Tensor.__add__ (+)"), `F.relu` is "relu"
("F.relu"); getters and metadata queries (`x.shape`, `x.size()`) are no calls at all."""

from __future__ import annotations

import functools
from typing import Any

_OPERATORS = {"__add__": "+", "__radd__": "+", "__sub__": "-", "__rsub__": "-", "__mul__": "*",
              "__rmul__": "*", "__truediv__": "/", "__rtruediv__": "/", "__matmul__": "@", "__rmatmul__": "@",
              "__getitem__": "[]", "__pow__": "**", "__neg__": "neg", "__iadd__": "+=", "__imul__": "*="}


@functools.lru_cache(maxsize=4096)
def function_names(func: Any) -> tuple[str, str] | None:
    """(short name, display type) of a torch function; None for getters and metadata queries."""
    qual = getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or repr(func)
    name = getattr(func, "__name__", qual)
    if qual.endswith("__get__") or qual.endswith("__set__") or name in _METADATA:
        return None
    if qual.startswith(("TensorBase.", "Tensor.", "_TensorBase.")):
        method = qual.split(".", 1)[1]
        short = _OPERATORS.get(method, method.strip("_"))
        return short, f"Tensor.{method}" + (f" ({_OPERATORS[method]})" if method in _OPERATORS else "")
    module = getattr(func, "__module__", "") or ""
    if module.startswith("torch.nn.functional") or module == "torch._C._nn":
        return name, f"F.{name}"
    return name, f"torch.{name}"


_METADATA = frozenset({"size", "dim", "numel", "__len__", "__bool__", "__int__", "__float__", "__index__",
                       "__format__", "__repr__", "__hash__", "__eq__", "element_size", "is_floating_point",
                       "is_complex", "stride", "storage_offset", "data_ptr", "is_contiguous", "tolist",
                       "__iter__", "__contains__", "get_device", "__reduce_ex__", "__array__", "grad",
                       "has_names", "ndimension", "nelement", "_is_view", "is_sparse", "__setstate__",
                       "_set_grad_enabled"})  # (`no_grad` inside a forward: returns None, never a call)
