"""`F.scaled_dot_product_attention` on meta runs the kernel a CPU run would pick.

torch chooses the attention kernel per device (`torch._fused_sdp_choice`); meta has no choice of its
own, so on meta the call decomposes into the math path (bmm + softmax + bmm), while a CPU run (which
a meta trace stands for: its values come from CPU) calls `aten._scaled_dot_product_flash_attention_for_cpu`,
whose backward recomputes the scores. Counting the math path misses 2·B·H·Lq·Lk·E FLOPs of backward per
attention and saves the wrong tensors for backward.

`redirect` asks CPU's selection on stand-ins that match what it reads (sizes, strides, dtypes, the
mask's presence, shape and `requires_grad`, dropout, causality, GQA) and, when it answers flash, runs the
same aten calls the CPU kernel selection makes (a boolean mask turned additive by `where`, then the flash
op) on the meta tensors. Anything it is unsure of (another choice, nested or non-strided tensors,
stand-ins too large to lay out, a choice that raises) keeps today's path: `None`.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import _disable_current_modes

SDPA = (F.scaled_dot_product_attention, torch._C._nn.scaled_dot_product_attention)
_FLASH = int(torch.nn.attention.SDPBackend.FLASH_ATTENTION.value)
_NAMES = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa")
_MAX_STAND_IN_BYTES = 1 << 30  # untouched `empty_strided` pages cost address space, not memory


def _bind(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any] | None:
    bound = dict(zip(_NAMES, args, strict=False))
    for key, value in kwargs.items():
        if key not in _NAMES or key in bound:
            return None
        bound[key] = value
    return bound if all(k in bound for k in _NAMES[:3]) else None


def _stand_in(t: torch.Tensor) -> torch.Tensor:
    """A CPU tensor with `t`'s sizes, strides, dtype and `requires_grad`; its values are never read."""
    s = torch.empty_strided(t.size(), t.stride(), dtype=t.dtype, device="cpu")
    return s.requires_grad_(t.requires_grad) if t.requires_grad and s.is_floating_point() else s


def _span_bytes(t: torch.Tensor) -> int:
    if t.numel() == 0:
        return 0
    return (1 + sum((n - 1) * abs(s) for n, s in zip(t.size(), t.stride(), strict=True))) * t.element_size()


def _cpu_choice(p: dict[str, Any]) -> int | None:
    q, k, v, mask = p["query"], p["key"], p["value"], p.get("attn_mask")
    tensors = [q, k, v] + ([mask] if mask is not None else [])
    if not all(type(t) is torch.Tensor or isinstance(t, torch.nn.Parameter) for t in tensors):
        return None
    if any(t.device.type != "meta" or t.layout != torch.strided or t.is_nested for t in tensors):
        return None
    if sum(_span_bytes(t) for t in tensors) > _MAX_STAND_IN_BYTES:
        return None
    try:
        with _disable_current_modes(), torch._C.DisableTorchFunction():
            cq, ck, cv = (_stand_in(t) for t in (q, k, v))
            cmask = _stand_in(mask) if mask is not None else None
            return int(torch._fused_sdp_choice(cq, ck, cv, attn_mask=cmask, dropout_p=float(p.get("dropout_p", 0.0)),
                                               is_causal=bool(p.get("is_causal", False)), scale=p.get("scale"),
                                               enable_gqa=bool(p.get("enable_gqa", False))))
    except Exception:
        return None


def redirect(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The output of `func(*args, **kwargs)` computed by the kernel CPU would choose, or None to run `func`."""
    if func not in SDPA or _autocasting():  # autocast casts for sdpa, not for the op called directly
        return None
    p = _bind(tuple(args), kwargs)
    if p is None or _cpu_choice(p) != _FLASH:
        return None
    q, mask = p["query"], p.get("attn_mask")
    if mask is not None and mask.dtype == torch.bool:  # what sdpa does before the flash call (an additive mask)
        zero = torch.scalar_tensor(0.0, dtype=q.dtype, device=q.device)
        neg_inf = torch.scalar_tensor(float("-inf"), dtype=q.dtype, device=q.device)
        mask = torch.where(mask, zero, neg_inf)
    out = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
        q, p["key"], p["value"], float(p.get("dropout_p", 0.0)), bool(p.get("is_causal", False)),
        attn_mask=mask, scale=p.get("scale"))
    return out[0]


def _autocasting() -> bool:
    return torch.is_autocast_enabled() or torch.is_autocast_enabled("cpu")

