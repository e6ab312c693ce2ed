"""Shape-only kernels for meta execution, where torch's own meta kernel is a slow Python decomposition.

On the meta device torch computes a batch norm by running its decomposition (var_mean, rsqrt,
broadcasts: ~3 ms of Python per call) and a pointwise op through `torch._refs` (stride and dtype
inference in Python: ~0.3 ms, 4 ms for `pow`). A meta tensor has no values, so all a kernel must
produce is the output's shape, dtype and strides. The kernels below produce exactly what torch's
meta kernel produces, in the cases they accept (contiguous operands on one device; a test compares
them with torch's on every case they accept); anything else returns `NotImplemented` and the
recorder runs torch's kernel. They are used only while recording on meta, never installed globally.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

aten = torch.ops.aten

Kernel = Callable[..., Any]
KERNELS: dict[Any, Kernel] = {}

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def _computation_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype in _LOW_PRECISION else dtype


def _pointwise(*args: Any, **kwargs: Any) -> Any:
    """An elementwise op of contiguous tensors on one device (and Python scalars): a contiguous output of
    the broadcast shape in the promoted dtype, what `torch._refs`' stride inference gives for such operands."""
    tensors = [a for a in args if isinstance(a, torch.Tensor)]
    first = tensors[0]
    device = first.device
    for t in tensors:
        if t.device != device or not t.is_contiguous():
            return NotImplemented
    dtype = torch.result_type(args[0], args[1]) if len(args) > 1 else first.dtype
    if not dtype.is_floating_point or (len(tensors) == 1 and not first.dtype.is_floating_point):
        return NotImplemented
    shape = first.shape if len(tensors) == 1 else torch.broadcast_shapes(*(t.shape for t in tensors))
    return torch.empty(shape, dtype=dtype, device=device)


_POINTWISE = (
    "add.Tensor", "add.Scalar", "sub.Tensor", "sub.Scalar", "mul.Tensor", "mul.Scalar", "div.Tensor",
    "div.Scalar", "pow.Tensor_Scalar", "pow.Tensor_Tensor", "maximum.default", "minimum.default",
    "neg.default", "exp.default", "rsqrt.default", "sqrt.default", "tanh.default", "sigmoid.default",
    "relu.default", "silu.default", "gelu.default", "sin.default", "cos.default", "reciprocal.default",
    "log.default", "erf.default", "abs.default",
)
_POINTWISE_BACKWARD = ("threshold_backward.default", "sigmoid_backward.default", "tanh_backward.default",
                       "silu_backward.default", "gelu_backward.default")


def _pointwise_backward(grad: torch.Tensor, other: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
    """An activation's backward: the gradient's layout and dtype, when both operands agree on them."""
    if (grad.shape != other.shape or grad.dtype != other.dtype or grad.device != other.device
            or not grad.is_contiguous() or not other.is_contiguous() or not grad.dtype.is_floating_point):
        return NotImplemented
    return torch.empty_like(grad)


def _overload(name: str) -> Any:
    packet, overload = name.split(".")
    return getattr(getattr(aten, packet), overload)


for _name in _POINTWISE:
    KERNELS[_overload(_name)] = _pointwise
for _name in _POINTWISE_BACKWARD:
    KERNELS[_overload(_name)] = _pointwise_backward


def _reduce(input: torch.Tensor, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Any:
    """mean.dim / sum.dim_IntList of a contiguous tensor: the reduced shape (size 1 kept with `keepdim`),
    contiguous; the dtype asked for, else the input's (sum of integers or bools: int64)."""
    if not input.is_contiguous() or not (input.dtype.is_floating_point or dtype is not None):
        return NotImplemented
    dims = range(input.dim()) if dim is None or (isinstance(dim, (list, tuple)) and not dim) else dim
    dims = [dims] if isinstance(dims, int) else dims
    reduced = {d % max(input.dim(), 1) for d in dims}
    shape = [1 if i in reduced else n for i, n in enumerate(input.shape) if keepdim or i not in reduced]
    return torch.empty(shape, dtype=dtype or input.dtype, device=input.device)


KERNELS[aten.mean.dim] = _reduce
KERNELS[aten.sum.dim_IntList] = _reduce


def _batch_norm(input: torch.Tensor, weight: Any, bias: Any, running_mean: Any, running_var: Any,
                training: bool, momentum: float, eps: float) -> Any:
    """native_batch_norm: (output like input, save_mean (C,), save_invstd (C,)) in the computation dtype,
    as the decomposition returns off CPU (running statistics have no values to update on meta)."""
    if input.dim() < 2 or not input.is_contiguous():
        return NotImplemented
    c = input.shape[1]
    stats = _computation_dtype(input.dtype)
    return (torch.empty_like(input), input.new_empty((c,), dtype=stats), input.new_empty((c,), dtype=stats))


def _batch_norm_backward(grad_out: torch.Tensor, input: torch.Tensor, weight: Any, running_mean: Any,
                         running_var: Any, save_mean: Any, save_invstd: Any, train: bool, eps: float,
                         output_mask: list[bool]) -> Any:
    """native_batch_norm_backward: grad_input like input (always), grad_weight and grad_bias (C,) in the
    weight's dtype where `output_mask` asks for them, else None (what the decomposition returns)."""
    if (input.dim() < 2 or not input.is_contiguous() or not grad_out.is_contiguous()
            or grad_out.shape != input.shape):
        return NotImplemented
    c = input.shape[1]
    wdtype = weight.dtype if weight is not None else input.dtype
    grad_input = torch.empty_like(input)
    grad_weight = input.new_empty((c,), dtype=wdtype) if output_mask[1] else None
    grad_bias = input.new_empty((c,), dtype=wdtype) if output_mask[2] else None
    return grad_input, grad_weight, grad_bias


KERNELS[aten.native_batch_norm.default] = _batch_norm
KERNELS[aten.native_batch_norm_backward.default] = _batch_norm_backward


def run(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """`func` on meta tensors: the shape-only kernel where one accepts the arguments, else torch's."""
    kernel = KERNELS.get(func)
    if kernel is not None:
        out = kernel(*args, **kwargs)
        if out is not NotImplemented:
            return out
    return func(*args, **kwargs)
