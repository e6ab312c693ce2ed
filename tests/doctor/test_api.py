"""The doctor's Python API: the user's model is never touched, the loop stops where it should, fix lines
rebuild the layer they name, and the size arithmetic agrees with real PyTorch layers (hypothesis)."""

from __future__ import annotations

import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from aelab.doctor.diagnose import describe_modules, diagnose
from aelab.doctor.explainers.flow import solve_transpose
from aelab.doctor.records import Finding, ModuleConfig, constructor_line, size_derivation
from aelab.trace.records import CallEvent, TensorInfo


def _state(model: nn.Module) -> dict[str, object]:
    return {"sd": {k: v.clone() for k, v in model.state_dict().items()},
            "ids": {k: id(v) for k, v in model.named_parameters()},
            "modules": {k: id(m) for k, m in model.named_modules()},
            "training": [m.training for m in model.modules()],
            "grad": [p.requires_grad for p in model.parameters()],
            "hooks": [(len(m._forward_hooks), len(m._forward_pre_hooks)) for m in model.modules()],
            "device": {p.device for p in model.parameters()}}


def test_the_users_model_leaves_as_it_came() -> None:
    from broken import ConvNet2dWrong

    model = ConvNet2dWrong()
    model.conv.weight.requires_grad_(False)
    model.eval()
    before = _state(model)
    d = diagnose(model, (1, 28, 28))
    assert [f.kind for f in d.findings] == ["missing_batch_dim", "linear_in_features"]
    after = _state(model)
    assert before.keys() == after.keys()
    for key in before:
        if key == "sd":
            for name, value in before["sd"].items():  # type: ignore[attr-defined]
                assert torch.equal(value, after["sd"][name]), name  # type: ignore[index]
        else:
            assert before[key] == after[key], key
    assert isinstance(model.fc, nn.Linear) and model.fc.in_features == 512
    assert tuple(model.fc.weight.shape) == (10, 512) and model.fc.weight.device.type == "cpu"


def test_meta_model_and_tensor_inputs() -> None:
    from broken import Conv1dNetWrong

    with torch.device("meta"):
        model = Conv1dNetWrong()
    d = diagnose(model, torch.randn(2, 8, 50))
    assert [f.fix for f in d.findings] == ["nn.Linear(768, 4)"] and d.output_shapes == [(2, 4)]
    assert model.fc.in_features == 800


def test_seed_models_are_fine() -> None:
    import seeds

    for name, (cls, shape) in seeds.SEED_MODELS.items():
        d = diagnose(cls(), shape)
        assert d.status == "ok" and d.exit_code == 0 and not d.findings, name
        real = cls()(torch.randn(shape))
        assert d.output_shapes[0] == tuple(real.shape), name


def test_max_fixes_stops_and_says_so() -> None:
    from doctor.test_cases import ThreeWrong

    d = diagnose(ThreeWrong(), (2, 1, 28, 28), max_fixes=1)
    assert d.status == "limit" and d.exit_code == 1 and d.stopped == "stopped after 1 fix; problem 2 is not fixed"
    assert [f.applied for f in d.findings] == [True, False]  # the problem left is listed, not applied
    assert d.output_shapes == []


def test_json_form() -> None:
    from broken import Conv1dNetWrong

    data = diagnose(Conv1dNetWrong(), (2, 8, 50)).to_dict()
    finding = data["findings"][0]
    assert {"layer", "kind", "got", "expected", "fix", "derivation"} <= finding.keys()
    assert finding["fix"] == "nn.Linear(768, 4)" and data["status"] == "fixed" and data["output_shapes"] == [[2, 4]]


def test_a_fixed_subclass_keeps_its_forward() -> None:
    """CausalConv1d pads on the left in its own forward(); the fix must change in_channels and keep that."""
    from seeds import CausalConv1d

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Conv1d(4, 16, 1)
            self.b = CausalConv1d(8, 8, kernel_size=3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.b(self.a(x))

    cfg = describe_modules(Net())["b"]
    assert (cfg.type, cfg.base, cfg.custom_forward) == ("CausalConv1d", "Conv1d", True)
    d = diagnose(Net(), (2, 4, 50))
    assert [f.fix for f in d.findings] == ["CausalConv1d(16, 8, kernel_size=3)"]
    real = Net()
    real.b = CausalConv1d(16, 8, kernel_size=3)
    assert d.output_shapes == [tuple(real(torch.randn(2, 4, 50)).shape)] == [(2, 8, 50)]  # left pad kept: 50


def test_two_transposed_convs_off_by_one() -> None:
    """Both transposed convs lack output_padding: 7 → 13 → 25 instead of 28; one fix must restore 28."""

    class AE(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.enc = nn.Sequential(nn.Conv2d(1, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 16, 3, 2, 1))
            self.dec = nn.Sequential(nn.ConvTranspose2d(16, 8, 3, 2, 1), nn.ReLU(), nn.ConvTranspose2d(8, 1, 3, 2, 1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.dec(self.enc(x))

    assert tuple(AE()(torch.randn(1, 1, 28, 28)).shape) == (1, 1, 25, 25)
    d = diagnose(AE(), (1, 1, 28, 28))
    assert d.status == "fixed" and d.output_shapes == [(1, 1, 28, 28)]
    fixed = AE()
    f: Finding = d.findings[0]
    assert f.action is not None and f.fix is not None
    parent, _, name = f.action.target.rpartition(".")
    setattr(fixed.get_submodule(parent), name, eval(f.fix, {"nn": nn}))
    assert tuple(fixed(torch.randn(1, 1, 28, 28)).shape) == (1, 1, 28, 28)


@pytest.mark.parametrize("module", [
    nn.Conv2d(3, 8, (3, 5), stride=2, padding=(1, 2), dilation=1, groups=1, bias=False),
    nn.Conv1d(4, 8, 5, padding=2, groups=4),
    nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1),
    nn.Linear(12, 7, bias=False),
    nn.BatchNorm1d(6, eps=1e-3, momentum=0.2, affine=False),
    nn.LayerNorm((4, 5)),
])
def test_constructor_line_rebuilds_the_layer(module: nn.Module) -> None:
    cfg = describe_modules(module)[""]
    rebuilt = eval(constructor_line(cfg), {"nn": nn})
    assert describe_modules(rebuilt)[""].hyper == cfg.hyper
    assert {k: tuple(v.shape) for k, v in rebuilt.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in module.state_dict().items()}


def _call(module: nn.Module, x: tuple[int, ...]) -> CallEvent:
    y = tuple(module(torch.empty(x)).shape)
    return CallEvent(1, "module", "m", type(module).__name__, 0, 1, "m",
                     inputs=[TensorInfo(0, x, "float32", 0)], outputs=[TensorInfo(1, y, "float32", 0)])


@settings(max_examples=60, deadline=None)
@given(size=st.integers(1, 40), k=st.integers(1, 6), s=st.integers(1, 4), p=st.integers(0, 3), d=st.integers(1, 3),
       delta=st.integers(-3, 3))
def test_solve_transpose_matches_pytorch(size: int, k: int, s: int, p: int, d: int, delta: int) -> None:
    base = (size - 1) * s - 2 * p + d * (k - 1) + 1
    if base < 1 or base + delta < 1:
        return
    layer = nn.ConvTranspose1d(2, 3, k, stride=s, padding=p, dilation=d)
    cfg = describe_modules(layer)[""]
    solved = solve_transpose(_call(layer, (1, 2, size)), cfg, {2: base + delta})
    if 0 <= delta < max(s, d):  # PyTorch allows output_padding < max(stride, dilation): a solution exists
        assert solved is not None
    if solved is None:
        return
    changes, _ = solved
    fixed = nn.ConvTranspose1d(2, 3, k, stride=s, dilation=d, padding=changes.get("padding", (p,))[0],
                               output_padding=changes["output_padding"][0])
    assert fixed(torch.empty(1, 2, size)).shape[-1] == base + delta


def test_solve_transpose_finds_the_off_by_one() -> None:
    layer = nn.ConvTranspose2d(8, 1, 3, stride=2, padding=1)
    solved = solve_transpose(_call(layer, (1, 8, 14, 14)), describe_modules(layer)[""], {2: 28, 3: 28})
    assert solved is not None and solved[0] == {"output_padding": (1, 1)}


@settings(max_examples=60, deadline=None)
@given(size=st.integers(1, 60), k=st.integers(1, 7), s=st.integers(1, 4), p=st.integers(0, 3), d=st.integers(1, 3))
def test_size_derivation_matches_pytorch(size: int, k: int, s: int, p: int, d: int) -> None:
    if size + 2 * p < d * (k - 1) + 1:
        return
    layer = nn.Conv1d(2, 2, k, stride=s, padding=p, dilation=d)
    call = _call(layer, (1, 2, size))
    text = size_derivation(call, describe_modules(layer)[""])
    out = call.outputs[0].shape[-1]
    if out == size:
        assert text is None
        return
    assert text is not None and text.startswith(f"{out} = ")
    expr = text.split(" = ", 1)[1].replace("/", "//").replace("−", "-").replace("·", "*")
    assert eval(expr.replace("⌊", "(").replace("⌋", ")")) == out  # the printed arithmetic gives the real size


def test_module_config_is_plain_data() -> None:
    cfg = describe_modules(nn.Conv2d(1, 16, 5, padding=2))[""]
    assert isinstance(cfg, ModuleConfig) and copy.deepcopy(cfg) == cfg
    assert cfg.hyper["kernel_size"] == (5, 5) and cfg.hyper["bias"] is True


def test_a_model_that_cannot_be_copied_is_reported_not_crashed() -> None:
    import threading

    from broken import Conv1dNetWrong

    model = Conv1dNetWrong()
    model.lock = threading.Lock()  # type: ignore[assignment]  # deepcopy cannot copy a lock
    d = diagnose(model, (2, 8, 50))
    assert d.status == "stuck" and d.findings[0].fix == "nn.Linear(768, 4)" and not d.findings[0].applied
    assert d.stopped is not None and "could not be applied" in d.stopped


def test_a_layer_called_twice_is_followed_to_its_second_call() -> None:
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv1d(4, 4, 3)
            self.fc = nn.Linear(4 * 48, 2)  # sized for one conv; two make 50 → 48 → 46

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(self.conv(self.conv(x)).flatten(1))

    d = diagnose(Twice(), (2, 4, 50))
    assert [f.fix for f in d.findings] == ["nn.Linear(184, 2)"]
    assert d.findings[0].derivation == "184 = 4 × 46, the flattened output of conv#2 (4, 46), where 46 = 48 − 3 + 1"
    real = Twice()
    assert real.conv(real.conv(torch.randn(2, 4, 50))).flatten(1).shape[1] == 184
