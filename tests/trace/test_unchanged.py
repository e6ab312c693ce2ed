"""The user's model leaves inspect exactly as it came in: device, dtype, mode, requires_grad, hooks, state."""

from __future__ import annotations

import seeds
import torch
from torch import nn

import aelab


def _state(model: nn.Module) -> dict[str, object]:
    return {
        "training": [m.training for m in model.modules()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "grads": [p.grad is None for p in model.parameters()],
        "devices": {str(t.device) for t in model.state_dict().values()},
        "dtypes": [t.dtype for t in model.state_dict().values()],
        "keys": list(model.state_dict()),
        "hooks": [(len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks)) for m in model.modules()],
        "global_hooks": (len(nn.modules.module._global_forward_hooks),
                         len(nn.modules.module._global_forward_pre_hooks)),
        "validate": torch.distributions.Distribution._validate_args,
        "rsample": torch.distributions.Normal.rsample,
    }


def test_model_comes_out_unchanged() -> None:
    torch.manual_seed(0)
    model = seeds.SeqVAE().double()
    model.encoder.eval()  # mixed modes
    for p in model.decoder.fc[1].parameters():
        p.requires_grad_(False)  # a frozen layer
    calls = []
    model.encoder.register_forward_hook(lambda *a: calls.append(1))
    before_state = _state(model)
    before_values = {k: v.clone() for k, v in model.state_dict().items()}

    report = aelab.inspect(model, torch.randn(2, 20, 201, dtype=torch.float64))

    assert report.trace.error is None
    assert _state(model) == before_state
    after = model.state_dict()
    assert all(torch.equal(before_values[k], after[k]) for k in before_values)  # BatchNorm stats untouched
    assert calls == [1]  # the user's own hook ran once, during the trace, and is still registered
    assert report.summary.totals.frozen_params == sum(p.numel() for p in model.decoder.fc[1].parameters())


def test_meta_model_and_failing_model_come_out_unchanged() -> None:
    with torch.device("meta"):
        model = seeds.AE()
    before = _state(model)
    aelab.inspect(model, (1, 784))
    assert _state(model) == before

    broken = __import__("broken").ConvNet2dWrong()
    before = _state(broken)
    report = aelab.inspect(broken, (1, 1, 28, 28))
    assert report.trace.error is not None
    assert _state(broken) == before


class RefusesFake(nn.Module):
    """Python code that refuses fake tensors though a real forward runs: the trace is a recorded real forward
    (rung 3). Its forward writes its buffers (BatchNorm's statistics, a counter, a view kept beside one)."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(4)
        self.register_buffer("calls", torch.tensor(1))
        self.alias = self.calls.view(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if isinstance(x, torch._subclasses.fake_tensor.FakeTensor):
            raise RuntimeError("this layer wants real tensors")
        self.calls.add_(1)
        self.alias.mul_(3)
        return self.norm(x).repeat(1, 2)[:, : int(self.calls)]


def test_a_recorded_real_forward_of_a_model_with_weights_writes_copies_of_its_buffers() -> None:
    torch.manual_seed(0)
    model = RefusesFake()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    tensors = [model.calls, model.alias, model.norm.running_mean, model.norm.running_var]
    report = aelab.inspect(model, torch.randn(3, 4))
    assert report.trace.execution == "real" and any("but a real forward runs" in n for n in report.notes)
    assert report.trace.outputs[0].shape == (3, 6)  # (1 + 1) * 3: the alias's write reached the copy's count
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # they were: calls 6, the statistics moved
    now = [model.calls, model.alias, model.norm.running_mean, model.norm.running_var]
    assert all(a is b for a, b in zip(now, tensors, strict=True)) and int(model.alias) == 1
