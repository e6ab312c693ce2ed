"""Shapes and strides on plain ints, as torch's meta kernels compute them (`aelab.trace.fastmeta` builds on these):
a broadcast, the output strides of an elementwise op, what counts as row-major or dense. torch computes the
same through symbolic-shape guards in Python, at several times the cost."""

from __future__ import annotations

import functools

import torch


def broadcast(shapes: list[torch.Size]) -> tuple[int, ...] | None:
    """The broadcast of `shapes` on plain ints (`torch.broadcast_shapes` is ~10 us of Python); None when they
    do not broadcast (torch's kernel then raises with the message the doctor reads)."""
    ndim = max(len(s) for s in shapes)
    out = [1] * ndim
    for shape in shapes:
        lead = ndim - len(shape)
        for i, size in enumerate(shape):
            have = out[lead + i]
            if size != have:
                if have == 1:
                    out[lead + i] = size
                elif size != 1:
                    return None
    return tuple(out)


def row_major(t: torch.Tensor) -> bool:
    """Strides that do not increase from the outer to the inner dimensions (sizes 1 and broadcast strides 0
    ignored): a contiguous tensor, a slice of one, an expanded one; torch lays their results out contiguously."""
    last = None
    for size, stride in zip(t.shape, t.stride(), strict=True):
        if size == 1 or stride == 0:
            continue
        if last is not None and stride > last:
            return False
        last = stride
    return True


def dense(t: torch.Tensor) -> bool:
    """Non-overlapping and dense: the strides, sorted, are those of some permutation of a contiguous tensor."""
    expected = 1
    for stride, size in sorted((st, sz) for sz, st in zip(t.shape, t.stride(), strict=True) if sz != 1):
        if stride != expected:
            return False
        expected *= size
    return True


def expanded_strides(t: torch.Tensor, shape: torch.Size) -> list[int]:
    """`t`'s strides once broadcast to `shape`, as `expand` gives them (ATen's `inferExpandGeometry`): 0 on
    stretched dimensions; a new size-1 dimension takes the next one's size times stride."""
    lead = len(shape) - t.dim()
    out = [0] * len(shape)
    for i in reversed(range(len(shape))):
        d = i - lead
        if d >= 0:
            size, stride = t.shape[d], t.stride()[d]
        else:
            size, stride = 1, (shape[i + 1] * out[i + 1] if i + 1 < len(shape) else 0)
        out[i] = 0 if size != shape[i] else stride
    return out


def elementwise_strides(tensors: list[torch.Tensor], shape: torch.Size) -> tuple[int, ...] | None:
    """The output strides of `torch._prims_common.compute_elementwise_output_strides` for operands broadcast
    to `shape`, computed on plain ints (torch's runs through symbolic-shape guards). One dense operand keeps
    its strides; otherwise (one non-dense operand too: torch takes `empty_like`'s, which order the dimensions
    the same way) the dimensions are sorted by the operands' strides as torch sorts them. None for a size-1
    dimension with an unusual stride in a broadcast, where torch's answer depends on more than this."""
    ndim = len(shape)
    if ndim == 0:
        return ()
    if ndim == 1:
        return (1,)
    if ndim != 4 and all(t.is_contiguous() and tuple(t.stride()) == contiguous_strides(t.shape) for t in tensors):
        return contiguous_strides(shape)  # the common case, what the general path below gives it, sooner
    plain = all(plain_unit_dims(t) for t in tensors)
    if not plain and any(tuple(t.shape) != tuple(shape) for t in tensors):
        return None
    if len(tensors) == 1 and tuple(tensors[0].shape) == tuple(shape) and plain and dense(tensors[0]):
        return tuple(tensors[0].stride())
    contiguous = all(t.is_contiguous() for t in tensors)
    channels_last = ndim == 4 and all(t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last)
                                      for t in tensors)
    if contiguous and not channels_last:
        perm = list(range(ndim))
    elif channels_last and not contiguous:
        perm = [0, *range(2, ndim), 1]
    else:
        strides = [expanded_strides(t, shape) for t in tensors]

        def ge(a: int, b: int) -> bool:
            return True if b == 0 else False if a == 0 else (a >= b or a % b == 0)

        def should_swap(a: int, b: int) -> int:
            for st in strides:
                sa, sb = st[a], st[b]
                if sa == 0 or sb == 0:
                    continue
                if sa == sb:
                    if ge(shape[b], shape[a]):
                        continue
                    return 1
                if ge(sb, sa):
                    return -1
                if ge(sa, sb):
                    return 1
            return 0

        order = list(reversed(range(ndim)))
        for i in range(1, ndim):
            dim1 = i
            for dim0 in reversed(range(i)):
                comparison = should_swap(order[dim0], order[dim1])
                if comparison > 0:
                    order[dim0], order[dim1] = order[dim1], order[dim0]
                    dim1 = dim0
                elif comparison < 0:
                    break
        perm = list(reversed(order))
    out = [0] * ndim
    multiplier = 1
    for d in reversed(perm):
        out[d] = multiplier
        multiplier *= max(shape[d], 1)
    return tuple(out)


def plain_unit_dims(t: torch.Tensor) -> bool:
    """Size-1 dimensions only where their stride is the one a dense layout gives them: anywhere in a
    contiguous tensor, or leading with the whole extent as stride (a batch of 1 of a transposed tensor)."""
    if 1 not in t.shape or (t.is_contiguous() and all(
            st == ex for st, ex in zip(t.stride(), contiguous_strides(t.shape), strict=True))):
        return True
    extent = max((st * sz for sz, st in zip(t.shape, t.stride(), strict=True) if sz != 1), default=1)
    leading = True
    for size, stride in zip(t.shape, t.stride(), strict=True):
        if size != 1:
            leading = False
        elif not leading or stride != extent:
            return False
    return True


@functools.lru_cache(maxsize=4096)
def contiguous_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    out = []
    multiplier = 1
    for size in reversed(shape):
        out.append(multiplier)
        multiplier *= max(size, 1)
    return tuple(reversed(out))
