"""A real tensor the program keeps outside the model (a module-level counter, a CPU cache) and writes in place
during the forward: a meta/fake run writes it once, reads what the real forward reads after the write, and puts
it back when the run ends, so every analysis starts from the state the user left and leaves it so. (Under
FakeTensorMode an op of real tensors runs for real, and the shadow values ran it a second time: a counter
counted 2 per inspect, the shape it steers was wrong, and `aelab cost`'s second run saw a third state.)"""

from __future__ import annotations

import pytest
import torch
import torch.utils.flop_counter
from torch import nn

import aelab
from aelab.trace.realwrites import RealWrites, snapshot, written

STEPS = torch.zeros(1)
CACHE = torch.zeros(2, 3)


class Steered(nn.Module):
    """Counts its calls in a module-level tensor, and in one row of a module-level cache (through a view);
    keeps `count + 1` rows of its output: 2 after one call from zero."""

    def __init__(self, by_input: bool = False) -> None:
        super().__init__()
        self.by_input = by_input
        self.lin = nn.Linear(3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.by_input:  # the written value comes from the input's shape, through a tensor made here
            STEPS.add_(torch.ones(1) * (x.shape[0] - 3))
        else:
            STEPS.add_(1)
        CACHE[0].add_(2)
        return self.lin(x[: int(STEPS.item()) + 1])


def _state() -> tuple[list[float], list[list[float]]]:
    return STEPS.tolist(), CACHE.tolist()


def _real_run(model: Steered, x: torch.Tensor) -> tuple[int, int]:
    """The independent truth, rows and FlopCounterMode's count: the real forward (on a real copy of a meta model),
    from the state the user left, which is put back."""
    saved = STEPS.clone(), CACHE.clone()
    try:
        real = Steered(model.by_input) if model.lin.weight.is_meta else model
        with torch.utils.flop_counter.FlopCounterMode(display=False) as counter:
            rows = int(real(x).shape[0])
        return rows, counter.get_total_flops()
    finally:
        STEPS.copy_(saved[0])
        CACHE.copy_(saved[1])


@pytest.fixture(autouse=True)
def _fresh() -> None:
    STEPS.zero_()
    CACHE.zero_()


@pytest.mark.parametrize("device", ["cpu", "meta"])
@pytest.mark.parametrize("by_input", [False, True])
def test_every_analysis_reads_the_real_forwards_value_and_leaves_the_global_as_it_was(device: str,
                                                                                     by_input: bool) -> None:
    model = Steered(by_input).to(device)
    x = torch.randn(4, 3)
    rows, flops = _real_run(model, x)
    assert rows == 2
    before = _state()
    report = aelab.inspect(model, x)
    assert report.trace.calls[0].outputs[0].shape == (rows, 3)
    assert _state() == before
    assert aelab.cost(model, x).flops_forward == flops  # the second run starts from the same state
    assert _state() == before
    aelab.memory(model, x, device="cpu")
    assert _state() == before
    assert aelab.inspect(model, x).trace.calls[0].outputs[0].shape == (rows, 3)  # the next run: the same state


def test_a_write_that_left_the_bytes_is_told_from_one_that_changed_them() -> None:
    t = torch.tensor([1.0, float("nan")])
    before = snapshot(t)
    assert before is not None and not written(t, before)  # NaN is its own bytes
    t[0] = 5.0
    assert written(t, before)


def test_only_storages_from_outside_the_run_are_saved_and_each_once() -> None:
    outside, made = torch.zeros(3), torch.zeros(3)
    writes = RealWrites()
    writes.save(outside, snapshot(outside))  # type: ignore[arg-type]
    assert not writes._saved  # inactive: a real run writes what the user's forward would
    writes.active = True
    writes.made(made)
    first = snapshot(outside)
    assert first is not None
    writes.save(outside, first)
    outside.add_(1)
    writes.save(outside[1:], snapshot(outside))  # type: ignore[arg-type]  # the same storage: the first copy stays
    writes.save(made, snapshot(made))  # type: ignore[arg-type]
    made.add_(1)
    outside.add_(1)
    writes.restore()
    assert outside.tolist() == [0.0, 0.0, 0.0]
    assert made.tolist() == [1.0, 1.0, 1.0]


class Tally:
    """An object of the user's own, holding a real tensor: no stand-in reaches into it."""

    def __init__(self) -> None:
        self.seen = torch.zeros(1)


class Tallied(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.tally = Tally()
        self.lin = nn.Linear(3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.tally.seen.add_(1)
        return self.lin(x[: int(self.tally.seen.item()) + 1])


def test_a_tensor_in_an_object_of_the_users_is_written_once_and_put_back() -> None:
    model, x = Tallied(), torch.randn(4, 3)
    seen = model.tally.seen
    with torch.utils.flop_counter.FlopCounterMode(display=False) as counter:
        rows = Tallied()(x).shape[0]  # the truth: a fresh model's real forward
    assert aelab.inspect(model, x).trace.calls[0].outputs[0].shape == (rows, 3)
    assert aelab.cost(model, x).flops_forward == counter.get_total_flops()
    aelab.memory(model, x, device="cpu")
    assert model.tally.seen is seen and seen.tolist() == [0.0]
