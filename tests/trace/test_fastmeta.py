"""The shape-only meta kernels give what torch's meta kernels give (shape, dtype, strides, None-ness), on
every kind of case they accept, and decline the cases they do not model."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest
import torch

from aelab.trace import fastmeta, meta_layout
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
    assert fastmeta._pointwise(_meta((4,), torch.int64), _meta((4,), torch.int64)) is NotImplemented
    assert fastmeta._pointwise(x, torch.ones(())) is NotImplemented  # a CPU scalar tensor beside meta
    assert fastmeta._pointwise(_meta((4,), torch.int64)) is NotImplemented
    assert fastmeta._pointwise_backward(_meta((4,), torch.bfloat16), _meta((4,))) is NotImplemented


def _odd_view(rng: random.Random) -> torch.Tensor:
    """A random view: sliced from a larger tensor (size-1 dimensions keep odd strides), permuted, sometimes
    its first and last dimensions swapped, sometimes expanded."""
    shape = [rng.choice([1, 1, 2, 3, 4]) for _ in range(rng.randint(2, 4))]
    x = _meta(tuple(n * rng.choice([1, 2]) for n in shape))
    x = x[tuple(slice(rng.randint(0, x.shape[d] - n), None) for d, n in enumerate(shape))]
    x = x[tuple(slice(0, n) for n in shape)].permute(rng.sample(range(len(shape)), len(shape)))
    if rng.random() < 0.3:
        x = x.transpose(0, -1)
    if rng.random() < 0.3:
        x = x.expand([n if n > 1 else rng.choice([1, 3]) for n in x.shape])
    return x


def test_strides_of_odd_views_equal_torch() -> None:
    # one operand (torch takes a non-dense one's strides from `empty_like`), two of one shape, and one
    # broadcast against a contiguous bias or a size-1-batch tensor; a fixed seed, each case against torch.
    # Only a broadcast beside a size-1 dimension with an odd stride may be declined.
    rng = random.Random(0)
    for _ in range(800):
        a = _odd_view(rng)
        _same(fastmeta._pointwise(a, 0.5), aten.mul.Tensor(a, 0.5))
        for b in (_odd_view(rng), _meta(tuple(a.shape[-1:])), _meta((1, *a.shape[1:]))):
            try:
                if tuple(torch.broadcast_shapes(a.shape, b.shape)) != tuple(a.shape):
                    continue
            except RuntimeError:
                continue
            for args in ((a, b), (b, a)):
                fast = fastmeta._pointwise(*args)
                if fast is NotImplemented:  # declined: a broadcast beside a size-1 dimension's odd stride
                    assert a.shape != b.shape and not all(map(meta_layout.plain_unit_dims, args))
                    continue
                _same(fast, aten.add.Tensor(*args))


@pytest.mark.parametrize("op", [aten.normal_.default, aten.uniform_.default, aten.exponential_.default,
                                aten.bernoulli_.float], ids=str)
def test_random_fills_return_their_argument(op: Any) -> None:
    x = _meta((3, 4)).t()
    assert KERNELS[op](x) is x
    _same(KERNELS[op](x), op(x))
    assert KERNELS[op](_meta((3,), torch.int64)) is NotImplemented


@pytest.mark.parametrize("op", [aten.mean.dim, aten.sum.dim_IntList], ids=str)
def test_reductions_equal_torch(op: Any) -> None:
    for shape, dim, keepdim, dtype, out_dtype in itertools.product(
            [(4, 3, 5), (2, 8, 6, 6), (7,)], [None, [], [-1], [0], [1, -1], 0, -1], [False, True],
            [torch.float32, torch.bfloat16, torch.int64], [None, torch.float32]):
        x = _meta(shape, dtype)
        if x.dim() >= 2 and keepdim:  # the same reductions of a transposed and of an expanded tensor
            x = x.transpose(0, -1) if out_dtype is None else x[:1].expand(x.shape)
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
    # Cases the shape-only kernels decline (integer add, mixed-dtype mm, mismatched mm): `run` must give
    # torch's own result, and torch's own error where torch raises (mismatched mm).
    ints = _meta((4, 6), torch.int64)
    assert KERNELS[aten.add.Tensor](ints, ints) is NotImplemented
    _same(fastmeta.run(aten.add.Tensor, (ints, ints), {}), aten.add.Tensor(ints, ints))
    a, b = _meta((4, 6)), _meta((6, 3), torch.float64)
    assert KERNELS[aten.mm.default](a, b) is NotImplemented
    _same(fastmeta.run(aten.mm.default, (a, b), {}), aten.mm.default(a, b))
    c = _meta((5, 3))
    assert KERNELS[aten.mm.default](a, c) is NotImplemented
    with pytest.raises(RuntimeError, match="same reduction dim"):  # torch's meta kernel's words
        fastmeta.run(aten.mm.default, (a, c), {})


def _views(x: torch.Tensor) -> list[torch.Tensor]:
    """A tensor and views of it that kernels meet: a slice, an expanded size-1 dim, a transpose, a narrow."""
    views = [x, x[..., : max(x.shape[-1] // 2, 1)], x.narrow(0, 0, 1)]
    if x.dim() >= 2:
        t = x.transpose(0, 1)
        views += [x.transpose(-1, -2), x[:, :1].expand(x.shape), t, t[..., :2], t[:, :1]]
    if x.dim() >= 3:  # a batch of 1, transposed (attention heads)
        views += [x[:1].transpose(1, 2), x[:1].transpose(1, 2)[..., :2]]
    if x.dim() == 4:
        views += [x.contiguous(memory_format=torch.channels_last), x.permute(0, 2, 3, 1)]
    return views


@pytest.mark.parametrize("op", [aten.neg.default, aten.mul.Tensor, aten.add.Tensor], ids=str)
def test_pointwise_on_views_equals_torch(op: Any) -> None:
    for shape in [(4, 3, 6), (2, 4, 6, 8)]:
        for a in _views(_meta(shape)):
            partners = [v for v in _views(_meta(a.shape)) if v.shape == a.shape]
            for b in [a, _meta(a.shape), _meta(a.shape[-1:]), _meta((1, *a.shape[1:])), *partners]:
                args = (a,) if op is aten.neg.default else (a, b)
                fast = fastmeta._pointwise(*args)
                if fast is NotImplemented:
                    assert len(args) == 1 or any(1 in t.shape for t in args)  # the declined cases
                    continue
                _same(fast, op(*args))


def test_where_tril_softmax_cat_equal_torch() -> None:
    for shape in [(4, 6), (2, 3, 5, 5)]:
        x = _meta(shape)
        cond = _meta(shape[-2:], torch.bool)
        for a, b in [(x, x), (x, _meta(shape[-1:])), (x, _meta((), torch.float64)), (x, _meta(shape, torch.bfloat16))]:
            _same(fastmeta._where(cond, a, b), aten.where.self(cond, a, b))
        for op in (aten.tril.default, aten.triu.default):
            _same(fastmeta._like(x), op(x))
            _same(fastmeta._like(x, 1), op(x, 1))
        for dtype in (torch.float32, torch.bfloat16):
            y = _meta(shape, dtype)
            _same(fastmeta._softmax(y, -1, False), aten._softmax.default(y, -1, False))
            half = dtype == torch.bfloat16
            _same(fastmeta._softmax(y, -1, half), aten._softmax.default(y, -1, half))
            _same(fastmeta._softmax(y, 1), aten._safe_softmax.default(y, 1))
            _same(fastmeta._softmax(y, 1, dtype=torch.float32), aten._safe_softmax.default(y, 1, dtype=torch.float32))
        for dim in (0, -1):
            parts = [x, _views(x)[1] if dim == -1 else x.narrow(0, 0, 1)]
            _same(fastmeta._cat(parts, dim), aten.cat.default(parts, dim))
    assert fastmeta._cat([_meta((2, 3)), _meta((2, 3), torch.bfloat16)], 0) is NotImplemented
    assert fastmeta._cat([_meta((2, 3)).t(), _meta((3, 2))], 0) is NotImplemented


def test_mm_and_addmm_equal_torch() -> None:
    for dtype in (torch.float32, torch.bfloat16):
        a, b = _meta((5, 4), dtype), _meta((4, 3), dtype)
        for x, y in [(a, b), (a, b.t().contiguous().t()), (a.t().contiguous().t(), b)]:
            _same(fastmeta._mm(x, y), aten.mm.default(x, y))
            for bias in (_meta((3,), dtype), _meta((1,), dtype)):
                _same(fastmeta._addmm(bias, x, y), aten.addmm.default(bias, x, y))
                _same(fastmeta._addmm(bias, x, y, beta=0.5, alpha=2), aten.addmm.default(bias, x, y, beta=0.5, alpha=2))
    a, b = _meta((5, 4)), _meta((4, 3))
    assert fastmeta._addmm(_meta((5, 3)), a, b) is NotImplemented
    assert fastmeta._mm(a, _meta((4, 3), torch.bfloat16)) is NotImplemented


def test_stack_equals_torch() -> None:
    for shape in [(), (3,), (2, 5)]:
        parts = [_meta(shape), _meta(shape)]
        for dim in range(-len(shape) - 1, len(shape) + 1):
            _same(fastmeta._stack(parts, dim), aten.stack.default(parts, dim))
    assert fastmeta._stack([_meta((2,)), _meta((3,))]) is NotImplemented


def test_filled_like_and_full_sum_equal_torch() -> None:
    for x in (_meta(()), _meta((3, 4)), _meta((2, 3), torch.bfloat16)):
        for op in (aten.ones_like.default, aten.zeros_like.default):
            _same(fastmeta._filled_like(x), op(x))
            _same(fastmeta._filled_like(x, dtype=torch.float64), op(x, dtype=torch.float64))
        _same(fastmeta._reduce(x), aten.sum.default(x))
        _same(fastmeta._reduce(x, dtype=torch.float64), aten.sum.default(x, dtype=torch.float64))
    assert fastmeta._filled_like(_meta((3, 4)).t()) is NotImplemented


CONVS = [  # (input, weight, stride, padding, dilation, transposed, output_padding, groups)
    ((2, 4, 50), (8, 4, 3), [1], [0], [1], False, [0], 1),
    ((2, 4, 50), (8, 2, 5), [2], [2], [3], False, [0], 2),
    ((1, 3, 32, 32), (16, 3, 7, 7), [2, 2], [3, 3], [1, 1], False, [0, 0], 1),
    ((2, 8, 9, 7), (8, 1, 3, 3), [1, 2], [1, 0], [2, 1], False, [0, 0], 8),
    ((2, 8, 5, 5), (8, 4, 4, 4), [2, 2], [1, 1], [1, 1], True, [1, 0], 1),
    ((2, 8, 5), (8, 2, 3), [3], [1], [2], True, [2], 2),
    ((1, 2, 4, 6, 6), (4, 2, 3, 3, 3), [1, 2, 2], [1, 1, 1], [1, 1, 1], False, [0, 0, 0], 1),
]


@pytest.mark.parametrize("case", CONVS)
def test_convolution_equals_torch(case: tuple[Any, ...]) -> None:
    x_shape, w_shape, *rest = case
    for bias in (None, _meta((w_shape[1] * rest[-1] if rest[3] else w_shape[0],))):
        args = (_meta(x_shape), _meta(w_shape), bias, *rest)
        _same(fastmeta._convolution(*args), aten.convolution.default(*args))
    strided = _meta(x_shape).transpose(0, 1).contiguous().transpose(0, 1)  # a batch-major layout torch keeps
    if x_shape[0] > 1:
        assert fastmeta._convolution(strided, _meta(w_shape), None, *rest) is NotImplemented


MISMATCHES = [
    ("conv2d channels", lambda: fastmeta._convolution(_meta((2, 16, 8, 8)), _meta((32, 8, 3, 3)), None, [1, 1],
                                                      [0, 0], [1, 1], False, [0, 0], 1)),
    ("conv_transpose channels", lambda: fastmeta._convolution(_meta((2, 4, 8, 8)), _meta((8, 3, 3, 3)), None,
                                                              [1, 1], [0, 0], [1, 1], True, [0, 0], 1)),
    ("grouped conv", lambda: fastmeta._convolution(_meta((2, 6, 8)), _meta((4, 3, 3)), None, [1], [0], [1],
                                                   False, [0], 3)),
    ("batch norm features", lambda: fastmeta._batch_norm(_meta((2, 16, 4)), _meta((8,)), _meta((8,)), None, None,
                                                         True, 0.1, 1e-5)),
    ("broadcast", lambda: fastmeta._pointwise(_meta((2, 3)), _meta((2, 4)))),
]


@pytest.mark.parametrize("case", MISMATCHES, ids=[m[0] for m in MISMATCHES])
def test_a_shape_mismatch_is_left_to_torch_so_its_message_reaches_the_doctor(case: Any) -> None:
    # The doctor explains torch's own error: a shape-only kernel that accepted a wrong shape would hide it.
    assert case[1]() is NotImplemented


def test_the_doctor_still_sees_a_wrong_conv_channel_count_on_meta() -> None:
    from torch import nn

    import aelab

    model = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.Conv2d(8, 32, 3)).to("meta")
    diagnosis = aelab.diagnose(model, (2, 1, 28, 28))
    assert diagnosis.findings and diagnosis.findings[0].layer == "1"


def test_expanded_strides_are_expands() -> None:
    # a new size-1 dimension takes the next one's size times stride (it decides where torch sorts it)
    rng = random.Random(0)
    for _ in range(500):
        src = [rng.choice([1, 2, 3]) for _ in range(rng.randint(0, 3))]
        t = _meta(tuple(src)).permute(rng.sample(range(len(src)), len(src)))
        shape = [rng.choice([1, 2]) for _ in range(rng.randint(0, 2))] + [n if n > 1 else rng.choice([1, 3])
                                                                         for n in t.shape]
        if shape:
            assert meta_layout.expanded_strides(t, torch.Size(shape)) == list(t.expand(shape).stride())


def test_contiguous_operands_broadcast_to_the_strides_torch_gives() -> None:
    """The fast path of contiguous operands (any rank but 4, size-1 dimensions included) against torch."""
    rng = random.Random(7)
    for _ in range(300):
        ndim = rng.choice([1, 2, 3, 5])
        shape = tuple(rng.choice([1, 1, 2, 3, 5]) for _ in range(ndim))
        other = tuple(d if rng.random() < 0.6 else 1 for d in shape)[rng.randrange(ndim + 1):]
        a, b = _meta(shape), _meta(other)
        _same(fastmeta._pointwise(a, b), aten.add.Tensor(a, b))
        _same(fastmeta._pointwise(b, a), aten.add.Tensor(b, a))
        _same(fastmeta._pointwise(a), aten.tanh.default(a))


def _cases() -> dict[Any, tuple[Any, ...]]:
    """One case each kernel accepts on meta, by kernel (aten op, arguments)."""
    x, w, c = _meta((2, 3, 4, 4)), _meta((5, 3, 3, 3)), _meta((3,))
    m = _meta((4, 6))
    return {
        fastmeta._pointwise: (aten.add.Tensor, (m, m)),
        fastmeta._pointwise_backward: (aten.threshold_backward.default, (m, m, 0)),
        fastmeta._stack: (aten.stack.default, ([m, m],)),
        fastmeta._filled: (aten.normal_.default, (m,)),
        fastmeta._filled_like: (aten.ones_like.default, (m,)),
        fastmeta._reduce: (aten.sum.default, (m,)),
        fastmeta._where: (aten.where.self, (_meta((4, 6), torch.bool), m, m)),
        fastmeta._like: (aten.tril.default, (m,)),
        fastmeta._softmax: (aten._softmax.default, (m, -1, False)),
        fastmeta._cat: (aten.cat.default, ([m, m],)),
        fastmeta._batch_norm: (aten.native_batch_norm.default, (x, c, c, c, c, True, 0.1, 1e-5)),
        fastmeta._batch_norm_backward: (aten.native_batch_norm_backward.default,
                                        (x, x, c, c, c, c, c, True, 1e-5, [True, True, True])),
        fastmeta._mm: (aten.mm.default, (m, _meta((6, 2)))),
        fastmeta._addmm: (aten.addmm.default, (_meta((2,)), m, _meta((6, 2)))),
        fastmeta._convolution: (aten.convolution.default, (x, w, None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1)),
        fastmeta._pointwise_inplace: (aten.add_.Tensor, (_meta((4, 6)), m)),
        fastmeta._empty: (aten.empty.memory_format, ([4, 6], torch.device("meta"))),  # device: a keyword, below
    }


def test_every_kernel_declines_real_tensors_whose_values_a_program_reads() -> None:
    # A meta run meets real CPU tensors the program makes (`torch.ones(1) * n`, a counter): a shape-only
    # kernel would hand back uninitialised memory as their value, so each leaves them to torch's kernel.
    cases = _cases()
    assert set(cases) == set(KERNELS.values())
    for kernel, (op, args) in cases.items():
        kwargs: dict[str, Any] = {}
        if op is aten.empty.memory_format:  # a factory: its device is the keyword argument
            args, kwargs = args[:1], {"device": args[1]}
        assert kernel(*args, **kwargs) is not NotImplemented, op
        real = [torch.utils._pytree.tree_map(lambda t: torch.zeros_like(t, device="cpu")
                                             if isinstance(t, torch.Tensor) else t, a) for a in args]
        real_kwargs = {k: torch.device("cpu") if isinstance(v, torch.device) else v for k, v in kwargs.items()}
        assert kernel(*real, **real_kwargs) is NotImplemented, op
        _same(fastmeta.run(op, tuple(real), real_kwargs), op(*real, **real_kwargs))


def test_broadcast_equals_torch_broadcast_shapes() -> None:
    # two and three shapes of rank 0-4, sizes 1-3, a fixed seed: the same shape, or None where torch raises
    rng = random.Random(7)
    for _ in range(2000):
        shapes = [torch.Size(rng.choice((1, 2, 3)) for _ in range(rng.randrange(5))) for _ in range(rng.choice((2, 3)))]
        try:
            expected: Any = tuple(torch.broadcast_shapes(*shapes))
        except RuntimeError:
            expected = None
        assert meta_layout.broadcast(shapes) == expected, shapes


INPLACE = [op for op in KERNELS if KERNELS[op] is fastmeta._pointwise_inplace]


@pytest.mark.parametrize("op", INPLACE, ids=str)
def test_inplace_pointwise_returns_its_argument_where_torch_accepts_it(op: Any) -> None:
    # every pairing of a target and an operand (tensors of five dtypes and three shapes, scalars, an expanded
    # target, alphas): torch's meta kernel is the truth; where it raises, the kernel declines
    scalar_op = op._schema.arguments[1].type.kind() != "TensorType"
    targets = [_meta(s, d) for s in [(4, 3), (3,), ()] for d in (torch.float32, torch.float16, torch.int64,
                                                                 torch.bool, torch.float64)]
    targets.append(_meta((1, 3)).expand(4, 3))
    others: list[Any] = [1, 2.5, True, 1j] if scalar_op else [_meta(s, d) for s in [(4, 3), (3,), (), (5,)]
                                                              for d in (torch.float32, torch.int64, torch.float64)]
    alphas: list[dict[str, Any]] = [{}] + ([{"alpha": 2}, {"alpha": 0.5}, {"alpha": True}]
                                           if "alpha" in str(op._schema) else [])
    accepted = 0
    for target, other, kw in itertools.product(targets, others, alphas):
        fast = fastmeta._pointwise_inplace(target, other, **kw)
        try:
            slow = op(target, other, **kw)
        except (RuntimeError, TypeError):
            assert fast is NotImplemented, (target.dtype, target.shape, other, kw)
            continue
        if fast is not NotImplemented:
            accepted += 1
            assert fast is target and slow is target
    assert accepted >= 5


def test_empty_equals_torch() -> None:
    for size, dtype in itertools.product([[0], [2, 3], [1, 4, 5], []], [None, torch.uint8, torch.bfloat16]):
        fast = KERNELS[aten.empty.memory_format](size, dtype=dtype, device=torch.device("meta"))
        _same(fast, aten.empty.memory_format(size, dtype=dtype, device=torch.device("meta")))
    assert KERNELS[aten.empty.memory_format]([2], device=torch.device("cpu")) is NotImplemented
    assert KERNELS[aten.empty.memory_format]([2], device="meta", memory_format=torch.channels_last) is NotImplemented
