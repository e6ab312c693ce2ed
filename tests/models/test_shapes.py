"""Shape properties of the builder: every accepted config reconstructs exactly the input shape.

The truth for sizes is PyTorch itself (running its conv / transposed-conv layers), not aelab's
geometry formulas.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from torch import nn

from aelab.models import KINDS, build
from aelab.shapes.sizes import exact_output_padding

torch.set_num_threads(1)
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _sizes_by_pytorch(spatial: tuple[int, ...], kernels: list[int], strides: list[int]) -> list[tuple[int, ...]]:
    """Run PyTorch's own conv on a 1-channel tensor to find each stage's output size (None if it fails)."""
    conv = {1: F.conv1d, 2: F.conv2d}[len(spatial)]
    x = torch.zeros(1, 1, *spatial)
    sizes = []
    for k, s in zip(kernels, strides):
        weight = torch.zeros(1, 1, *([k] * len(spatial)))
        try:
            x = conv(x, weight, stride=s, padding=(k - 1) // 2)
        except RuntimeError:
            return []
        sizes.append(tuple(x.shape[2:]))
    return sizes


@st.composite
def conv_cases(draw: st.DrawFn) -> dict:
    ndim = draw(st.sampled_from([1, 2]))
    spatial = (draw(st.integers(8, 512)),) if ndim == 1 else (draw(st.integers(8, 96)), draw(st.integers(8, 96)))
    depth = draw(st.integers(1, 4))
    per_stage = st.lists(st.integers(1, 7), min_size=depth, max_size=depth)
    kernel = draw(st.one_of(st.integers(1, 7), per_stage))
    stride = draw(st.one_of(st.integers(1, 3), st.lists(st.integers(1, 3), min_size=depth, max_size=depth)))
    return {
        "kind": draw(st.sampled_from(["conv", "conv-vae"])),
        "shape": (draw(st.integers(1, 3)), *spatial),
        "latent": draw(st.integers(1, 16)),
        "channels": draw(st.lists(st.integers(1, 4), min_size=depth, max_size=depth)),
        "kernel": kernel,
        "stride": stride,
        "hidden": draw(st.sampled_from([[], [5]])),
        "batch": draw(st.integers(1, 2)),
    }


@SETTINGS
@given(conv_cases())
def test_conv_reconstruction_has_the_input_shape(case: dict) -> None:
    depth = len(case["channels"])
    kernels = case["kernel"] if isinstance(case["kernel"], list) else [case["kernel"]] * depth
    strides = case["stride"] if isinstance(case["stride"], list) else [case["stride"]] * depth
    spatial = case["shape"][1:]
    sizes = _sizes_by_pytorch(spatial, kernels, strides)
    inputs = [spatial, *sizes[:-1]]
    # The builder's policy: refuse a stage PyTorch cannot run, or a strided stage given a size below its stride.
    should_accept = len(sizes) == depth and all(
        all(n >= s for n in size_in) or s == 1 for size_in, s in zip(inputs, strides))
    options = {k: case[k] for k in ("channels", "kernel", "stride", "hidden")}
    try:
        model = build(case["kind"], case["shape"], case["latent"], **options)
    except ValueError as exc:
        assert not should_accept, f"rejected a valid config: {exc}"
        assert "stage" in str(exc) and "\n" not in str(exc)
        assume(False)
    assert should_accept, "accepted a config PyTorch cannot run or that cannot shrink"
    x = torch.randn(case["batch"], *case["shape"])
    with torch.no_grad():
        z = model.encode(x)
        assert z.shape == (case["batch"], case["latent"])
        assert model.decode(z).shape == x.shape
        assert model(x).reconstruction.shape == x.shape


@SETTINGS
@given(L=st.integers(1, 200), k=st.integers(1, 9), s=st.integers(1, 5), d=st.integers(1, 4), p=st.integers(0, 4))
def test_output_padding_solution_matches_pytorch(L: int, k: int, s: int, d: int, p: int) -> None:
    """For a conv PyTorch accepts, the solved output_padding makes ConvTranspose1d give back L exactly."""
    x = torch.zeros(1, 1, L)
    try:
        y = F.conv1d(x, torch.zeros(1, 1, k), stride=s, padding=p, dilation=d)
    except RuntimeError:
        assume(False)
    op = exact_output_padding(y.shape[-1], L, k, s, p, d)
    up = nn.ConvTranspose1d(1, 1, k, stride=s, padding=p, dilation=d, output_padding=op)
    assert up(y).shape[-1] == L


@SETTINGS
@given(size=st.integers(1, 40), target=st.integers(1, 120), k=st.integers(1, 7), s=st.integers(1, 4),
       d=st.integers(1, 3), p=st.integers(0, 3))
def test_output_padding_is_refused_exactly_when_pytorch_has_no_solution(size: int, target: int, k: int, s: int,
                                                                        d: int, p: int) -> None:
    reachable = []
    for op in range(max(s, d)):
        try:
            out = nn.ConvTranspose1d(1, 1, k, stride=s, padding=p, dilation=d, output_padding=op)(
                torch.zeros(1, 1, size))
        except RuntimeError:
            continue
        if out.shape[-1] == target:
            reachable.append(op)
    if reachable:
        assert exact_output_padding(size, target, k, s, p, d) == reachable[0]
    else:
        with pytest.raises(ValueError, match="no output_padding"):
            exact_output_padding(size, target, k, s, p, d)


@pytest.mark.parametrize(("shape", "channels", "pads"), [
    ((1, 28, 28), [32, 64], [(1, 1), (1, 1)]),       # 28 -> 14 -> 7: both halvings drop a remainder
    ((3, 33, 47), [4, 4, 4], [(0, 0), (0, 1), (0, 1)]),  # 33 -> 17 -> 9 -> 5, 47 -> 24 -> 12 -> 6
    ((1, 201), [4, 4], [(0,), (0,)]),                 # 201 -> 101 -> 51: odd sizes need none
])
def test_solved_output_padding_by_hand(shape: tuple[int, ...], channels: list[int], pads: list[tuple]) -> None:
    """Hand derivation (k=3, s=2, p=1): op = (L + 2 - 2 - 1) mod 2 = (L - 1) mod 2, i.e. 1 for even L.
    `pads` lists the stages input side first; the decoder runs them in reverse."""
    model = build("conv", shape, 4, channels=channels)
    transposed = [m for m in model.decoder if isinstance(m, nn.ConvTranspose1d | nn.ConvTranspose2d)]
    assert [m.output_padding for m in reversed(transposed)] == pads
    assert [tuple((L - 1) % 2 for L in stage.in_size) for stage in model.stages] == pads


@SETTINGS
@given(shape=st.lists(st.integers(1, 12), min_size=1, max_size=3).map(tuple),
       hidden=st.lists(st.integers(1, 16), max_size=3), latent=st.integers(1, 20),
       kind=st.sampled_from(["dense", "dense-vae"]), batch=st.integers(1, 2))
def test_dense_reconstruction_has_the_input_shape(shape: tuple[int, ...], hidden: list[int], latent: int,
                                                  kind: str, batch: int) -> None:
    model = build(kind, shape, latent, hidden=hidden)
    x = torch.randn(batch, *shape)
    with torch.no_grad():
        z = model.encode(x)
        assert z.shape == (batch, latent)
        assert model.decode(z).shape == x.shape


@settings(max_examples=40, deadline=None)
@given(T=st.integers(1, 30), run_T=st.integers(1, 30), F_=st.integers(1, 210), latent=st.integers(1, 40),
       depth=st.integers(1, 3), kernel=st.integers(1, 5), dilation=st.sampled_from([1, 2, "exponential"]))
def test_seqvae_shapes_for_any_length(T: int, run_T: int, F_: int, latent: int, depth: int, kernel: int,
                                      dilation: int | str) -> None:
    model = build("seqvae", (T, F_), latent, width=8, depth=depth, kernel=kernel, dilation=dilation)
    x = torch.rand(2, run_T, F_)
    with torch.no_grad():
        z = model.encode(x)
        assert z.shape == (2, run_T, latent)
        assert model.decode(z).shape == x.shape
    assert model.sample(3).shape == (3, T, F_)


@pytest.mark.parametrize("kind", list(KINDS))
def test_wrong_input_shape_is_one_clear_sentence(kind: str) -> None:
    shape = KINDS[kind].model.example_input
    model = build(kind, shape, 3)
    with pytest.raises(ValueError, match=r"expects input of shape \(N, "):
        model(torch.zeros(2, math.prod(shape) + 1))
