"""Rung 1 runs shapes only first and redoes the run with values at the first op that needs one.

Truths: a real forward from the same RNG state (FlopCounterMode), the RNG states before inspect, and the number
of times the model's forward ran (counted by the model itself)."""

from __future__ import annotations

import numpy as np
import pytest
import seeds
import torch
from torch import nn

import aelab
from truth import flop_counter


class DrawsThenReads(nn.Module):
    """A LayerDrop that draws every decision first (torch's RNG on CPU, NumPy's, or a Generator the module holds),
    then reads a value the input decides, then applies the kept layers: the shapes-only run stops at the read,
    after the draws."""

    def __init__(self, source: str) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(8, 8) for _ in range(4))
        self.source = source
        self.rng = np.random.default_rng(0)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        draw = {"torch": lambda: float(torch.rand([])), "numpy": np.random.rand, "held": self.rng.random}
        drops = [draw[self.source]() < 0.5 for _ in self.layers]
        if bool((x.abs() >= 0).all()):  # a read the input decides: known without weights
            x = x * 2.0
        for layer, drop in zip(self.layers, drops, strict=True):
            if not drop:
                x = layer(x)
        return x


@pytest.mark.parametrize(("source", "device"), [("torch", "meta"), ("torch", "cpu"), ("numpy", "cpu"),
                                                    ("held", "cpu")])
def test_a_run_redone_with_values_draws_what_a_real_run_draws(source: str, device: str) -> None:
    # on meta a torch.rand([]) without a device is real (it draws); under FakeTensorMode it is fake until read
    with torch.device(device):
        model = DrawsThenReads(source)
    x = torch.randn(2, 8)
    real = DrawsThenReads(source)  # the truth's copy: FLOPs do not depend on the weights
    kept = set()
    for seed in range(8):
        torch.manual_seed(seed)
        np.random.seed(seed)
        model.rng = np.random.default_rng(seed)
        report = aelab.inspect(model, x)
        torch.manual_seed(seed)
        np.random.seed(seed)
        real.rng = np.random.default_rng(seed)
        truth = flop_counter(real, x)  # the same states: the same layers dropped
        assert (report.summary.totals.flops_forward, report.summary.totals.flops_backward) == truth, seed
        kept.add(truth[0])
    assert len(kept) > 1  # the seeds drop different layers: a redo that drew anew would show


def test_a_model_that_reads_no_value_runs_its_forward_once() -> None:
    class Counted(seeds.SeqVAE):
        calls = 0

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            type(self).calls += 1
            return super().forward(x)

    with torch.device("meta"):
        model = Counted()
    aelab.inspect(model, (1, 50, 201), backward=False)
    assert Counted.calls == 1
