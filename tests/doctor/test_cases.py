"""One broken model per doctor explainer, and a test each: the doctor must name the layer and the number,
and its fix line must really work, checked by building the fixed model on real tensors and running
PyTorch's own forward. The models are importable by path for the CLI:
`aelab doctor tests/doctor/test_cases.py:ConvChannelsWrong --input 2x1x28x28`.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from aelab.doctor.diagnose import diagnose
from aelab.doctor.explainers import EXPLAINERS
from aelab.doctor.records import Diagnosis, Finding


# --- the broken models ---------------------------------------------------------------------------------
class ConvChannelsWrong(nn.Module):
    """conv2 expects 32 channels; conv1 makes 16."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(torch.relu(self.conv1(x)))


class BatchNormWrong(nn.Module):
    """BatchNorm2d(32) after a 16-channel conv."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 16, 3, padding=1)
        self.bn = nn.BatchNorm2d(32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class BatchNormRankWrong(nn.Module):
    """BatchNorm1d on a conv2d's 4-D output."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 16, 3, padding=1)
        self.bn = nn.BatchNorm1d(16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class LayerNormWrong(nn.Module):
    """LayerNorm(32) after Linear(784, 64)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(784, 64)
        self.norm = nn.LayerNorm(32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.fc(x))


class ViewWrong(nn.Module):
    """The tutorial mistake x.view(-1, 500) after a 16x28x28 conv, and a Linear(500, 10) sized to match it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 16, 3, padding=1)
        self.fc = nn.Linear(500, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).view(-1, 500))


class CatSkipWrong(nn.Module):
    """A U-Net step whose up path makes 27 where the skip has 28: the transposed conv lacks output_padding."""

    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.Conv2d(1, 16, 3, padding=1)
        self.down = nn.Conv2d(16, 32, 3, stride=2, padding=1)
        self.up = nn.ConvTranspose2d(32, 16, 3, stride=2, padding=1)
        self.head = nn.Conv2d(32, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = torch.relu(self.enc(x))
        up = torch.relu(self.up(torch.relu(self.down(skip))))
        return self.head(torch.cat([skip, up], dim=1))


class CatPadWrong(nn.Module):
    """Two branches, one conv padded and one not: 28 vs 26, no transposed conv to blame."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(1, 8, 3, padding=1)
        self.b = nn.Conv2d(1, 8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.a(x), self.b(x)], dim=1)


class ChannelLinearWrong(nn.Module):
    """Linear(16, 4) on a Conv1d's (N, 16, 48): it was meant for the channel axis."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(8, 16, 3)
        self.fc = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)))


class FlattenMissingWrong(nn.Module):
    """Linear(768, 4) sized right (16 × 48) but fed the unflattened (N, 16, 48)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(8, 16, 3)
        self.fc = nn.Linear(768, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)))


class ConvAEWrong(nn.Module):
    """A conv autoencoder for 28x28 whose last transposed conv makes 27: it needs output_padding=1."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.ReLU(),
                                     nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU())
        self.decoder = nn.Sequential(nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
                                     nn.ConvTranspose2d(8, 1, 3, stride=2, padding=1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class TokensWrong(nn.Module):
    """An Embedding fed float values: not a shape problem (run it with --input 2x10:long and it is fine)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(100, 8)
        self.fc = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.embed(x))


class ThreeWrong(nn.Module):
    """Three problems in a row: conv2 in_channels, fc1 in_features, fc2 in_features."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 32, 3, stride=2)
        self.fc1 = nn.Linear(100, 50)
        self.fc2 = nn.Linear(60, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


# --- helpers -------------------------------------------------------------------------------------------
def real_forward_with(model: nn.Module, findings: list[Finding], shape: tuple[int, ...]) -> torch.Tensor:
    """Build every module fix line with eval (the code the user would paste), put it in a real copy of
    the model at the finding's layer, and run PyTorch's forward on a real random tensor."""
    fixed = copy.deepcopy(model)
    for f in findings:
        assert f.fix is not None and f.action is not None and f.action.action in ("set", "replace"), f
        module = eval(f.fix, {"nn": nn})
        parent, _, name = f.action.target.rpartition(".")
        setattr(fixed.get_submodule(parent) if parent else fixed, name, module)
    with torch.no_grad():
        return fixed(torch.randn(shape))


def only(d: Diagnosis, kind: str) -> Finding:
    assert [f.kind for f in d.findings] == [kind], d.findings
    return d.findings[0]


# --- one test per explainer ----------------------------------------------------------------------------
def test_every_explainer_has_a_test_here() -> None:
    text = Path(__file__).read_text(encoding="utf-8")
    for name in EXPLAINERS:
        assert f'"{name}"' in text.split("# --- one test " + "per explainer")[1], name


def test_conv_in_channels() -> None:
    d = diagnose(ConvChannelsWrong(), (2, 1, 28, 28))
    f = only(d, "conv_in_channels")
    assert f.layer == "conv2" and f.fix == "nn.Conv2d(16, 8, kernel_size=3)"
    assert f.derivation == "16 = the channels of the output of conv1 (16, 28, 28)"
    out = real_forward_with(ConvChannelsWrong(), d.findings, (2, 1, 28, 28))
    assert tuple(out.shape) == (2, 8, 26, 26) == d.output_shapes[0]  # 26 = 28 − 3 + 1


def test_batchnorm_num_features() -> None:
    d = diagnose(BatchNormWrong(), (2, 1, 28, 28))
    f = only(d, "batchnorm_num_features")
    assert (f.layer, f.fix) == ("bn", "nn.BatchNorm2d(16)")
    assert tuple(real_forward_with(BatchNormWrong(), d.findings, (2, 1, 28, 28)).shape) == (2, 16, 28, 28)


def test_batchnorm_rank() -> None:
    d = diagnose(BatchNormRankWrong(), (2, 1, 28, 28))
    f = only(d, "batchnorm_rank")
    assert (f.layer, f.fix) == ("bn", "nn.BatchNorm2d(16)") and "ValueError" in (f.error or "")
    assert tuple(real_forward_with(BatchNormRankWrong(), d.findings, (2, 1, 28, 28)).shape) == (2, 16, 28, 28)


def test_layernorm_shape() -> None:
    d = diagnose(LayerNormWrong(), (3, 784))
    f = only(d, "layernorm_shape")
    assert (f.layer, f.fix) == ("norm", "nn.LayerNorm(64)")
    assert tuple(real_forward_with(LayerNormWrong(), d.findings, (3, 784)).shape) == (3, 64)


def test_linear_in_features_conv2d_seed_004() -> None:
    from broken import ConvNet2dWrong

    d = diagnose(ConvNet2dWrong(), (1, 1, 28, 28))
    f = only(d, "linear_in_features")
    assert 16 * 28 * 28 == 12544  # Conv2d(1, 16, 5, padding=2) keeps 28: 28 + 2·2 − 5 + 1 = 28
    assert f.fix == "nn.Linear(12544, 10)"
    assert f.derivation == "12544 = 16 × 28 × 28, the flattened output of conv (16, 28, 28)"
    assert "nn.LazyLinear(10)" in f.alternatives[0]
    assert tuple(real_forward_with(ConvNet2dWrong(), d.findings, (1, 1, 28, 28)).shape) == (1, 10)
    lazy = ConvNet2dWrong()
    lazy.fc = eval(f.alternatives[0].split("  #")[0], {"nn": nn})
    assert tuple(lazy(torch.randn(1, 1, 28, 28)).shape) == (1, 10)


def test_linear_in_features_conv1d_seed_004() -> None:
    from broken import Conv1dNetWrong

    d = diagnose(Conv1dNetWrong(), (2, 8, 50))
    f = only(d, "linear_in_features")
    assert 50 - 3 + 1 == 48 and 16 * 48 == 768
    assert f.fix == "nn.Linear(768, 4)"
    assert f.derivation is not None and f.derivation.startswith("768 = 16 × 48, ")
    assert f.derivation.endswith("where 48 = 50 − 3 + 1")
    assert tuple(real_forward_with(Conv1dNetWrong(), d.findings, (2, 8, 50)).shape) == (2, 4)


def test_linear_channel_axis() -> None:
    d = diagnose(ChannelLinearWrong(), (2, 8, 50))
    f = only(d, "linear_channel_axis")
    assert f.fix == "nn.Conv1d(16, 4, kernel_size=1)"
    out = real_forward_with(ChannelLinearWrong(), d.findings, (2, 8, 50))
    assert tuple(out.shape) == (2, 4, 48) == d.output_shapes[0]
    # the 1-wide conv is the Linear applied over the channel axis at every position
    model = ChannelLinearWrong()
    conv = eval(f.fix, {"nn": nn})
    conv.weight.data = model.fc.weight.data[:, :, None].clone()
    conv.bias.data = model.fc.bias.data.clone()
    h = torch.randn(2, 16, 48)
    torch.testing.assert_close(conv(h), model.fc(h.transpose(1, 2)).transpose(1, 2))


def test_linear_missing_flatten() -> None:
    d = diagnose(FlattenMissingWrong(), (2, 8, 50))
    f = only(d, "linear_missing_flatten")
    assert f.fix == "nn.Sequential(nn.Flatten(), nn.Linear(768, 4))"
    assert tuple(real_forward_with(FlattenMissingWrong(), d.findings, (2, 8, 50)).shape) == (2, 4)


def test_view_size_then_the_linear_after_it() -> None:
    d = diagnose(ViewWrong(), (2, 1, 28, 28))
    assert [f.kind for f in d.findings] == ["view_size", "linear_in_features"]
    view, fc = d.findings
    assert view.fix == "x.view(x.size(0), -1)" and view.derivation is not None
    assert view.derivation.startswith("(N, 12544): 12544 = 16 × 28 × 28")
    assert fc.fix == "nn.Linear(12544, 10)" and d.status == "fixed" and d.output_shapes == [(2, 10)]

    class ViewFixed(ViewWrong):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(self.conv(x).view(x.size(0), -1))

    model = ViewFixed()
    model.fc = eval(fc.fix, {"nn": nn})
    assert tuple(model(torch.randn(2, 1, 28, 28)).shape) == (2, 10)


def test_view_size_without_minus_one() -> None:
    class View3(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.reshape(2, 16, 700)

    d = diagnose(View3(), (2, 16, 28, 28))
    f = only(d, "view_size")
    assert f.fix == "x.reshape(x.size(0), 16, 784)"  # 784 = 25088 / (2 × 16) = 28 × 28
    assert torch.randn(2, 16, 28, 28).reshape(2, 16, 784).shape == (2, 16, 784)


def test_cat_size_solves_the_transposed_conv() -> None:
    d = diagnose(CatSkipWrong(), (2, 1, 28, 28))
    f = only(d, "cat_size")
    # down: ⌊(28 + 2 − 3) / 2⌋ + 1 = 14; up: (14 − 1)·2 − 2 + 2 + op + 1 = 27 + op, so op = 1 gives 28
    assert f.fix == "nn.ConvTranspose2d(32, 16, kernel_size=3, stride=2, padding=1, output_padding=1)"
    assert f.action is not None and f.action.target == "up"
    assert f.derivation is not None and f.derivation.endswith("= 28")
    assert tuple(real_forward_with(CatSkipWrong(), d.findings, (2, 1, 28, 28)).shape) == (2, 1, 28, 28)


def test_cat_size_pads_when_no_transposed_conv() -> None:
    d = diagnose(CatPadWrong(), (2, 1, 28, 28))
    f = only(d, "cat_size")
    assert f.fix == "t1 = F.pad(t1, (0, 2, 0, 2))"
    model = CatPadWrong()
    x = torch.randn(2, 1, 28, 28)
    t0, t1 = model.a(x), model.b(x)
    t1 = F.pad(t1, (0, 2, 0, 2))
    assert tuple(torch.cat([t0, t1], 1).shape) == (2, 16, 28, 28) == d.output_shapes[0]


def test_missing_batch_dim_then_the_linear() -> None:
    from broken import ConvNet2dWrong

    d = diagnose(ConvNet2dWrong(), (1, 28, 28))
    assert [f.kind for f in d.findings] == ["missing_batch_dim", "linear_in_features"]
    assert d.findings[0].fix == "x = x.unsqueeze(0)" and d.final_inputs == [(1, 1, 28, 28)]
    assert d.findings[1].fix == "nn.Linear(12544, 10)"
    # the truth: PyTorch runs the conv unbatched, so Flatten makes (16, 784), not (1, 12544)
    real = ConvNet2dWrong()
    assert tuple(real.flatten(real.conv(torch.randn(1, 28, 28))).shape) == (16, 784)


def test_autoencoder_output() -> None:
    d = diagnose(ConvAEWrong(), (2, 1, 28, 28))
    f = only(d, "autoencoder_output")
    assert f.layer == "decoder.2"
    assert f.fix == "nn.ConvTranspose2d(8, 1, kernel_size=3, stride=2, padding=1, output_padding=1)"
    real = ConvAEWrong()
    assert tuple(real(torch.randn(2, 1, 28, 28)).shape) == (2, 1, 27, 27)  # the bug, for real
    assert tuple(real_forward_with(ConvAEWrong(), d.findings, (2, 1, 28, 28)).shape) == (2, 1, 28, 28)


def test_other_error() -> None:
    d = diagnose(TokensWrong(), (2, 10))
    f = only(d, "other_error")
    assert f.layer == "embed" and f.fix is None and d.status == "stuck" and d.exit_code == 1
    with pytest.raises(RuntimeError) as real:
        TokensWrong()(torch.randn(2, 10))
    assert "Long" in str(real.value) and "Long" in (f.error or "")
    assert diagnose(TokensWrong(), torch.zeros(2, 10, dtype=torch.long)).exit_code == 0


def test_three_problems_in_one_run() -> None:
    d = diagnose(ThreeWrong(), (2, 1, 28, 28))
    assert [(f.kind, f.layer) for f in d.findings] == [("conv_in_channels", "conv2"), ("linear_in_features", "fc1"),
                                                       ("linear_in_features", "fc2")]
    # conv2: ⌊(28 − 3) / 2⌋ + 1 = 13, so fc1 takes 32 × 13 × 13 = 5408, and fc2 takes fc1's 50
    assert [f.fix for f in d.findings] == ["nn.Conv2d(16, 32, kernel_size=3, stride=2)", "nn.Linear(5408, 50)",
                                           "nn.Linear(50, 10)"]
    assert all(f.applied for f in d.findings) and d.status == "fixed"
    assert tuple(real_forward_with(ThreeWrong(), d.findings, (2, 1, 28, 28)).shape) == (2, 10)
