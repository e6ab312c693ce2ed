"""`solve_padding` / `solve_output_padding` against a brute-force search over the real PyTorch layer.

The truth: run the real conv (transposed conv) for every padding (output_padding) in a wide range and
collect those giving the wanted size. Every option the solver offers is also checked on the real layer.
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from aelab.errors import UsageError
from aelab.explain.inverse import PaddingOption, solve_layer, solve_output_padding, solve_padding


def real_conv(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int | None:
    """The length nn.Conv1d gives, or None where PyTorch refuses (or gives an empty output)."""
    try:
        y = F.conv1d(torch.zeros(1, 1, size), torch.zeros(1, 1, kernel), stride=stride, padding=padding,
                     dilation=dilation)
    except RuntimeError:
        return None
    return y.shape[-1] or None


def real_conv_t(size: int, kernel: int, stride: int, padding: int, dilation: int,
                output_padding: int) -> int | None:
    """The length nn.ConvTranspose1d gives, or None where PyTorch refuses (or gives an empty output)."""
    try:
        y = F.conv_transpose1d(torch.zeros(1, 1, size), torch.zeros(1, 1, kernel), stride=stride,
                               padding=padding, output_padding=output_padding, dilation=dilation)
    except RuntimeError:
        return None
    return y.shape[-1] or None


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.integers(1, 7), st.integers(1, 4), st.integers(1, 3))
def test_solve_padding_matches_brute_force(size: int, want: int, kernel: int, stride: int,
                                           dilation: int) -> None:
    solution = solve_padding(size, want, kernel, stride, dilation)
    truth = {p for p in range(0, 2 * (size + want * stride + dilation * kernel))
             if real_conv(size, kernel, stride, p, dilation) == want}
    assert {o.padding for o in solution.exact} == truth
    for option in solution.exact + solution.nearest:
        assert real_conv(size, kernel, stride, option.padding, dilation) == option.size
    if not truth:
        assert solution.nearest and solution.note
        assert all(o.size != want for o in solution.nearest)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 12), st.integers(1, 50), st.integers(1, 5), st.integers(1, 4), st.integers(0, 3),
       st.integers(1, 3))
def test_solve_output_padding_matches_brute_force(size: int, want: int, kernel: int, stride: int,
                                                  padding: int, dilation: int) -> None:
    solution = solve_output_padding(size, want, kernel, stride, padding, dilation)
    truth = {op for op in range(0, 8) if real_conv_t(size, kernel, stride, padding, dilation, op) == want}
    assert {o.output_padding for o in solution.exact} == truth
    for option in solution.exact + solution.nearest:
        real = real_conv_t(size, kernel, stride, option.padding, dilation, option.output_padding)
        assert option.size == real
    if not truth:
        assert solution.note and solution.nearest
        others = {(p, op) for p in range(0, size * stride + dilation * kernel) for op in range(0, 8)
                  if real_conv_t(size, kernel, stride, p, dilation, op) == want}
        offered = {(o.padding, o.output_padding) for o in solution.nearest if o.size == want}
        assert offered <= others and bool(offered) == bool(others)


def test_seed_004_padding_keeps_28() -> None:
    (h, w) = solve_layer("conv2d", (1, 28, 28), 28, kernel_size=5)
    assert [o.padding for o in h.exact] == [2] == [o.padding for o in w.exact]
    assert h.exact[0].derivation.formula == "H_out = ⌊(28 + 2·2 − 1·(5 − 1) − 1) / 1⌋ + 1 = 28"


def test_even_kernel_has_no_symmetric_padding_and_the_advice_works() -> None:
    """Kernel 4 needs a total padding of 3: the note's F.pad(1 left, 2 right) and padding='same' give 28."""
    (s,) = solve_layer("conv1d", (1, 28), 28, kernel_size=4)
    assert not s.exact and "pad 1 left and 2 right" in s.note and "padding='same'" in s.note
    assert sorted(o.size for o in s.nearest) == [27, 29]
    x = torch.zeros(1, 1, 28)
    assert F.conv1d(F.pad(x, (1, 2)), torch.zeros(1, 1, 4)).shape[-1] == 28
    with warnings.catch_warnings():  # "even kernel needs a padded copy": true, and not our point
        warnings.simplefilter("ignore")
        assert torch.nn.Conv1d(1, 1, 4, padding="same")(x).shape[-1] == 28


def test_stride_rounds_down_so_several_paddings_work() -> None:
    s = solve_padding(28, 10, kernel=3, stride=3)
    assert [o.padding for o in s.exact] == [1, 2] and "paddings 1 and 2 both give 10" in s.note


def test_too_small_a_wanted_size_says_padding_cannot_shrink() -> None:
    s = solve_padding(28, 10, kernel=3)
    assert not s.exact and "padding only grows" in s.note and s.nearest[0].size == 26


def test_transposed_conv_output_padding_for_a_decoder() -> None:
    (h, _) = solve_layer("conv_transpose2d", (16, 7, 7), 14, kernel_size=3, stride=2, padding=1)
    assert [(o.padding, o.output_padding) for o in h.exact] == [(1, 1)]
    (s,) = solve_layer("conv_transpose1d", (16, 7), 14, kernel_size=3, stride=2)
    assert not s.exact and isinstance(s.nearest[0], PaddingOption)
    assert (s.nearest[0].padding, s.nearest[0].output_padding, s.nearest[0].size) == (1, 1, 14)


@pytest.mark.parametrize(("kind", "hyper", "words"), [
    ("maxpool2d", {"kernel_size": 2}, "has neither"),
    ("conv2d", {"kernel_size": 3, "padding": 1}, "leave padding out"),
    ("conv_transpose2d", {"kernel_size": 3, "output_padding": 1}, "leave output_padding out"),
    ("conv2d", {"kernel_size": 0}, "kernel_size must be at least 1"),
])
def test_solve_layer_refuses_bad_requests(kind: str, hyper: dict[str, int], words: str) -> None:
    with pytest.raises(UsageError, match=words):
        solve_layer(kind, (1, 8, 8), 8, **hyper)
