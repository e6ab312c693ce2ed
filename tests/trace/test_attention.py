"""On meta, `F.scaled_dot_product_attention` runs the aten calls a CPU run makes (trace/attention.py)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from aelab.trace import attention


class _Log(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.ops: list[tuple[str, list[tuple[Any, ...]]]] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        outs = [o for o in tree_leaves(out) if isinstance(o, torch.Tensor)]
        self.ops.append((str(func.overloadpacket), [(tuple(o.shape), o.stride(), o.dtype) for o in outs]))
        return out


def _ops(device: str, q_shape: tuple[int, ...], kv_shape: tuple[int, ...], dtype: torch.dtype,
         kw: dict[str, Any]) -> list[tuple[str, list[tuple[Any, ...]]]]:
    q, k, v = (torch.zeros(s, dtype=dtype, device=device, requires_grad=True) for s in (q_shape, kv_shape, kv_shape))
    kw = {n: x.to(device) if isinstance(x, torch.Tensor) else x for n, x in kw.items()}
    with _Log() as log:
        out = attention.redirect(F.scaled_dot_product_attention, (q, k, v), kw) if device == "meta" else None
        if out is None:
            out = F.scaled_dot_product_attention(q, k, v, **kw)
        out.float().sum().backward()
    return log.ops


MASK = torch.ones(12, 12, dtype=torch.bool).tril()


@pytest.mark.parametrize("q_shape,kv_shape,dtype,kw", [
    ((2, 4, 12, 8), (2, 4, 12, 8), torch.float32, {}),
    ((2, 4, 12, 8), (2, 4, 12, 8), torch.float32, {"is_causal": True, "scale": 0.5}),
    ((2, 4, 12, 8), (2, 4, 12, 8), torch.float32, {"attn_mask": MASK}),  # bool: made additive first
    ((2, 4, 12, 8), (2, 4, 12, 8), torch.bfloat16, {"attn_mask": MASK}),
    ((2, 4, 12, 8), (2, 4, 7, 8), torch.float32, {"attn_mask": torch.zeros(2, 1, 12, 7)}),
    ((2, 4, 12, 8), (2, 2, 12, 8), torch.float32, {"enable_gqa": True}),  # CPU: math
    ((4, 12, 8), (4, 12, 8), torch.float32, {}),  # 3-d: math
])
def test_meta_runs_the_aten_calls_of_a_cpu_run(q_shape: Any, kv_shape: Any, dtype: Any, kw: dict[str, Any]) -> None:
    cpu = _ops("cpu", q_shape, kv_shape, dtype, kw)
    assert _ops("meta", q_shape, kv_shape, dtype, kw) == cpu


def test_dropout_keeps_the_math_path_as_cpu_does() -> None:
    q = torch.zeros(2, 4, 12, 8, device="meta")
    assert attention.redirect(F.scaled_dot_product_attention, (q, q, q), {"dropout_p": 0.1}) is None
    assert attention.redirect(F.scaled_dot_product_attention, (q, q, q), {}) is not None



def test_under_autocast_the_math_path_stays() -> None:  # autocast casts for sdpa, not for the op called directly
    q = torch.zeros(2, 4, 12, 8, device="meta")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert attention.redirect(F.scaled_dot_product_attention, (q, q, q), {}) is None
