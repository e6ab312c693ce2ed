"""The shape-only meta kernels give what torch's meta kernels give (shape, dtype, strides, None-ness), on
every kind of case they accept, and decline the cases they do not model."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import torch

from aelab.trace import fastmeta
from aelab.trace.fastmeta import KERNELS

aten = torch.ops.aten


def _meta(shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.empty(shape, dtype=dtype, device="meta")


def _same(fast: Any, slow: Any) -> None:
    if isinstance(slow, (tuple, list)):
        assert isinstance(fast, (tuple, list)) and len(fast) == len(slow)
        for f, s in zip(fast, slow, strict=True):
            _same(f, s)
        return
    if slow is None:
        assert fast is None
        return
    assert (fast.shape, fast.dtype, fast.stride(), fast.device) == (slow.shape, slow.dtype, slow.stride(), slow.device)


SHAPES = [((4, 3, 5), (4, 3, 5)), ((4, 3, 5), (5,)), ((4, 1, 5), (3, 1)), ((2, 8, 6, 6), (8, 1, 1)), ((7,), ())]
DTYPES = [(torch.float32, torch.float32), (torch.bfloat16, torch.float32), (torch.float16, torch.float16),
          (torch.float64, torch.int64), (torch.int64, torch.float32)]
BINARY = [op for op in KERNELS if KERNELS[op] in (fastmeta._pointwise, fastmeta._pointwise_backward)
          and len(op._schema.arguments) >= 2 and op._schema.arguments[1].type.kind() == "TensorType"]
UNARY = [op for op in KERNELS if KERNELS[op] is fastmeta._pointwise and op not in BINARY]


@pytest.mark.parametrize("op", BINARY, ids=str)
def test_binary_pointwise_equals_torch(op: Any) -> None:
    extra = (0.0,) if op is aten.threshold_backward.default else ()
    for (sa, sb), (da, db) in itertools.product(SHAPES, DTYPES):
        a, b = _meta(sa, da), _meta(sb, db)
        fast = KERNELS[op](a, b, *extra)
        if fast is NotImplemented:
            assert not torch.result_type(a, b).is_floating_point or KERNELS[op] is fastmeta._pointwise_backward
            continue
        _same(fast, op(a, b, *extra))


@pytest.mark.parametrize("op", UNARY, ids=str)
def test_unary_and_scalar_pointwise_equals_torch(op: Any) -> None:
    for shape, dtype in itertools.product([(4, 3, 5), (2, 8, 6, 6), ()], [torch.float32, torch.bfloat16]):
        x = _meta(shape, dtype)
        args: tuple[Any, ...] = (x, 2) if len(op._schema.arguments) > 1 and "Scalar" in op._overloadname else (x,)
        if op is aten.pow.Tensor_Scalar:
            for exponent in (2, 0.5, -1):
                _same(fastmeta._pointwise(x, exponent), op(x, exponent))
            continue
        _same(fastmeta._pointwise(*args), op(*args))


def test_pointwise_declines_what_it_does_not_model() -> None:
    x = _meta((4, 6))
    assert fastmeta._pointwise(x.t(), x.t()) is NotImplemented  # strided operands: torch infers a layout
    assert fastmeta._pointwise(_meta((4,), torch.int64), _meta((4,), torch.int64)) is NotImplemented
    assert fastmeta._pointwise(x, torch.ones(())) is NotImplemented  # a CPU scalar tensor beside meta
    assert fastmeta._pointwise(_meta((4,), torch.int64)) is NotImplemented
    assert fastmeta._pointwise_backward(_meta((4,), torch.bfloat16), _meta((4,))) is NotImplemented


@pytest.mark.parametrize("op", [aten.mean.dim, aten.sum.dim_IntList], ids=str)
def test_reductions_equal_torch(op: Any) -> None:
    for shape, dim, keepdim, dtype, out_dtype in itertools.product(
            [(4, 3, 5), (2, 8, 6, 6), (7,)], [None, [], [-1], [0], [1, -1], 0, -1], [False, True],
            [torch.float32, torch.bfloat16, torch.int64], [None, torch.float32]):
        x = _meta(shape, dtype)
        if (isinstance(dim, list) and dim and max(dim) >= x.dim()) or (dim == [1, -1] and x.dim() < 3):
            continue
        kwargs = {"dtype": out_dtype} if out_dtype is not None else {}
        fast = fastmeta._reduce(x, dim, keepdim, **kwargs)
        if fast is NotImplemented:
            assert not dtype.is_floating_point and out_dtype is None
            continue
        _same(fast, op(x, dim, keepdim, **kwargs))


@pytest.mark.parametrize("shape", [(4, 3), (4, 3, 7), (2, 3, 5, 5), (2, 3, 2, 4, 4)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_batch_norm_forward_and_backward_equal_torch(shape: tuple[int, ...], dtype: torch.dtype) -> None:
    c = shape[1]
    x = _meta(shape, dtype)
    for training, affine, stats in itertools.product([True, False], [True, False], [True, False]):
        if not training and not stats:
            continue
        w = _meta((c,)) if affine else None
        b = _meta((c,)) if affine else None
        rm = _meta((c,)) if stats else None
        rv = _meta((c,)) if stats else None
        args = (x, w, b, rm, rv, training, 0.1, 1e-5)
        slow = aten.native_batch_norm.default(*args)
        _same(fastmeta._batch_norm(*args), slow)
        for mask in ([True, True, True], [True, False, False], [False, True, True]):
            bargs = (x.new_empty(shape), x, w, rm, rv, slow[1], slow[2], training, 1e-5, mask)
            _same(fastmeta._batch_norm_backward(*bargs), aten.native_batch_norm_backward.default(*bargs))


def test_batch_norm_declines_channels_last() -> None:
    x = _meta((2, 3, 4, 4)).contiguous(memory_format=torch.channels_last)
    assert fastmeta._batch_norm(x, None, None, None, None, True, 0.1, 1e-5) is NotImplemented


def test_run_falls_back_to_torch() -> None:
    x = _meta((4, 6)).t()
    _same(fastmeta.run(aten.add.Tensor, (x, x), {}), aten.add.Tensor(x, x))
    _same(fastmeta.run(aten.mm.default, (x, x.t()), {}), aten.mm.default(x, x.t()))
