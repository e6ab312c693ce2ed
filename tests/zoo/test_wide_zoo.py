"""The wide zoo (tests/zoo/wide_models.py) at batch 2, against the zoo's truths: params = the unique-storage sum,
forward and backward FLOPs = FlopCounterMode (+ the formulas it lacks) on a real CPU run, every op counted, the
model unchanged; and the CLI's default path (built on meta) gives the same numbers."""

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
import wide_models as models
from zoo_truth import assert_unchanged, counted_flops, fingerprint

from truth import unique_storage_params

pytestmark = pytest.mark.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parents[2]
HIGH = {"timestep": 1000, "class_labels": 10}  # integer inputs other than tokens, and their range


def _inputs(name: str) -> tuple[list[Any], dict[str, Any]]:
    torch.manual_seed(1)
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for text in models.INPUTS[name]:
        spec = parse_shape(text)
        value = torch.randn(spec.shape, dtype=spec.dtype) if spec.dtype.is_floating_point else \
            torch.randint(0, HIGH.get(spec.name or "", models.V), spec.shape, dtype=spec.dtype)
        if spec.name is None:
            args.append(value)
        else:
            kwargs[spec.name] = value
    return args, kwargs


@cache
def _model(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return models.build(name)


@cache
def _truth(name: str) -> dict[str, int]:
    model = _model(name)
    args, kwargs = _inputs(name)
    fwd, bwd = counted_flops(model, args, kwargs)
    return {"params": unique_storage_params(model), "flops_forward": fwd, "flops_backward": bwd}


@pytest.mark.parametrize("name", sorted(models.BUILDS))
def test_inspect_equals_truth_counts_every_op_and_leaves_the_model_unchanged(name: str) -> None:
    model = _model(name)
    args, kwargs = _inputs(name)
    before = fingerprint(model)
    report = aelab.inspect(model, *args, **kwargs)
    assert_unchanged(before, fingerprint(model))
    totals = report.summary.totals
    assert report.trace.error is None and report.trace.execution == "fake"
    assert totals.not_counted == {}
    got = {"params": totals.params, "flops_forward": totals.flops_forward, "flops_backward": totals.flops_backward}
    assert got == _truth(name)


@pytest.mark.parametrize("name", sorted(models.BUILDS))
def test_cli_default_path_equals_truth(cli, name: str) -> None:
    argv = ["inspect", f"tests/zoo/wide_models.py:{name}", "--format", "json"]
    for text in models.INPUTS[name]:
        argv += ["--input", text]
    out = cli(*argv, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["execution"] == "meta"
    totals = report["totals"]
    assert {k: totals[k] for k in ("params", "flops_forward", "flops_backward")} == _truth(name)


# What each model is, by design: a language model, classifier or feature extractor does not reconstruct its
# input; an encoder-decoder maps one sequence to another; a VAE compresses; a diffusion denoiser predicts the
# noise of its input's shape through skip connections that carry more than its narrowest value.
KIND = {**{name: "Not an autoencoder" for name in models.BUILDS},
        **{name: "Sequence-to-sequence, not an autoencoder" for name in ("pegasus", "mbart", "switch", "longt5",
                                                                          "moonshine")},
        "ae_tiny": "Compresses", "wan_vae": "Compresses",
        **{name: "Not a bottleneck: skip connections" for name in ("unet_cond", "dit", "sd3", "flux")}}


@pytest.mark.parametrize("name", sorted(models.BUILDS))
def test_the_verdict_says_what_the_model_is(name: str) -> None:
    args, kwargs = _inputs(name)
    bottleneck = aelab.inspect(_model(name), *args, backward=False, **kwargs).bottleneck
    assert bottleneck is not None and bottleneck.verdict.startswith(KIND[name]), bottleneck.verdict
    if models.INPUTS[name] == models.TOKENS:  # a language model: no "bottleneck" at a norm or an MoE's routing
        assert "no representation on its data path is narrower than the input" in bottleneck.verdict


# Grouped-mm experts (transformers 5's default): the meta/fake kernel of `aten._grouped_mm` wants bf16, the CPU
# one runs fp32. `aelab memory` and `cost --graph` stopped there ("the simulated training step failed").
MOE = ("qwen2_moe", "olmoe", "gpt_oss", "deepseek_v3", "jamba")


# ... and others whose step has something the ten of tests/footprint lack: AutoencoderTiny's encoder is cut off
# from the loss by `.byte()` (its activations die with the forward), Wan's causal 3D convolutions keep a feature
# cache, Mamba-2's chunked scan, HuBERT's conv stem and positional conv, Swin's shifted windows, cross-attention
# (Stable Diffusion's UNet, SD3's joint attention) with keyword inputs.
MEASURED = (*MOE, "ae_tiny", "wan_vae", "mamba2", "hubert", "swin", "unet_cond", "sd3")


@pytest.mark.parametrize("name", MEASURED)
def test_memory_equals_a_measured_training_step(name: str) -> None:
    from footprint.ledger import measure_steps

    args, kwargs = _inputs(name)
    first, steady = measure_steps(models.build(name), args, optimizer="adam", kwinputs=kwargs)
    report = aelab.memory(models.build(name), *args, optimizer="adam", device="cpu", what_if=False, **kwargs)
    assert abs(report.first_step_peak_bytes / first.peak - 1) <= 0.03, (report.first_step_peak_bytes, first.peak)
    assert abs(report.peak_bytes / steady.peak - 1) <= 0.03, (report.peak_bytes, steady.peak)
    if name in MOE:
        assert any("aten._grouped_mm" in c for c in report.corrections)


def _real_graph_labels(model: torch.nn.Module, args: list[Any]) -> list[str]:
    """Every node of autograd's graph of a real forward, by name (the truth for the fake one)."""
    out = model(*args)
    logits = out.logits if hasattr(out, "logits") else out[0]
    seen: set[Any] = set()
    todo = [logits.grad_fn]
    while todo:
        node = todo.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        todo.extend(n for n, _ in node.next_functions)
    # a real CPU reshape of a view may be `_reshape_alias`, a fake or meta one is `view`: one backward either way
    return sorted(type(n).__name__.replace("ReshapeAliasBackward0", "ViewBackward0") for n in seen)


@pytest.mark.parametrize("name", MOE[:2])
def test_the_backward_graph_of_a_grouped_mm_moe_is_the_real_ones(name: str) -> None:
    from aelab.trace.autograd_graph import autograd_graph

    model = _model(name)
    args, _ = _inputs(name)
    graph = autograd_graph(model, args, {n: True for n, _ in model.named_parameters()})
    labels = sorted(n.label for n in graph.nodes)
    assert "GroupedMmBackward0" in labels
    assert labels == _real_graph_labels(model, args)
