"""The zoo's independent truth: FlopCounterMode on a real CPU run, plus the kernels it has no formula for.

torch 2.13's FlopCounterMode counts 0 for the CPU flash-attention kernels, `aten._grouped_mm` and cdist's
`aten._euclidean_dist`; the truth adds torch's own attention formulas (`sdpa_flop_count`,
`sdpa_backward_flop_count`, the ones it uses for the CUDA kernels), the grouped-mm count checked against
per-group mm and the cdist count checked against torch's decomposition, both in
tests/trace/test_flops_registry.py. Nothing here reads aelab's registry.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from truth import CPU_ATTENTION, flop_counter

aten = torch.ops.aten


def _grouped_mm(a: Any, b: Any, *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    """Each output element of a grouped product is one length-K dot product (K = the contraction of the
    group it falls in); a (M, K_total) x (K_total, N) contraction split gives G outputs whose K's sum to K_total."""
    contraction = a[-1]
    if len(a) == 2 and len(b) == 2:  # (G, M, N) out, groups split K
        return 2 * a[0] * contraction * b[1]
    return 2 * int(torch.Size(out_shape).numel()) * contraction


def _euclidean_dist(a: Any, b: Any, *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    """`torch.cdist` on CPU: torch's decomposition is one matmul of the operands padded with their squared norms
    and ones, (P, M+2) x (M+2, R) per batch (checked against that decomposition in test_flops_registry.py)."""
    batch = 1
    for n in a[:-2]:
        batch *= n
    return 2 * batch * a[-2] * b[-2] * (a[-1] + 2)


MISSING_FORMULAS = {**CPU_ATTENTION, aten._grouped_mm: _grouped_mm, aten._euclidean_dist: _euclidean_dist}


def counted_flops(model: nn.Module, args: list[Any], kwargs: dict[str, Any], freeze: str = "") -> tuple[int, int]:
    """(forward, backward) FLOPs on a real copy of `model`, counting the formulas FlopCounterMode lacks;
    backward w.r.t. the parameters not under `freeze`, as aelab defines it."""
    return flop_counter(model, *args, mapping=MISSING_FORMULAS, kwinputs=kwargs, freeze=freeze)


def fingerprint(model: nn.Module) -> dict[str, Any]:
    """What a run must leave as it was: every tensor's values, the flags, no .grad."""
    return {"state": {k: v.detach().clone() for k, v in model.state_dict(keep_vars=True).items()},
            "requires_grad": {n: p.requires_grad for n, p in model.named_parameters()},
            "training": {n: m.training for n, m in model.named_modules()},
            "grads": [n for n, p in model.named_parameters() if p.grad is not None],
            "ties": sorted({n for n, _ in model.named_parameters(remove_duplicate=False)}
                           - {n for n, _ in model.named_parameters()})}


def assert_unchanged(before: dict[str, Any], after: dict[str, Any]) -> None:
    assert before["requires_grad"] == after["requires_grad"]
    assert before["training"] == after["training"]
    assert before["grads"] == after["grads"] == []
    assert before["ties"] == after["ties"]
    assert before["state"].keys() == after["state"].keys()
    for key, value in before["state"].items():
        assert torch.equal(value, after["state"][key]), f"{key} changed"
