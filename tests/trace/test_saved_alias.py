"""A subgraph no loss reaches (an encoder whose latent is quantised with `.byte()`: AutoencoderTiny) dies when the
forward returns, in aelab's runs as in a real one. Two references kept it: the saved-tensors pack hook returned the
tensor itself (its node keeps the packed tensor, which keeps its node: a cycle through C++ that Python's collector
cannot break), and autograd keeps the pack hook, which kept the run's state and every tensor in it. A recorded
real forward of such a model leaked its activations on every inspect; a training step's prediction kept them
alive through backward (AutoencoderTiny's steady peak was 41% over the measured one)."""

from __future__ import annotations

import gc
import weakref

import torch
from torch import nn

from aelab.trace.recorder import run
from aelab.trace.step import simulate


class Cut(nn.Module):
    """An encoder whose latent is stored as bytes: no gradient reaches it."""

    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.Linear(64, 64)
        self.dec = nn.Linear(64, 8)
        self.seen: list[weakref.ref[torch.Tensor]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = torch.tanh(self.enc(x))  # tanh keeps its output for backward
        self.seen.append(weakref.ref(z))
        codes = z.mul(255).round().byte()
        return self.dec(codes.float() / 255)


def test_a_recorded_real_forward_frees_the_subgraph_no_loss_reaches() -> None:
    model = Cut()
    run(model, [torch.randn(16, 64)], {}, execution="real", backward=True)
    gc.collect()
    assert model.seen and model.seen[-1]() is None


def test_a_simulated_step_frees_it_when_the_forward_returns_as_a_real_step_does() -> None:
    model, x = Cut(), torch.randn(16, 64)
    out = model(x)  # the truth: after a real forward, the encoder's activation is gone
    gc.collect()
    assert model.seen[-1]() is None
    del out
    log = simulate(model, [x], {}, {n: True for n, _ in model.named_parameters()}, optimizers=["sgd"], amp="off")
    backward = next(i for i, op in enumerate(log.ops) if op.phase == "backward")
    tanh_out = next(s.sid for s in log.storages if s.module == "" and s.op == "aten.tanh")
    died = [i for i, sid, d in log.events if sid == tanh_out and d < 0]
    assert died and died[0] < backward  # freed in the forward, never seen by backward
