"""Real architectures (transformers 5.24, diffusers 0.42, vector-quantize-pytorch, hand-written copies)
against independent truths, at batch 2: params = the unique-storage sum; forward, backward and
trainable-subset FLOPs = FlopCounterMode (+ the attention and grouped-mm formulas it lacks) on a real
CPU run; the model unchanged; the CLI's default path (built on meta) gives the same numbers."""

from __future__ import annotations

import json
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import torch

import aelab
from aelab.trace.inputs import parse_shape

sys.path.insert(0, str(Path(__file__).resolve().parent))  # --import-mode=importlib puts no test folder on the path
import zoo_models as models
from zoo_truth import assert_unchanged, counted_flops, fingerprint

from truth import unique_storage_params

pytestmark = pytest.mark.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parents[2]
# (model, check) -> why it fails today; strict, so a fix shows up as XPASS and the entry must go. The ladder
# that fixes them (issue 10) is the trace engineer's.
XFAIL: dict[tuple[str, str], str] = {}


def _real(spec_text: str) -> torch.Tensor:
    spec = parse_shape(spec_text)
    if spec.dtype.is_floating_point:
        return torch.randn(spec.shape, dtype=spec.dtype)
    high = 1000 if spec.name == "timestep" else models.VOCAB
    return torch.randint(0, high, spec.shape, dtype=spec.dtype)


def _inputs(case: models.Case) -> tuple[list[Any], dict[str, Any]]:
    torch.manual_seed(1)
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for text in case.inputs:
        name = parse_shape(text).name
        if name is None:
            args.append(_real(text))
        else:
            kwargs[name] = _real(text)
    return args, kwargs


@cache
def _model(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return getattr(models, models.ZOO[name].factory)()


@cache
def _truth(name: str) -> dict[str, int]:
    case = models.ZOO[name]
    model = _model(name)
    args, kwargs = _inputs(case)
    fwd, bwd = counted_flops(model, args, kwargs)
    _, subset = counted_flops(model, args, kwargs, freeze=case.freeze)
    return {"params": unique_storage_params(model), "flops_forward": fwd, "flops_backward": bwd,
            "flops_backward_subset": subset}


def _cases(check: str) -> list[Any]:
    return [pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=XFAIL[(name, check)]))
            if (name, check) in XFAIL else name for name in sorted(models.ZOO)]


@pytest.mark.parametrize("name", _cases("api"))
def test_inspect_equals_truth_and_leaves_the_model_unchanged(name: str) -> None:
    model = _model(name)
    truth = _truth(name)
    args, kwargs = _inputs(models.ZOO[name])
    before = fingerprint(model)
    report = aelab.inspect(model, *args, **kwargs)
    assert_unchanged(before, fingerprint(model))
    totals = report.summary.totals
    assert report.trace.error is None
    assert report.trace.execution == "fake"
    assert totals.not_counted == {}  # every op of the zoo has a formula (a zero is a stated convention)
    got = {"params": totals.params, "flops_forward": totals.flops_forward, "flops_backward": totals.flops_backward}
    assert got == {k: truth[k] for k in got}


@pytest.mark.parametrize("name", _cases("subset"))
def test_trainable_subset_backward_equals_truth(name: str) -> None:
    case = models.ZOO[name]
    model = _model(name)
    frozen = [p for n, p in model.named_parameters() if n.startswith(case.freeze)]
    assert frozen, f"{case.freeze} names no parameter"
    args, kwargs = _inputs(case)
    try:
        for p in frozen:
            p.requires_grad_(False)
        report = aelab.inspect(model, *args, **kwargs)
    finally:
        for p in frozen:
            p.requires_grad_(True)
    truth = _truth(name)
    assert truth["flops_backward_subset"] < truth["flops_backward"]
    assert report.summary.totals.flops_backward == truth["flops_backward_subset"]


@pytest.mark.parametrize("name", _cases("cli"))
def test_cli_default_path_equals_truth(cli, name: str) -> None:
    case = models.ZOO[name]
    argv = ["inspect", f"tests/zoo/zoo_models.py:{case.factory}", "--format", "json"]
    for text in case.inputs:
        argv += ["--input", text]
    out = cli(*argv, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    totals = json.loads(out.stdout)["totals"]
    truth = _truth(name)
    got = {k: totals[k] for k in ("params", "flops_forward", "flops_backward")}
    assert got == {k: truth[k] for k in got}
