"""The explained sizes, parameters and FLOPs against the real PyTorch layer on random hyper-parameters.

For every draw, either both the real layer and `explain_layer` refuse it, or both accept it and agree on
the output shape; params equal sum(p.numel()) of the real layer, FLOPs equal FlopCounterMode's.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from aelab.errors import UsageError
from aelab.explain.layers import (
    LAYER_KINDS,
    LayerExplanation,
    explain_layer,
    explain_module,
    kind_of_module,
    resolve_kind,
)
from aelab.shapes.formulas import conv_size

# kernel 0 makes zero-element weights and padding='same' with even kernels warns: both are draws, not bugs
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MAX_SIZE = {1: 30, 2: 14, 3: 7}


def run_real(module: nn.Module, shape: tuple[int, ...]) -> tuple[tuple[int, ...], int] | None:
    """(one sample's output shape, FlopCounterMode's count) of the real layer on batch 1; None if refused."""
    x = torch.zeros(1, *shape)
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            out = module(x)
    except (RuntimeError, ValueError, IndexError):
        return None
    out = out[0] if isinstance(out, tuple) else out
    if out.numel() == 0:  # a transposed conv giving size 0: PyTorch allows it, explain refuses it on purpose
        return None
    return tuple(out.shape[1:]), counter.get_total_flops()


def build(cls: type[nn.Module], *args: Any, **kwargs: Any) -> nn.Module | None:
    """The real module, or None where its constructor refuses the hyper-parameters."""
    try:
        return cls(*args, **kwargs)
    except (RuntimeError, ValueError):
        return None


def agree(module: nn.Module | None, shape: tuple[int, ...], kind: str, hyper: dict[str, Any],
          count_flops: bool = True) -> LayerExplanation | None:
    """Assert PyTorch and explain_layer agree on this layer; return the explanation when both accept it."""
    real = None if module is None else run_real(module, shape)
    try:
        ours = explain_layer(kind, shape, **hyper)
    except UsageError as exc:
        assert real is None, f"explain refused ({exc}) but PyTorch gives {real}"
        event("both refuse")
        return None
    event("both accept")
    assert real is not None, f"explain gives {ours.output_shape} but PyTorch refuses {kind} {shape} {hyper}"
    assert module is not None
    assert ours.output_shape == real[0]
    assert ours.params == sum(p.numel() for p in module.parameters())
    if count_flops:
        assert ours.flops == real[1]
    for d in ours.derivations:
        assert d.formula.endswith(f"= {d.value}")
    return ours


@st.composite
def conv_case(draw: st.DrawFn, transposed: bool) -> tuple[int, tuple[int, ...], dict[str, Any]]:
    n = draw(st.integers(1, 3))
    per = st.lists(st.integers(1, 5), min_size=n, max_size=n).map(tuple)
    sizes = tuple(draw(st.lists(st.integers(1, MAX_SIZE[n]), min_size=n, max_size=n)))
    groups = draw(st.sampled_from([1, 1, 2]))
    hyper: dict[str, Any] = {
        "out_channels": groups * draw(st.integers(1, 2)) + draw(st.sampled_from([0, 0, 0, 1])),
        "kernel_size": draw(per | st.integers(0, 5)),
        "stride": draw(st.sampled_from([1, 1, 2, 3]) if not transposed else st.integers(1, 3)),
        "dilation": draw(st.integers(1, 3)),
        "padding": draw(st.integers(0, 3) if transposed else st.sampled_from([0, 1, 2, 3, "same", "valid"])),
        "groups": groups,
        "bias": draw(st.booleans()),
    }
    if transposed:
        hyper["output_padding"] = draw(st.integers(0, 2))
    c_in = groups * draw(st.integers(1, 2)) + draw(st.sampled_from([0, 0, 0, 1]))
    return n, (c_in, *sizes), hyper


@SETTINGS
@given(conv_case(transposed=False))
def test_conv_matches_pytorch(case: tuple[int, tuple[int, ...], dict[str, Any]]) -> None:
    n, shape, h = case
    module = build(getattr(nn, f"Conv{n}d"), shape[0], **h)
    agree(module, shape, f"conv{n}d", h)


@SETTINGS
@given(conv_case(transposed=True))
def test_conv_transpose_matches_pytorch(case: tuple[int, tuple[int, ...], dict[str, Any]]) -> None:
    n, shape, h = case
    module = build(getattr(nn, f"ConvTranspose{n}d"), shape[0], **h)
    agree(module, shape, f"conv_transpose{n}d", h)


@SETTINGS
@given(st.data())
def test_pooling_matches_pytorch(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 3))
    is_max = data.draw(st.booleans())
    sizes = tuple(data.draw(st.lists(st.integers(1, MAX_SIZE[n] + 4), min_size=n, max_size=n)))
    h: dict[str, Any] = {
        "kernel_size": data.draw(st.integers(1, 5) | st.lists(st.integers(1, 4), min_size=n, max_size=n)),
        "stride": data.draw(st.none() | st.integers(1, 4)),
        "padding": data.draw(st.integers(0, 2)),
        "ceil_mode": data.draw(st.booleans()),
    }
    if is_max:
        h["dilation"] = data.draw(st.integers(1, 3))
    cls = getattr(nn, f"{'Max' if is_max else 'Avg'}Pool{n}d")
    shape = (data.draw(st.integers(1, 2)), *sizes)
    ours = agree(build(cls, **h), shape, f"{'max' if is_max else 'avg'}pool{n}d", h, count_flops=False)
    if ours is not None:  # FlopCounterMode counts pooling as 0; so do we, and the formula says so
        assert ours.flops == 0 and "not counted" in ours.flops_formula


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 4), max_size=2), st.integers(1, 40), st.integers(1, 40), st.booleans())
def test_linear_matches_pytorch(rows: list[int], f_in: int, f_out: int, bias: bool) -> None:
    h = {"in_features": f_in, "out_features": f_out, "bias": bias}
    ours = agree(nn.Linear(f_in, f_out, bias=bias), (*rows, f_in), "linear", h)
    assert ours is not None
    assert ours.weight_shape == (f_out, f_in) and ours.equation.startswith("y = x Wᵀ")


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 5), min_size=1, max_size=4), st.integers(-4, 3), st.integers(-4, 3))
def test_flatten_matches_pytorch(shape: list[int], start: int, end: int) -> None:
    full = len(shape) + 1
    if all(-full <= v < full for v in (start, end)) and start % full == 0:
        with pytest.raises(UsageError, match="batch"):  # flattening the batch away: not one sample's shape
            explain_layer("flatten", tuple(shape), start_dim=start, end_dim=end)
        return
    ours = agree(nn.Flatten(start, end), tuple(shape), "flatten", {"start_dim": start, "end_dim": end})
    if ours is not None:
        (d,) = ours.derivations
        assert d.value in ours.output_shape
        assert d.value == math.prod(int(v) for v in d.short.split(" × "))


def test_seed_004_numbers() -> None:
    """The seed's worked example, derived by hand: (28 + 4 − 4 − 1) / 1 + 1 = 28; 16·28·28 = 12544."""
    conv = explain_layer("conv2d", (1, 28, 28), out_channels=16, kernel_size=5, padding=2)
    assert conv.derivations[0].formula == "H_out = ⌊(28 + 2·2 − 1·(5 − 1) − 1) / 1⌋ + 1 = 28"
    assert conv.output_shape == (16, 28, 28) and conv.weight_shape == (16, 1, 5, 5) and conv.params == 416
    flat = explain_layer("flatten", conv.output_shape)
    assert flat.output_shape == (12544,) and flat.derivations[0].formula == "features = 16 × 28 × 28 = 12544"
    lin = explain_layer("linear", flat.output_shape, out_features=10)
    assert lin.weight_shape == (10, 12544) and lin.params == 125450 and lin.flops == 2 * 12544 * 10


def test_short_form_for_the_shape_doctor() -> None:
    """'768 = 16 × 48, where 48 = 50 − 3 + 1' (seed 004's Conv1d(8, 16, 3) on length 50)."""
    d = conv_size(50, 3, dim="L")
    assert (d.value, d.short) == (48, "50 − 3 + 1")
    assert eval(d.short.replace("−", "-")) == 48  # the short form is arithmetic that evaluates to the value


MODULES = [
    nn.Conv1d(8, 16, 3), nn.Conv2d(3, 6, (3, 5), stride=(2, 1), padding=(1, 2), groups=3, bias=False),
    nn.Conv3d(2, 4, 3, dilation=2, padding="same"), nn.Conv2d(2, 3, 3, padding=1, padding_mode="reflect"),
    nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1),
    nn.ConvTranspose1d(2, 4, 4, stride=3, dilation=2, groups=2), nn.MaxPool2d(2),
    nn.MaxPool1d(3, 2, 1, ceil_mode=True), nn.AvgPool3d(2, stride=1), nn.AvgPool1d(3, ceil_mode=True),
    nn.Linear(12, 5), nn.Flatten(), nn.LazyLinear(7), nn.LazyConv2d(5, 3),
]
SHAPES = [(8, 50), (3, 9, 11), (2, 9, 8, 7), (2, 6, 6), (4, 7, 7), (2, 9), (3, 7, 7), (2, 10), (2, 4, 4, 4),
          (1, 8), (3, 12), (16, 28, 28), (4, 9), (3, 8, 8)]


@pytest.mark.parametrize("i", range(len(MODULES)), ids=[type(m).__name__ for m in MODULES])
def test_explain_module_reads_real_modules(i: int) -> None:
    module, shape = MODULES[i], SHAPES[i]
    ours = explain_module(module, shape)
    assert ours is not None
    real = run_real(module, shape)
    assert real is not None and ours.output_shape == real[0]
    assert ours.params == sum(p.numel() for p in module.parameters())
    if ours.kind.startswith(("conv", "linear")):
        assert ours.flops == real[1]
    if getattr(module, "padding_mode", "zeros") != "zeros":
        assert any("padding_mode" in note for note in ours.notes)


def test_explain_module_flags_overridden_forward() -> None:
    """A causal conv pads on the left in forward(): the nn.Conv1d formula is not its real output; say so."""

    class CausalConv1d(nn.Conv1d):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return super().forward(nn.functional.pad(x, (2, 0)))

    ours = explain_module(CausalConv1d(2, 2, 3), (2, 10))
    assert ours is not None and ours.output_shape == (2, 8)
    assert any("overrides forward()" in note for note in ours.notes)
    plain = explain_module(nn.Conv1d(2, 2, 3), (2, 10))
    assert plain is not None and plain.notes == ()


def test_explain_module_none_for_other_layers() -> None:
    assert explain_module(nn.ReLU(), (3,)) is None and kind_of_module(nn.BatchNorm1d(3)) is None


def test_registry_covers_each_kind_once() -> None:
    classes = [k.module_class for k in LAYER_KINDS.values()]
    assert len(set(classes)) == len(classes) == 14
    for kind in LAYER_KINDS.values():
        assert kind_of_module(kind.module_class.__new__(kind.module_class)) is kind


@pytest.mark.parametrize(("name", "shape", "expected"), [
    ("Conv2d", None, "conv2d"), ("nn.ConvTranspose3d", None, "conv_transpose3d"),
    ("max_pool1d", None, "maxpool1d"),
    ("deconv2d", None, "conv_transpose2d"), ("dense", None, "linear"), ("conv", (1, 28, 28), "conv2d"),
    ("avgpool", (3, 4, 4, 4), "avgpool3d"), ("conv_transpose", (3, 10), "conv_transpose1d"),
])
def test_resolve_kind_spellings(name: str, shape: tuple[int, ...] | None, expected: str) -> None:
    assert resolve_kind(name, shape).name == expected


@pytest.mark.parametrize(("kind", "shape", "hyper", "words"), [
    ("conv2d", (1, 28, 28), {"out_channels": 4, "kernel_size": -1}, "kernel_size must be at least 1"),
    ("conv2d", (1, 3, 28), {"out_channels": 4, "kernel_size": 5}, "H_out"),
    ("conv2d", (3, 8, 8), {"out_channels": 4, "kernel_size": 3, "groups": 2}, "in_channels 3 is not div"),
    ("conv2d", (1, 28), {"out_channels": 4, "kernel_size": 3}, "C×H×W"),
    ("conv1d", (1, 28), {"kernel_size": 3}, "needs out_channels"),
    ("conv1d", (1, 28), {"out_channels": 2, "kernel_size": 3, "ceil_mode": True}, "does not take ceil_mode"),
    ("conv_transpose1d", (1, 3), {"out_channels": 1, "kernel_size": 3, "padding": 3}, "removes more"),
    ("conv_transpose1d", (1, 3), {"out_channels": 1, "kernel_size": 3, "output_padding": 1}, "than stride"),
    ("maxpool2d", (1, 8, 8), {"kernel_size": 3, "padding": 2}, "more than half the kernel"),
    ("linear", (784,), {"in_features": 12544, "out_features": 10}, "last size is 784"),
    ("pool5d", (1, 8), {}, "known: conv1d"),
])
def test_bad_input_says_why(kind: str, shape: tuple[int, ...], hyper: dict[str, Any], words: str) -> None:
    with pytest.raises(UsageError, match=words) as info:
        explain_layer(kind, shape, **hyper)
    assert "\n" not in str(info.value)
