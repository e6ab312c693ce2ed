"""The bottleneck of the seed models: golden records, checked against hand derivations and real forwards.

Every number is compared with an independent truth: the shapes a real forward on real tensors produces,
or arithmetic written out here. The notes' claims about the identity are checked by building the weights
the note says exist and running the real layers.
"""

from __future__ import annotations

import json

import pytest
import seeds
import torch
from torch import nn

from aelab.inspection.bottleneck import Bottleneck, find_bottleneck
from aelab.inspection.hints import ModelHints, collect_hints
from aelab.trace.record import record
from goldens import check_golden

SHAPES = {"NeuralNetwork": (3, 1, 28, 28), "AE": (3, 784), "Network": (3, 784), "SeqVAE": (4, 50, 201),
          "ConvNet2d": (2, 1, 28, 28), "Conv1dNet": (2, 8, 50), "ObjectScorer": (2, 5, 12)}


def analyse(model: nn.Module, *shapes: tuple[int, ...]) -> Bottleneck:
    b = find_bottleneck(record(model, list(shapes), backward=False), collect_hints(model))
    assert b is not None
    return b


@pytest.fixture(scope="module")
def seed_results() -> dict[str, Bottleneck]:
    torch.manual_seed(0)
    return {name: analyse(seeds.SEED_MODELS[name][0](), shape) for name, shape in SHAPES.items()}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_seed_golden(seed_results: dict[str, Bottleneck], name: str) -> None:
    text = json.dumps(seed_results[name].to_dict(), indent=1) + "\n"
    check_golden(f"bottleneck_{name}.json", text)


def test_ae_latent_is_encoder_output(seed_results: dict[str, Bottleneck]) -> None:
    b = seed_results["AE"]
    model = seeds.AE(784, 10, 42)
    z = model.encoder(torch.randn(3, 784))  # the real code the decoder receives
    assert b.layer == "encoder.2" and b.shape == list(z.shape) == [3, 10]
    assert b.per_sample == 10 and b.compression_ratio == 784 / 10 == 78.4
    assert b.encoder == ["encoder.0", "encoder.1", "encoder.2"]
    assert b.decoder == ["decoder.0", "decoder.1", "decoder.2"]
    assert b.is_autoencoder and b.latent_source == "attribute"
    assert any("data path agrees" in n for n in b.notes)


def test_seq_vae_no_dimensional_compression(seed_results: dict[str, Bottleneck]) -> None:
    b = seed_results["SeqVAE"]
    sample = seeds.SeqVAE().encoder(torch.randn(4, 50, 201)).local_sample  # the real rsample output
    assert b.layer == "encoder.rsample" and b.latent_source == "sample"
    assert b.shape == list(sample.shape) == [4, 50, 256]
    assert b.per_sample == 50 * 256 and b.per_position == 256 and b.positions == 50
    assert b.input_per_sample == 50 * 201 and b.input_per_position == 201
    assert b.compression_ratio == round(201 / 256, 4) and b.compression_ratio_per_position == round(201 / 256, 4)
    assert "No dimensional compression" in b.verdict and "KL term" in b.verdict and "0.79" in b.verdict
    assert "256 values per step against 201" in b.verdict
    assert b.encoder[-1] == "encoder.rsample" and b.decoder[0] == "decoder.fc.0" and b.decoder[-1] == "decoder.fc.12"
    assert any("wider than the input" in n for n in b.notes)
    # the transposed (N, 201, 50) representation still has its 50 steps
    transposed = next(r for r in b.path if r.layer == "encoder.local_net.0")
    assert transposed.shape == [4, 201, 50] and transposed.per_position == 201 and transposed.movement


@pytest.mark.parametrize("name, layer", [("NeuralNetwork", "linear_relu_stack.4"), ("Network", "softmax")])
def test_classifiers_are_not_autoencoders(seed_results: dict[str, Bottleneck], name: str, layer: str) -> None:
    b = seed_results[name]
    model = seeds.SEED_MODELS[name][0]()
    out = model(torch.randn(SHAPES[name]))
    assert not b.is_autoencoder and b.verdict.startswith("Not an autoencoder")
    assert b.layer == layer and b.shape == list(out.shape) and b.per_sample == out[0].numel() == 10
    assert "10-way output" in b.verdict and b.decoder == []


def test_seed_000_width_preserving_linear_can_be_identity_on_relu_outputs(seed_results: dict[str, Bottleneck]) -> None:
    """The note says Linear(512, 512) + ReLU can be exactly the identity on what it gets (outputs of a ReLU).
    Build W = I, b = 0 and check with the real layers."""
    notes = [n for n in seed_results["NeuralNetwork"].notes if "linear_relu_stack.2" in n]
    assert len(notes) == 1 and "can be exactly the identity on the values it gets" in notes[0]
    model = seeds.NeuralNetwork()
    with torch.no_grad():
        model.linear_relu_stack[2].weight.copy_(torch.eye(512))
        model.linear_relu_stack[2].bias.zero_()
        h = model.linear_relu_stack[:2](torch.randn(64, 784))
        assert torch.equal(model.linear_relu_stack[2:4](h), h)


def test_seed_003_tanh_stretches_cannot_be_identity(seed_results: dict[str, Bottleneck]) -> None:
    notes = seed_results["SeqVAE"].notes
    tanh = next(n for n in notes if "decoder.fc.4" in n)
    assert "decoder.fc.7" in tanh and "None of them can be exactly the identity" in tanh and "(-1, 1)" in tanh
    affine = next(n for n in notes if "encoder.local_net.10" in n)
    assert "can be exactly the identity (W = I, b = 0)" in affine
    conv = seeds.SeqVAE().encoder.local_net[10]  # Conv1d(512, 512, 1): W = I makes it the identity
    with torch.no_grad():
        conv.weight.copy_(torch.eye(512).unsqueeze(-1))
        conv.bias.zero_()
        x = torch.randn(2, 512, 7)
        assert torch.allclose(conv(x), x)
        assert torch.tanh(torch.tensor(3.0)) < 1  # what the Tanh note rests on: bounded outputs


class _Stretch(nn.Module):
    """Linear(16,16) -> ReLU -> Linear(16,16) reading the raw input (which can be negative)."""

    def __init__(self, end_in_relu: bool) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Linear(16, 16), nn.ReLU()]
        if not end_in_relu:
            layers.append(nn.Linear(16, 16))
        self.net = nn.Sequential(*layers, nn.Linear(16, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def test_relu_in_the_middle_is_identity_on_bounded_inputs() -> None:
    b = analyse(_Stretch(end_in_relu=False), (2, 16))
    note = next(n for n in b.notes if "net.0" in n)
    assert "cannot be the identity by itself" in note and "identity on bounded inputs" in note
    model = _Stretch(end_in_relu=False)
    c = 10.0  # the shift the note describes: bias +c, ReLU, bias -c
    with torch.no_grad():
        for i, shift in ((0, c), (2, -c)):
            model.net[i].weight.copy_(torch.eye(16))
            model.net[i].bias.fill_(shift)
        x = torch.randn(100, 16)  # |x| < 10 in practice
        assert torch.allclose(model.net[:3](x), x, atol=1e-5)


def test_relu_at_the_end_cannot_pass_negative_values() -> None:
    b = analyse(_Stretch(end_in_relu=True), (2, 16))
    note = next(n for n in b.notes if "net.0" in n)
    assert "cannot be the identity" in note and "can be negative" in note
    out = _Stretch(end_in_relu=True).net[:2](-torch.ones(1, 16) * 100)
    assert (out >= 0).all()  # a ReLU's output: never the negative input


def test_hints_read_names_and_methods_without_running() -> None:
    class Boom(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.enc1, self.enc2 = nn.Linear(4, 3), nn.Linear(3, 2)
            self.Decoder = nn.Linear(2, 4)
            self.encoding = nn.Identity()  # not an encoder name

        def encode(self, x: torch.Tensor) -> torch.Tensor:
            return self.enc2(self.enc1(x))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise AssertionError("collect_hints must not run forward")

    assert collect_hints(Boom()) == ModelHints(("enc1", "enc2"), ("Decoder",), True, False)
    wrapped = nn.Sequential()
    wrapped.add_module("net", seeds.AE())
    assert collect_hints(wrapped) == ModelHints(("net.encoder",), ("net.decoder",), False, False)
    assert collect_hints(seeds.NeuralNetwork()) == ModelHints()


def test_no_data_path_gives_none() -> None:
    class Constant(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.p = nn.Parameter(torch.zeros(3))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.p * 2

    assert find_bottleneck(record(Constant(), [(2, 5)], backward=False)) is None


def test_path_starts_at_the_input_the_output_depends_on() -> None:
    class UsesSecond(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(6, 2)

        def forward(self, mask: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
            return self.lin(x)

    b = find_bottleneck(record(UsesSecond(), [(3, 4), (3, 6)], backward=False))
    assert b is not None and b.input_shape == [3, 6] and b.layer == "lin" and b.compression_ratio == 6 / 2
