"""Shape-only kernels for meta execution, where torch's own meta kernel is a slow Python decomposition.

On the meta device torch computes a batch norm by running its decomposition (var_mean, rsqrt,
broadcasts: ~3 ms of Python per call) and a pointwise op through `torch._refs` (stride and dtype
inference in Python: ~0.3 ms, 4 ms for `pow`). A meta tensor has no values, so all a kernel must
produce is the output's shape, dtype and strides. The kernels below produce exactly what torch's
meta kernel produces, in the cases they accept (row-major operands on one device; a test compares
them with torch's on every case they accept); anything else returns `NotImplemented` and the
recorder runs torch's kernel. They are used only while recording on meta, never installed globally.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from aelab.trace.meta_layout import broadcast, contiguous_strides, elementwise_strides, row_major

aten = torch.ops.aten

Kernel = Callable[..., Any]
KERNELS: dict[Any, Kernel] = {}

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def _empty_like(t: torch.Tensor) -> torch.Tensor:
    """`torch.empty_like` of a dense tensor, without its meta kernel (a Python reference implementation)."""
    return torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device=t.device)


def _computation_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype in _LOW_PRECISION else dtype


_SCALARS = frozenset({int, float, bool, complex})  # isinstance(x, torch.Tensor) is slow when x is not one


def _pointwise(*args: Any, **kwargs: Any) -> Any:
    """An elementwise op of tensors on one device (and Python scalars): the broadcast shape, the promoted
    dtype and the strides torch's elementwise meta kernels give (`elementwise_strides`)."""
    if len(args) == 1 and not kwargs:  # unary (tanh, exp, ...) of a row-major tensor: the same layout, sooner
        t = args[0]
        if (isinstance(t, torch.Tensor) and t.is_meta and t.dtype.is_floating_point
                and t.stride() == contiguous_strides(tuple(t.shape))):
            return torch.empty(t.shape, dtype=t.dtype, device=t.device)
    tensors = [a for a in args if type(a) not in _SCALARS and isinstance(a, torch.Tensor)]
    first = tensors[0]
    device = first.device
    if not first.is_meta or any(t.device != device for t in tensors):
        return NotImplemented
    dtype = torch.result_type(args[0], args[1]) if len(args) > 1 else first.dtype
    if not dtype.is_floating_point or (len(tensors) == 1 and not first.dtype.is_floating_point):
        return NotImplemented
    if len(tensors) == 1 or all(t.shape == first.shape for t in tensors):
        shape = first.shape
    else:
        common = broadcast([t.shape for t in tensors])
        if common is None:
            return NotImplemented  # torch's kernel raises with the message the doctor reads
        shape = torch.Size(common)
    strides = elementwise_strides(tensors, shape)
    if strides is None:
        return NotImplemented
    return torch.empty_strided(shape, strides, dtype=dtype, device=device)


def _where(condition: torch.Tensor, a: Any, b: Any) -> Any:
    """where.self: the broadcast of the three shapes, the promoted dtype of the two values."""
    tensors = [t for t in (condition, a, b) if isinstance(t, torch.Tensor)]
    if (condition.dtype != torch.bool or not condition.is_meta
            or any(t.device != condition.device or not row_major(t) for t in tensors)
            or not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor))):
        return NotImplemented
    dtype = torch.result_type(a, b)
    if not dtype.is_floating_point:
        return NotImplemented
    shape = broadcast([t.shape for t in tensors])
    if shape is None:
        return NotImplemented
    return torch.empty(shape, dtype=dtype, device=condition.device)


def _like(input: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
    """tril / triu: the input's shape and dtype, contiguous."""
    if not input.is_meta or not input.is_contiguous():
        return NotImplemented
    return _empty_like(input)


def _softmax(input: torch.Tensor, dim: int, half_to_float: Any = False, **kwargs: Any) -> Any:
    """_softmax (half_to_float) / _safe_softmax (dtype=): the input's shape, contiguous."""
    if not input.is_meta or not input.is_contiguous() or not input.dtype.is_floating_point:
        return NotImplemented
    dtype = kwargs.get("dtype") or (torch.float32 if half_to_float is True else input.dtype)
    if isinstance(half_to_float, torch.dtype):  # _safe_softmax(self, dim, dtype) given positionally
        dtype = half_to_float
    return torch.empty(input.shape, dtype=dtype, device=input.device)


def _cat(tensors: list[torch.Tensor], dim: int = 0) -> Any:
    """cat of row-major tensors of one dtype, device and rank: contiguous, sizes added along `dim`."""
    if not tensors or not tensors[0].is_meta:
        return NotImplemented
    first = tensors[0]
    if any(t.dtype != first.dtype or t.device != first.device or t.dim() != first.dim() or not row_major(t)
           or t.dim() == 0 for t in tensors):
        return NotImplemented
    d = dim % first.dim()
    shape = list(first.shape)
    if any(list(t.shape[:d]) + list(t.shape[d + 1:]) != shape[:d] + shape[d + 1:] for t in tensors):
        return NotImplemented
    shape[d] = sum(t.shape[d] for t in tensors)
    return torch.empty(shape, dtype=first.dtype, device=first.device)


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
    if (not grad.is_meta or grad.shape != other.shape or grad.dtype != other.dtype or grad.device != other.device
            or not grad.is_contiguous() or not other.is_contiguous() or not grad.dtype.is_floating_point):
        return NotImplemented
    return _empty_like(grad)


def _overload(name: str) -> Any:
    packet, overload = name.split(".")
    return getattr(getattr(aten, packet), overload)


for _name in _POINTWISE:
    KERNELS[_overload(_name)] = _pointwise
for _name in _POINTWISE_BACKWARD:
    KERNELS[_overload(_name)] = _pointwise_backward


def _pointwise_inplace(self: torch.Tensor, other: Any, *, alpha: Any = 1) -> Any:
    """An in-place binary op (`num_batches_tracked.add_(1)`, `x.mul_(scale)`): the tensor itself, where torch
    would accept it: `other` broadcasts to its shape and the promoted dtype casts to its own (torch's meta
    kernel checks the same in Python); an expanded `self`, or any other case, is torch's to judge."""
    if not self.is_meta or type(alpha) is not int or any(st == 0 and sz > 1 for sz, st in
                                                          zip(self.shape, self.stride(), strict=True)):
        return NotImplemented
    if type(other) in _SCALARS:
        if type(other) is complex or (type(other) is float and not self.dtype.is_floating_point):
            return NotImplemented
    elif not isinstance(other, torch.Tensor) or other.device != self.device \
            or broadcast([self.shape, other.shape]) != tuple(self.shape):
        return NotImplemented
    if self.dtype == torch.bool or not torch.can_cast(torch.result_type(self, other), self.dtype):
        return NotImplemented
    return self


for _name in ("add_.Tensor", "add_.Scalar", "sub_.Tensor", "sub_.Scalar", "mul_.Tensor", "mul_.Scalar"):
    KERNELS[_overload(_name)] = _pointwise_inplace


def _empty(size: list[int], *, dtype: Any = None, layout: Any = None, device: Any = None, pin_memory: Any = None,
           memory_format: Any = None) -> Any:
    """empty.memory_format on meta (a composite's scratch tensor, `torch.empty` under the meta device): contiguous."""
    if (getattr(device, "type", device) != "meta" or layout not in (None, torch.strided) or pin_memory
            or memory_format not in (None, torch.contiguous_format)):
        return NotImplemented
    return torch.empty(size, dtype=dtype, device=device)


KERNELS[aten.empty.memory_format] = _empty


def _stack(tensors: list[torch.Tensor], dim: int = 0) -> Any:
    """stack of same-shape row-major tensors of one dtype and device: contiguous, a new dimension at `dim`."""
    if not tensors or not tensors[0].is_meta:
        return NotImplemented
    first = tensors[0]
    if any(t.shape != first.shape or t.dtype != first.dtype or t.device != first.device or not row_major(t)
           for t in tensors):
        return NotImplemented
    shape = list(first.shape)
    shape.insert(dim % (first.dim() + 1), len(tensors))
    return torch.empty(shape, dtype=first.dtype, device=first.device)


KERNELS[aten.stack.default] = _stack


def _filled(input: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
    """An in-place random fill (`normal_`, `uniform_`, ...) of a meta tensor: the tensor itself (no values
    to draw; torch's meta kernel checks its arguments in Python and returns the same)."""
    return input if input.device.type == "meta" and input.dtype.is_floating_point else NotImplemented


for _name in ("normal_.default", "uniform_.default", "exponential_.default", "bernoulli_.float"):
    KERNELS[_overload(_name)] = _filled


def _filled_like(input: torch.Tensor, *, dtype: Any = None, layout: Any = None, device: Any = None,
                 pin_memory: Any = None, memory_format: Any = None) -> Any:
    """ones_like / zeros_like of a contiguous tensor (autograd's seed gradient): contiguous, same shape."""
    if not input.is_meta or not input.is_contiguous() or layout not in (None, torch.strided) \
            or device not in (None, input.device) \
            or memory_format not in (None, torch.preserve_format, torch.contiguous_format):
        return NotImplemented
    return torch.empty(input.shape, dtype=dtype or input.dtype, device=input.device)


KERNELS[aten.ones_like.default] = _filled_like
KERNELS[aten.zeros_like.default] = _filled_like


def _reduce(input: torch.Tensor, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Any:
    """mean.dim / sum.dim_IntList / sum: the reduced shape (size 1 kept with `keepdim`), contiguous whatever
    the input's layout (torch's reduction meta makes contiguous strides for the output shape); the dtype
    asked for, else the input's (sums of integers or bools, int64, are left to torch)."""
    if not input.is_meta or not (input.dtype.is_floating_point or dtype is not None):
        return NotImplemented
    dims = range(input.dim()) if dim is None or (isinstance(dim, (list, tuple)) and not dim) else dim
    dims = [dims] if isinstance(dims, int) else dims
    reduced = {d % max(input.dim(), 1) for d in dims}
    shape = [1 if i in reduced else n for i, n in enumerate(input.shape) if keepdim or i not in reduced]
    return torch.empty(shape, dtype=dtype or input.dtype, device=input.device)


KERNELS[aten.where.self] = _where
KERNELS[aten.tril.default] = _like
KERNELS[aten.triu.default] = _like
KERNELS[aten._softmax.default] = _softmax
KERNELS[aten._safe_softmax.default] = _softmax
KERNELS[aten.cat.default] = _cat
KERNELS[aten.mean.dim] = _reduce
KERNELS[aten.sum.dim_IntList] = _reduce
KERNELS[aten.sum.default] = _reduce


def _batch_norm(input: torch.Tensor, weight: Any, bias: Any, running_mean: Any, running_var: Any,
                training: bool, momentum: float, eps: float) -> Any:
    """native_batch_norm: (output like input, save_mean (C,), save_invstd (C,)) in the computation dtype,
    as the decomposition returns off CPU (running statistics have no values to update on meta)."""
    if not input.is_meta or input.dim() < 2 or not input.is_contiguous():
        return NotImplemented
    c = input.shape[1]
    if any(t is not None and t.numel() != c for t in (weight, bias, running_mean, running_var)):
        return NotImplemented  # a num_features mismatch: torch raises, and the doctor explains it
    stats = _computation_dtype(input.dtype)
    device = input.device  # (torch.empty: `new_empty` on meta is a Python reference, 4x the cost)
    return (_empty_like(input), torch.empty((c,), dtype=stats, device=device),
            torch.empty((c,), dtype=stats, device=device))


def _batch_norm_backward(grad_out: torch.Tensor, input: torch.Tensor, weight: Any, running_mean: Any,
                         running_var: Any, save_mean: Any, save_invstd: Any, train: bool, eps: float,
                         output_mask: list[bool]) -> Any:
    """native_batch_norm_backward: grad_input like input (always), grad_weight and grad_bias (C,) in the
    weight's dtype where `output_mask` asks for them, else None (what the decomposition returns)."""
    if (not input.is_meta or input.dim() < 2 or not input.is_contiguous() or not grad_out.is_contiguous()
            or grad_out.shape != input.shape):
        return NotImplemented
    c = input.shape[1]
    wdtype = weight.dtype if weight is not None else input.dtype
    grad_input = _empty_like(input)
    grad_weight = torch.empty((c,), dtype=wdtype, device=input.device) if output_mask[1] else None
    grad_bias = torch.empty((c,), dtype=wdtype, device=input.device) if output_mask[2] else None
    return grad_input, grad_weight, grad_bias


def _mm(a: torch.Tensor, b: torch.Tensor) -> Any:
    """mm of two matrices of one dtype: a contiguous (n, p), as torch's meta kernel (`a.new_empty(n, p)`) gives."""
    if (not a.is_meta or a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[0] or a.dtype != b.dtype
            or a.device != b.device):
        return NotImplemented
    return torch.empty((a.shape[0], b.shape[1]), dtype=a.dtype, device=a.device)


def _addmm(bias: torch.Tensor, a: torch.Tensor, b: torch.Tensor, *, beta: Any = 1, alpha: Any = 1) -> Any:
    """addmm with a bias vector (nn.Linear): a contiguous (n, p) in the operands' dtype."""
    out = _mm(a, b)
    if out is NotImplemented or bias.dim() != 1 or bias.shape[0] not in (1, b.shape[1]) or bias.dtype != a.dtype:
        return NotImplemented
    return out


def _convolution(input: torch.Tensor, weight: torch.Tensor, bias: Any, stride: list[int], padding: list[int],
                 dilation: list[int], transposed: bool, output_padding: list[int], groups: int) -> Any:
    """convolution of a contiguous batch with a contiguous weight: a contiguous (N, C_out, *spatial) with
    PyTorch's output-size formula per dimension (the meta kernel picks contiguous for such operands)."""
    dims = input.dim() - 2
    if (not input.is_meta or dims < 1 or weight.dim() != input.dim() or not input.is_contiguous()
            or not weight.is_contiguous()
            or input.dtype != weight.dtype or input.device != weight.device
            or any(len(v) != dims for v in (stride, padding, dilation))):
        return NotImplemented
    c_in = weight.shape[0] if transposed else weight.shape[1] * groups
    if groups < 1 or input.shape[1] != c_in or weight.shape[0] % groups:
        return NotImplemented  # a channel mismatch: torch raises, and the doctor explains it
    size = []
    for i in range(dims):
        k, n, s, p, d = weight.shape[2 + i], input.shape[2 + i], stride[i], padding[i], dilation[i]
        if transposed:
            out = (n - 1) * s - 2 * p + d * (k - 1) + output_padding[i] + 1
        else:
            out = (n + 2 * p - d * (k - 1) - 1) // s + 1
        if out <= 0:
            return NotImplemented  # torch raises: let it say why
        size.append(out)
    channels = weight.shape[1] * groups if transposed else weight.shape[0]
    return torch.empty((input.shape[0], channels, *size), dtype=input.dtype, device=input.device)


KERNELS[aten.convolution.default] = _convolution
KERNELS[aten.mm.default] = _mm
KERNELS[aten.addmm.default] = _addmm
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
