"""The bottleneck of architectures that are easy to misread (examples/architectures.py), of aelab's own model
kinds, and of random dense stacks; each latent checked against a real forward or the model's own config."""

from __future__ import annotations

import itertools

import architectures as arch
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from aelab.inspection.bottleneck import Bottleneck, find_bottleneck
from aelab.inspection.hints import collect_hints
from aelab.models import Capability
from aelab.models.registry import build
from aelab.trace.record import record


def analyse(model: nn.Module, *shapes: tuple[int, ...]) -> Bottleneck:
    b = find_bottleneck(record(model, list(shapes), backward=False), collect_hints(model))
    assert b is not None
    return b


def test_tied_weights_ae() -> None:
    model = arch.TiedAE(784, 64)
    b = analyse(model, (2, 784))
    code = model.encoder(torch.randn(2, 784))  # real
    assert b.layer == "encoder" and b.shape == list(code.shape) == [2, 64]
    assert b.compression_ratio == 784 / 64
    assert b.encoder == ["encoder"] and b.decoder == ["sigmoid", "linear", "sigmoid_1"]  # W.t() is no data layer
    tied = next(n for n in b.notes if n.startswith("Tied weights"))
    assert "linear reuses the weight of encoder" in tied


def test_lstm_sequence_ae() -> None:
    model = arch.LSTMAE(features=8, hidden=16)
    b = analyse(model, (4, 30, 8))
    _, (h, _) = model.encoder(torch.randn(4, 30, 8))  # real final hidden state
    assert b.layer == "encoder" and b.shape == list(h.shape) == [1, 4, 16]
    assert b.per_sample == 16 and b.per_position is None  # a summary of the whole sequence, no steps left
    assert b.input_per_position == 8 and b.compression_ratio == 30 * 8 / 16
    assert b.encoder == ["encoder"] and b.decoder[-2:] == ["decoder", "head"]
    assert b.verdict.startswith("Compresses 15x")
    assert any("decoder (LSTM) keeps the width (16 per step)" in n and "(-1, 1)" in n for n in b.notes)


def test_unet_skips_bypass_the_middle() -> None:
    model = arch.UNet(channels=3, width=16)
    b = analyse(model, (2, 3, 64, 64))
    shapes: dict[str, tuple[int, ...]] = {}
    for name in ("enc1", "enc2", "mid"):
        getattr(model, name).register_forward_hook(lambda m, i, o, n=name: shapes.__setitem__(n, tuple(o.shape)))
    model(torch.randn(2, 3, 64, 64))  # real
    assert b.layer == "mid.1" and tuple(b.shape) == shapes["mid"] == (2, 8, 16, 16)
    skips = 16 * 64 * 64 + 32 * 32 * 32  # enc1 and enc2 outputs, per sample, handed to the decoder's concatenations
    assert b.bypass_per_sample == skips == (shapes["enc1"][1] * 64 * 64 + shapes["enc2"][1] * 32 * 32)
    assert b.compression_ratio == 3 * 64 * 64 / (8 * 16 * 16)
    assert b.verdict.startswith("Not a bottleneck") and f"{skips:,}" in b.verdict
    assert {"enc1.0", "enc2.0", "mid.0"} <= set(b.encoder)
    assert {"cat", "dec2.0", "up1", "cat_1", "out"} <= set(b.decoder)
    assert any(n.startswith("Skip connections bypass the latent") and "enc1.1" in n for n in b.notes)
    assert b.input_per_position == 3 and b.position_word == "pixel"


def test_conv_ae_on_64x64() -> None:
    model = arch.ConvAE(channels=3, latent=128)
    b = analyse(model, (2, 3, 64, 64))
    assert b.layer == "encoder.7" and b.shape == list(model.encoder(torch.randn(2, 3, 64, 64)).shape) == [2, 128]
    assert b.compression_ratio == 3 * 64 * 64 / 128 == 96
    assert b.encoder == [f"encoder.{i}" for i in range(8)] and b.decoder == [f"decoder.{i}" for i in range(9)]
    assert b.verdict.startswith("Compresses 96x") and b.bypass_per_sample == 0


def test_asymmetric_names_disagree_with_the_data_path() -> None:
    b = analyse(arch.AsymmetricAE(), (2, 784))
    assert b.layer == "encoder.1" and b.per_sample == 64 and b.latent_source == "attribute"
    note = next(n for n in b.notes if "narrows further" in n)
    assert "16 per sample from decoder.0 on, inside `decoder`" in note


def test_hand_written_reparameterisation() -> None:
    model = arch.ReparamVAE(latent=16)
    b = analyse(model, (2, 784))
    assert b.latent_source == "sample" and b.layer == "add" and b.shape == [2, 16]
    assert {"fc_mu", "fc_log_var", "randn_like"} <= set(b.encoder) and b.decoder == [f"head.{i}" for i in range(4)]
    assert any("reparameterised sample" in n for n in b.notes)


def test_denoising_noise_is_not_a_latent() -> None:
    b = analyse(arch.DenoisingAE(latent=32), (2, 784))
    assert b.latent_source == "narrowest" and b.layer == "net.3" and b.per_sample == 32
    assert any("denoising" in n for n in b.notes)


def test_overcomplete_and_residual() -> None:
    over = analyse(arch.OvercompleteAE(20, 64), (2, 20))
    assert over.verdict.startswith("No dimensional compression") and over.compression_ratio == round(20 / 64, 4)
    assert any("wider than the input" in n for n in over.notes)
    res = analyse(arch.ResidualAE(64, 8), (2, 64))
    assert res.layer == "f.1" and res.bypass_per_sample == 64 and res.verdict.startswith("Not a bottleneck")


def test_gate_branch_is_not_the_latent() -> None:
    b = analyse(arch.GatedConvAE(3, 32), (2, 3, 32, 32))
    assert b.layer == "relu_1" and b.per_sample == 8 * 16 * 16
    assert not any(r.layer.startswith("gate") for r in b.path)


@pytest.mark.parametrize("kind, shape, latent", [
    ("dense", (784,), 16), ("conv", (1, 28, 28), 8), ("dense-vae", (784,), 12), ("conv-vae", (3, 32, 32), 20),
    ("seqvae", (40, 201), 64), ("linear", (20,), 4)])
def test_aelab_model_kinds(kind: str, shape: tuple[int, ...], latent: int) -> None:
    """The latent aelab finds is the one the model was built with (its config), sampled for VAEs."""
    model = build(kind, shape, latent)
    b = analyse(model, (3, *shape))
    expected = latent * (shape[0] if kind == "seqvae" else 1)
    assert b.per_sample == expected and b.is_autoencoder
    assert b.latent_source == ("sample" if model.has(Capability.POSTERIOR) else "attribute")
    if kind == "seqvae":
        assert b.per_position == latent and b.positions == shape[0] and b.input_per_position == shape[1]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(widths=st.lists(st.integers(1, 40), min_size=2, max_size=6), batch=st.integers(1, 4))
def test_random_dense_stacks(widths: list[int], batch: int) -> None:
    """features -> w1 -> ... -> features: the latent is the narrowest hidden width (the last layer of the
    first narrowest run), the ratio features / that width."""
    features = 30
    dims = [features, *widths, features]
    layers: list[nn.Module] = []
    for a, c in itertools.pairwise(dims):
        layers += [nn.Linear(a, c), nn.Tanh()]
    model = nn.Sequential(*layers[:-1])
    b = analyse(model, (batch, features))
    low = min(widths)
    last = widths.index(low)
    while last + 1 < len(widths) and widths[last + 1] == low:
        last += 1  # a run of equal narrowest widths: the code is where it ends
    assert b.per_sample == low and b.shape == [batch, low] and b.is_autoencoder
    assert b.compression_ratio == round(features / low, 4)
    # hidden width i is made by Linear 2i and its Tanh 2i+1: the code is that Tanh's output
    assert b.layer == str(2 * last + 1)
    assert len(b.encoder) == 2 * last + 2 and len(b.encoder) + len(b.decoder) == len(layers) - 1


def test_encoder_output_wider_than_a_point_inside_it() -> None:
    """Seed 001's other case: the model's `encoder` narrows to 8 and then widens to 64 before handing on."""

    class WideningEncoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = nn.Sequential(nn.Linear(784, 8), nn.ReLU(), nn.Linear(8, 64))
            self.decoder = nn.Linear(64, 784)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.decoder(self.encoder(x))

    b = analyse(WideningEncoder(), (2, 784))
    assert b.layer == "encoder.2" and b.per_sample == 64 and b.latent_source == "attribute"
    assert "narrows further, to 8 per sample at encoder.0" in b.verdict
    assert any("to 8 per sample from encoder.0 on, inside `encoder`" in n for n in b.notes)
    plain = find_bottleneck(record(WideningEncoder(), [(2, 784)], backward=False))  # no hints: width alone
    assert plain is not None and plain.layer == "encoder.1" and plain.per_sample == 8
