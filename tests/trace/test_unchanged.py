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
