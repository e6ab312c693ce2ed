"""`fit`: the predicted largest batch is the largest whose measured peak fits the budget."""

from __future__ import annotations

import pytest

from aelab.errors import UsageError
from aelab.footprint.memory import memory, parse_size
from footprint.ledger import measure_steps
from footprint.zoo import CASES


def measured_peak(name: str, batch: int, optimizer: str) -> int:
    case = next(c for c in CASES if c.name == name)
    first, steady = measure_steps(case.build(), case.inputs(batch), optimizer=optimizer)
    return max(first.peak, steady.peak)


@pytest.mark.parametrize("name,optimizer,batch", [("mlp", "adam", 37), ("conv_ae", "sgd", 23), ("gpt2", "adam", 9)])
def test_max_batch_is_the_largest_that_fits_when_measured(name: str, optimizer: str, batch: int) -> None:
    low, high = measured_peak(name, batch, optimizer), measured_peak(name, batch + 1, optimizer)
    budget = low + (high - low) // 3  # between two batches, not on either
    case = next(c for c in CASES if c.name == name)
    report = memory(case.build(), case.inputs()[0], optimizer=optimizer, device="cpu", fit=budget, what_if=False)
    assert report.max_batch is not None
    found = report.max_batch.batch
    assert measured_peak(name, found, optimizer) <= budget < measured_peak(name, found + 1, optimizer)
    assert found == batch
    assert report.max_batch.predictions <= 8


def test_nothing_fits() -> None:
    case = CASES[0]
    report = memory(case.build(), case.inputs()[0], device="cpu", fit="1MB", what_if=False)
    assert report.max_batch is not None and report.max_batch.batch == 0


@pytest.mark.parametrize("text,value", [("80GB", 80 * 10**9), ("24GiB", 24 * 2**30), ("512 MiB", 512 * 2**20),
                                        ("1000", 1000), ("1.5GB", 1_500_000_000)])
def test_parse_size(text: str, value: int) -> None:
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["0", "12XB", "-3GB", "GB", "0GiB"])
def test_parse_size_refuses(text: str) -> None:
    with pytest.raises(UsageError):
        parse_size(text)
