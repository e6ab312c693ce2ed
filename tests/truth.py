"""Independent truths the tests compare aelab with: real forward hooks, FlopCounterMode, storage sums."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, flop_registry, sdpa_backward_flop_count, sdpa_flop_count

from aelab.trace.records import Trace
from aelab.trace.tensors import flatten_tensors


def unique_storage_params(model: nn.Module) -> int:
    """Parameters summed once per storage (tied weights once), straight from the tensors' storages."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for _, p in model.named_parameters(remove_duplicate=False):
        key = (p.untyped_storage().data_ptr(), p.storage_offset())
        if key not in seen:
            seen.add(key)
            total += p.numel()
    return total


def _sdpa(query: Any, key: Any, value: Any, *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    return int(sdpa_flop_count(query, key, value))


def _sdpa_backward(grad_out: Any, query: Any, key: Any, value: Any, *args: Any, out_shape: Any = None,
                   **kwargs: Any) -> int:
    return int(sdpa_backward_flop_count(grad_out, query, key, value))


#: torch's own attention formulas (those of the CUDA kernels) for CPU's fused attention, which
#: FlopCounterMode counts as 0: `flop_counter(..., mapping=CPU_ATTENTION)` is a real CPU run's count.
CPU_ATTENTION = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _sdpa,
                 torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward: _sdpa_backward}


def flop_counter(model: nn.Module, *inputs: torch.Tensor, mapping: Any = None,
                 kwinputs: dict[str, Any] | None = None, freeze: str = "") -> tuple[int, int]:
    """(forward, backward) FLOPs by FlopCounterMode on a real copy; backward of the sum of all outputs
    with respect to the trainable parameters (those not under the name prefix `freeze`), like aelab's
    recorder. `mapping`: formulas it lacks."""
    real = copy.deepcopy(model)
    if freeze:
        for name, p in real.named_parameters():
            if name.startswith(freeze):
                p.requires_grad_(False)
    with FlopCounterMode(display=False, custom_mapping=mapping) as fwd:
        out = real(*inputs, **(kwinputs or {}))
    diff = [t for t in flatten_tensors(out) if t.requires_grad and t.is_floating_point()]
    trainable = [p for p in real.parameters() if p.requires_grad]
    backward = 0
    if diff and trainable:
        loss = torch.stack([t.float().sum() for t in diff]).sum()
        with FlopCounterMode(display=False, custom_mapping=mapping) as bwd:
            torch.autograd.grad(loss, trainable, allow_unused=True)
        backward = bwd.get_total_flops()
    return fwd.get_total_flops(), backward


def aelab_flops_torch_counts(trace: Trace, phase: str) -> int:
    """aelab's FLOPs restricted to the ops torch.utils.flop_counter has formulas for."""
    packets = {str(p) for p in flop_registry}
    return sum(op.flops for op in trace.ops if op.phase == phase and op.name in packets)


def hook_shapes(model: nn.Module, *inputs: torch.Tensor) -> dict[str, tuple[list[Any], list[Any]]]:
    """Module path -> (input shapes, output shapes) of its first call, seen by forward hooks on real tensors."""
    real = copy.deepcopy(model)
    seen: dict[str, tuple[list[Any], list[Any]]] = {}
    handles = []
    for name, module in real.named_modules():
        if not name:
            continue

        def hook(mod: nn.Module, args: Any, kwargs: Any, out: Any, name: str = name) -> None:
            if name not in seen:
                seen[name] = ([tuple(t.shape) for t in flatten_tensors((args, kwargs))],
                              [tuple(t.shape) for t in flatten_tensors(out)])

        handles.append(module.register_forward_hook(hook, with_kwargs=True))
    with torch.no_grad():
        real(*inputs)
    for h in handles:
        h.remove()
    return seen
