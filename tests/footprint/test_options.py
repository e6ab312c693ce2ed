"""The other optimizers and the checkpointing what-if, against the ledger."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from aelab.footprint.memory import memory
from footprint.ledger import measure_steps
from footprint.zoo import CASES, Checkpointed


@pytest.mark.parametrize("optimizer", ["sgd-momentum", "adamw"])
def test_other_optimizers_match_measured(optimizer: str) -> None:
    case = next(c for c in CASES if c.name == "conv_ae")
    first, steady = measure_steps(case.build(), case.inputs(), optimizer=optimizer)
    report = memory(case.build(), case.inputs()[0], optimizer=optimizer, device="cpu", what_if=False)
    assert report.first_step_peak_bytes == first.peak and report.peak_bytes == steady.peak


class Plain(Checkpointed):
    """The same FFN stack without torch.utils.checkpoint."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for b in self.blocks:
            x = x + b(x)
        return x


def test_checkpoint_what_if_matches_a_measured_checkpointed_step() -> None:
    torch.manual_seed(0)
    plain = Plain()
    x = torch.randn(1024, 256)  # activations above the weights, so checkpointing shows
    report = memory(plain, x, optimizer="sgd", device="cpu", checkpoint=["blocks.*"])
    what = next(w for w in report.what_if if w.name == "checkpoint")
    torch.manual_seed(0)
    first, steady = measure_steps(Checkpointed(), [x], optimizer="sgd")
    assert abs(what.peak_bytes / steady.peak - 1) <= 0.03 and abs(what.first_step_peak_bytes / first.peak - 1) <= 0.03
    assert what.peak_bytes < report.peak_bytes  # checkpointing saves here


def test_frozen_what_if_is_every_parameter_trainable() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(256, 1024), nn.ReLU(), nn.Linear(1024, 64))
    x = torch.randn(32, 256)
    report = memory(net, x, optimizer="adam", device="cpu", freeze=["0"])
    what = next(w for w in report.what_if if w.name == "trainable")
    full = memory(net, x, optimizer="adam", device="cpu", what_if=False)
    assert what.peak_bytes == full.peak_bytes > report.peak_bytes
