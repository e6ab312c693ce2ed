"""Sizes the real CPU kernels give where the fake/meta kernels differ: each one measured or derived here."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import torch
from torch._subclasses.fake_tensor import unset_fake_temporarily

#: above this (estimated from batches 1 and 2) the workspace is extrapolated instead of measured
MEASURE_LIMIT = 1 << 30


@functools.lru_cache(maxsize=256)
def _measured_mkldnn_workspace(shapes: tuple[Any, ...], dtype: torch.dtype) -> tuple[int, bool]:
    """(nbytes, measured) of the workspace `aten.mkldnn_rnn_layer` returns on CPU for these argument
    shapes: the real kernel runs once on zeros (its size is page-aligned per part, not affine in the
    batch); a workspace estimated above `MEASURE_LIMIT` from batches 1 and 2 is extrapolated instead."""
    (inp, w0, w1, w2, w3, hx, cx), rest = shapes[:7], shapes[7:]
    batch = hx[0]
    batch_dim = 1 if inp[1] == batch else 0

    def run(b: int) -> int:
        def z(shape: tuple[int, ...], bdim: int | None) -> torch.Tensor:
            s = list(shape)
            if bdim is not None:
                s[bdim] = b
            return torch.zeros(s, dtype=dtype)

        with unset_fake_temporarily():
            t = [z(inp, batch_dim), z(w0, None), z(w1, None), z(w2, None), z(w3, None), z(hx, 0), z(cx, 0)]
            out = torch.ops.aten.mkldnn_rnn_layer(*t, *(list(x) if isinstance(x, tuple) else x for x in rest))
            return int(out[3].untyped_storage().nbytes())

    one, two = run(1), run(2)
    estimate = one + (two - one) * (batch - 1)
    if estimate > MEASURE_LIMIT:
        return estimate, False
    return run(batch), True


def real_mkldnn_workspace(args: Sequence[Any]) -> tuple[int, bool]:
    shapes: list[Any] = []
    for a in args[:7]:
        shapes.append(tuple(int(d) for d in a.shape) if isinstance(a, torch.Tensor) else None)
    rest = tuple(tuple(x) if isinstance(x, list) else x for x in args[7:])
    return _measured_mkldnn_workspace((*shapes, *rest), args[0].dtype)


#: normalisation ops whose saved statistics FakeTensor types wrongly -> index of their weight argument
NORM_WEIGHT: dict[str, int] = {"native_batch_norm": 1, "native_layer_norm": 2}


