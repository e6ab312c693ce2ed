"""Property tests: random MLP / conv / transformer stacks against FlopCounterMode, storage sums, hooks."""

from __future__ import annotations

from itertools import pairwise

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import aelab
from truth import aelab_flops_torch_counts, flop_counter, hook_shapes, unique_storage_params

ACTIVATIONS = [nn.ReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.SiLU, nn.LeakyReLU, nn.Identity]
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check(model: nn.Module, x: torch.Tensor) -> None:
    report = aelab.inspect(model, tuple(x.shape))
    assert report.trace.error is None
    assert report.summary.totals.params == unique_storage_params(model)
    fwd, bwd = flop_counter(model, x)
    assert aelab_flops_torch_counts(report.trace, "forward") == fwd
    assert aelab_flops_torch_counts(report.trace, "backward") == bwd
    rows = {r.name: r for r in report.summary.rows if r.kind == "module"}
    for name, (ins, outs) in hook_shapes(model, x).items():
        assert rows[name].input_shapes == ins and rows[name].output_shapes == outs, name


@SETTINGS
@given(widths=st.lists(st.integers(1, 64), min_size=2, max_size=6), batch=st.integers(1, 5),
       act=st.sampled_from(ACTIVATIONS), bias=st.booleans(), freeze=st.integers(0, 5))
def test_random_mlp(widths: list[int], batch: int, act: type[nn.Module], bias: bool, freeze: int) -> None:
    layers: list[nn.Module] = []
    for a, b in pairwise(widths):
        layers += [nn.Linear(a, b, bias=bias), act()]
    model = nn.Sequential(*layers)
    for i, p in enumerate(model.parameters()):
        p.requires_grad_(i >= freeze)  # frozen prefixes change which backward kernels run
    _check(model, torch.randn(batch, widths[0]))


@SETTINGS
@given(channels=st.lists(st.integers(1, 8), min_size=2, max_size=4), size=st.integers(8, 24),
       kernel=st.integers(1, 3), stride=st.integers(1, 2), pool=st.booleans(), dims=st.sampled_from([1, 2]),
       norm=st.booleans())
def test_random_conv_stack(channels: list[int], size: int, kernel: int, stride: int, pool: bool, dims: int,
                           norm: bool) -> None:
    conv = nn.Conv1d if dims == 1 else nn.Conv2d
    bn = nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d
    mp = nn.MaxPool1d if dims == 1 else nn.MaxPool2d
    layers: list[nn.Module] = []
    length = size
    for a, b in pairwise(channels):
        layers.append(conv(a, b, kernel, stride=stride, padding=kernel // 2))
        length = (length + 2 * (kernel // 2) - kernel) // stride + 1
        if norm:
            layers.append(bn(b))
        layers.append(nn.ReLU())
        if pool and length >= 4:
            layers.append(mp(2))
            length //= 2
    layers.append(nn.Flatten())
    model = nn.Sequential(*layers)
    shape = (2, channels[0], size) if dims == 1 else (2, channels[0], size, size)
    _check(model, torch.randn(shape))


@SETTINGS
@given(heads=st.sampled_from([1, 2, 4]), head_dim=st.integers(2, 8), layers=st.integers(1, 2),
       seq=st.integers(1, 9), ff=st.integers(4, 32), norm_first=st.booleans())
def test_random_transformer(heads: int, head_dim: int, layers: int, seq: int, ff: int, norm_first: bool) -> None:
    dim = heads * head_dim
    layer = nn.TransformerEncoderLayer(dim, heads, ff, dropout=0.0, batch_first=True, norm_first=norm_first)
    model = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
    _check(model, torch.randn(2, seq, dim))
