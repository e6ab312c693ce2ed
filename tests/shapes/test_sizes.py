"""shapes/: the one copy of the size arithmetic and of the shape notation, against PyTorch and each room's form."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from aelab.shapes.notation import batch_shape, compact_shape, shape_text, times
from aelab.shapes.sizes import DIM_NAMES, conv_out, dim_words, exact_output_padding, transposed_out


@pytest.mark.parametrize(("size", "k", "s", "p", "d"), [(28, 3, 2, 1, 1), (33, 5, 3, 2, 2), (7, 1, 1, 0, 1)])
def test_sizes_equal_pytorch(size: int, k: int, s: int, p: int, d: int) -> None:
    y = nn.Conv1d(1, 1, k, s, p, d)(torch.zeros(1, 1, size))
    assert conv_out(size, k, s, p, d) == y.shape[-1]
    op = exact_output_padding(y.shape[-1], size, k, s, p, d)
    back = nn.ConvTranspose1d(1, 1, k, s, p, output_padding=op, dilation=d)(y)
    assert back.shape[-1] == size == transposed_out(y.shape[-1], k, s, p, d, op)


def test_no_output_padding_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="no output_padding"):
        exact_output_padding(4, 20, 3, 2, 1)


def test_dim_names_and_words() -> None:
    assert DIM_NAMES[2] == ("H", "W") and dim_words(2) == ("height", "width") and dim_words(1) == ("length",)


def test_each_room_keeps_its_form() -> None:
    assert shape_text((4, 16, 28, 28)) == "(4, 16, 28, 28)"
    assert shape_text((4, 16, 28, 28), 4) == "(N, 16, 28, 28)"
    assert shape_text((50,), 4, python=True) == "(50,)" and shape_text((50,)) == "(50)"
    assert shape_text((4,), 4) == "(4)"  # rank 1: the batch is not marked unless asked anywhere
    assert batch_shape((50, 4, 201), 4) == "(50, N, 201)"
    assert shape_text(("N", 1, 28, 28)) == "(N, 1, 28, 28)"
    assert compact_shape((1, 28, 28)) == "1×28×28" and compact_shape(()) == "scalar"
    assert times((16, 28, 28)) == "16 × 28 × 28"
