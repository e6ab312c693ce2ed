"""seqvae: the encoder is causal (step t never sees later steps) and its receptive field is as stated."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from aelab.models import build
from aelab.models.blocks import CausalConv1d
from aelab.models.kinds.seqvae import receptive_field


def _posterior_change(encode: object, x: torch.Tensor, t: int) -> torch.Tensor:
    """Per-step max |change| of the encoder output when input step t is changed."""
    y = x.clone()
    y[:, t] += 1.0 + torch.rand_like(y[:, t])
    a, b = encode(x), encode(y)  # type: ignore[operator]
    return (a - b).abs().amax(dim=(0, 2))


@settings(max_examples=60, deadline=None)
@given(T=st.integers(2, 40), t_frac=st.floats(0, 1), depth=st.integers(1, 4), kernel=st.integers(1, 5),
       dilation=st.sampled_from([1, 2, 3, "exponential"]), latent=st.integers(1, 6))
def test_changing_step_t_changes_no_encoder_output_before_t(T: int, t_frac: float, depth: int, kernel: int,
                                                            dilation: int | str, latent: int) -> None:
    torch.manual_seed(0)
    model = build("seqvae", (T, 11), latent, width=6, depth=depth, kernel=kernel, dilation=dilation).train()
    t = min(int(t_frac * T), T - 1)
    x = torch.randn(2, T, 11)
    with torch.no_grad():
        for name, fn in (("mean", lambda v: model.posterior(v)[0]), ("log_var", lambda v: model.posterior(v)[1])):
            change = _posterior_change(fn, x, t)
            assert torch.all(change[:t] == 0), f"{name} before step {t} changed: {change[:t]}"
            assert change[t] > 0, f"{name} at step {t} ignores its own input"
            # steps the receptive field reaches do change; steps beyond it do not
            reach = receptive_field(model.config)
            assert torch.all(change[t + reach:] == 0)


def test_the_check_catches_a_non_causal_conv() -> None:
    """The same measurement on a symmetric-padding Conv1d flags step t-1: the test can fail."""
    conv = nn.Conv1d(3, 3, 3, padding=1)
    with torch.no_grad():
        change = _posterior_change(lambda v: conv(v.transpose(1, 2)).transpose(1, 2), torch.randn(1, 10, 3), 5)
    assert change[4] > 0


def test_causal_conv_pads_left_by_k_minus_1_times_d() -> None:
    """Output step t = sum_j w_j x[t - (k-1-j) d]: compared with a hand-written loop."""
    torch.manual_seed(0)
    conv = CausalConv1d(1, 1, kernel_size=3, dilation=2, bias=False)
    x = torch.randn(1, 1, 9)
    w = conv.weight[0, 0]
    want = torch.zeros(9)
    for t in range(9):
        for j in range(3):
            src = t - (2 - j) * 2
            if src >= 0:
                want[t] += w[j] * x[0, 0, src]
    torch.testing.assert_close(conv(x)[0, 0], want)


@pytest.mark.parametrize(("options", "expected"), [
    ({"kernel": 3, "depth": 3}, 7),                                 # 1 + 3 * 2
    ({"kernel": 3, "depth": 3, "dilation": "exponential"}, 15),     # 1 + 2 * (1 + 2 + 4)
    ({"kernel": 5, "depth": 2, "dilation": 3}, 25),                 # 1 + 2 * 4 * 3
])
def test_receptive_field_by_hand(options: dict, expected: int) -> None:
    model = build("seqvae", (30, 4), 2, width=4, **options)
    assert receptive_field(model.config) == expected


def test_latent_can_be_narrower_than_the_features() -> None:
    """The seed's question: 201 features, and here a real bottleneck of 32 per step."""
    model = build("seqvae", (50, 201), 32, width=64)
    assert model(torch.rand(2, 50, 201)).latent.shape == (2, 50, 32)
    assert any("compresses 201 -> 32 per step" in line for line in model.describe())
