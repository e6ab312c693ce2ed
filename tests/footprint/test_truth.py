"""The prediction against a real CPU training step, measured by the ledger (tests/footprint/ledger.py).

Eleven models, each with SGD, Adam and Adam under bf16 autocast; the first step (Adam creating its state)
and the steady state: predicted peak within 3% of the measured one. The ledger itself is checked
against glibc's in-use heap bytes.
"""

from __future__ import annotations

import functools

import pytest
import torch

from aelab.footprint.memory import memory
from footprint.ledger import Measured, measure_steps
from footprint.zoo import CASES, Case

TOLERANCE = 0.03
CONFIGS = [("sgd", "off"), ("adam", "off"), ("adam", "bf16")]


@functools.cache
def warmed() -> bool:
    """One throwaway step first: the first conv/LSTM/attention call of a process allocates caches for good."""
    for case in CASES:
        measure_steps(case.build(), case.inputs(), optimizer="sgd", steps=1)
    return True


@functools.cache
def measured(name: str, optimizer: str, amp: str) -> tuple[Measured, Measured]:
    warmed()
    case = _case(name)
    first, steady = measure_steps(case.build(), case.inputs(), optimizer=optimizer, amp=amp)
    return first, steady


@functools.cache
def predicted(name: str, amp: str) -> dict[str, tuple[int, int]]:
    """optimizer -> (first-step peak, steady peak); Adam's run carries SGD as its what-if."""
    case = _case(name)
    x = case.inputs()[0]
    report = memory(case.build(), x, optimizer="adam", amp=amp, device="cpu", what_if=(amp == "off"))
    out = {"adam": (report.first_step_peak_bytes, report.peak_bytes)}
    for w in report.what_if:
        if w.name == "optimizer":
            out["sgd"] = (w.first_step_peak_bytes, w.peak_bytes)
    return out


def _case(name: str) -> Case:
    return next(c for c in CASES if c.name == name)


@pytest.mark.parametrize("optimizer,amp", CONFIGS)
@pytest.mark.parametrize("name", [c.name for c in CASES])
def test_predicted_peak_matches_measured(name: str, optimizer: str, amp: str) -> None:
    first, steady = measured(name, optimizer, amp)
    p_first, p_steady = predicted(name, amp)[optimizer]
    assert abs(p_first / first.peak - 1) <= TOLERANCE, (p_first, first.peak)
    assert abs(p_steady / steady.peak - 1) <= TOLERANCE, (p_steady, steady.peak)


@pytest.mark.parametrize("name", [c.name for c in CASES])
def test_ledger_agrees_with_the_heap(name: str) -> None:
    """The ledger's rise over the steady step against glibc's: within 1% of the peak, plus 256 KiB of
    what is not a tensor (glibc's per-thread caches, the kernels' own scratch such as oneDNN's)."""
    _, steady = measured(name, "adam", "off")
    assert abs(steady.heap_rise - steady.ledger_rise) <= 0.01 * steady.peak + 256 * 1024, steady


def test_first_step_never_above_steady() -> None:
    for c in CASES:
        p_first, p_steady = predicted(c.name, "off")["adam"]
        assert p_first <= p_steady


def test_lstm_workspace_is_corrected_and_listed() -> None:
    case = _case("lstm_ae")
    report = memory(case.build(), case.inputs()[0], optimizer="sgd", device="cpu", what_if=False)
    assert report.corrections and "mkldnn_rnn_layer" in report.corrections[0]
    first, _ = measured("lstm_ae", "sgd", "off")
    assert abs(report.first_step_peak_bytes / first.peak - 1) <= TOLERANCE


def test_model_is_untouched() -> None:
    case = _case("half_frozen")
    model = case.build()
    before = {n: (p.requires_grad, p.detach().clone()) for n, p in model.named_parameters()}
    model.eval()
    memory(model, case.inputs()[0], optimizer="adam", device="cpu", what_if=False)
    assert not model.training
    for n, p in model.named_parameters():
        assert p.grad is None and p.requires_grad == before[n][0] and torch.equal(p, before[n][1])
