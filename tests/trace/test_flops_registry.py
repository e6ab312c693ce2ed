"""The FLOP registry refuses what it cannot use, and `_grouped_mm` counts what per-group mm would."""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from aelab.trace import flops
from aelab.trace.flops import RegistryError


def _zero(args: Any, kwargs: Any, out: Any) -> int:
    return 0


def test_unknown_op_name_is_refused() -> None:
    size = len(flops.REGISTRY)
    with pytest.raises(RegistryError, match=r"aten\.relu_typo is not an op"):
        flops.register("elementwise", _zero, "relu_typo")
    assert len(flops.REGISTRY) == size


def test_second_formula_for_an_op_is_refused() -> None:
    before = flops.REGISTRY[torch.ops.aten.add]
    with pytest.raises(RegistryError, match="has a FLOP formula already"):
        flops.register("movement", _zero, "add")
    with pytest.raises(RegistryError, match="has a FLOP formula already"):
        flops.register("matmul", _zero, "mm")  # torch's own entries are in the registry too
    assert flops.REGISTRY[torch.ops.aten.add] is before


def test_unknown_category_is_refused() -> None:
    with pytest.raises(RegistryError, match="unknown category"):
        flops.register("magic", _zero, "histc")


@pytest.mark.parametrize("line", ['register("elementwise", _out_numel, "not_an_aten_op")',
                                  'register("reduction", _in_numel, "sigmoid")'])
def test_a_bad_entry_fails_at_import(tmp_path: Path, line: str) -> None:
    """The module itself, with one bad line appended, does not import."""
    source = Path(flops.__file__).read_text() + "\n" + line + "\n"
    path = tmp_path / "flops_copy.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("flops_copy", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["flops_copy"] = module  # dataclasses look their module up while the class is built
    try:
        with pytest.raises(Exception) as raised:
            spec.loader.exec_module(module)
        assert type(raised.value).__name__ == "RegistryError"  # the copy's own class
    finally:
        del sys.modules["flops_copy"]


class _Counted(TorchDispatchMode):
    """aelab's formulas over every kernel that really runs (forward and backward)."""

    def __init__(self) -> None:
        super().__init__()
        self.flops: dict[str, int] = {}

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        counted = flops.count(func, args, kwargs or {}, out)
        if counted is not None and counted[0] == "matmul":
            self.flops[str(func.overloadpacket)] = self.flops.get(str(func.overloadpacket), 0) + counted[1]
        return out


def _per_group(a: torch.Tensor, b: torch.Tensor, offs: torch.Tensor | None) -> torch.Tensor:
    """The same product as `_grouped_mm`, one `mm` per group (what FlopCounterMode can count)."""
    if offs is None:
        return torch.stack([a[g] @ b[g] for g in range(a.shape[0])])
    ends = offs.tolist()
    starts = [0, *ends[:-1]]
    if a.dim() == 2 and b.dim() == 3:
        return torch.cat([a[s:e] @ b[g] for g, (s, e) in enumerate(zip(starts, ends, strict=True))])
    if a.dim() == 3:
        return torch.cat([a[g] @ b[:, s:e] for g, (s, e) in enumerate(zip(starts, ends, strict=True))], dim=1)
    return torch.stack([a[:, s:e] @ b[s:e] for s, e in zip(starts, ends, strict=True)])


G, M, K, N = 3, 16, 8, 12
LAYOUTS = {  # (a shape, b shape, offs): the four layouts torch._grouped_mm accepts
    "rows (M,K)x(G,K,N)": ((M, K), (G, K, N), [3, 9, 16]),
    "columns (G,M,K)x(K,N)": ((G, M, K), (K, 3 * N), [4, 20, 36]),
    "contraction (M,K)x(K,N)": ((M, 2 * K), (2 * K, N), [4, 8, 16]),
    "batched (G,M,K)x(G,K,N)": ((G, M, K), (G, K, N), None),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_grouped_mm_forward_and_backward_equal_per_group_mm(layout: str) -> None:
    torch.manual_seed(0)
    a_shape, b_shape, ends = LAYOUTS[layout]
    offs = torch.tensor(ends, dtype=torch.int32) if ends is not None else None
    a = torch.randn(a_shape, requires_grad=True)
    b = torch.randn(b_shape, requires_grad=True)
    ours_fwd, ours_bwd = _Counted(), _Counted()
    with ours_fwd:
        out = torch._grouped_mm(a, b, offs=offs)
    weight = torch.randn(out.shape)  # a loss whose gradient is dense (the CPU kernel refuses stride-0 grads)
    with ours_bwd:
        torch.autograd.grad((out * weight).sum(), [a, b])
    with FlopCounterMode(display=False) as fwd:
        ref = _per_group(a, b, offs)
    with FlopCounterMode(display=False) as bwd:
        torch.autograd.grad((ref * weight).sum(), [a, b])
    torch.testing.assert_close(out, ref)
    assert ours_fwd.flops == {"aten._grouped_mm": fwd.get_total_flops()}
    assert ours_bwd.flops == {"aten._grouped_mm": bwd.get_total_flops()}
    assert bwd.get_total_flops() == 2 * fwd.get_total_flops()


def test_grouped_mm_by_hand() -> None:
    """Mixtral-shaped experts: 2 x 7 tokens, top-2 of 4 experts, hidden 32 -> 2 x 48 (gate and up)."""
    tokens = 2 * 7 * 2
    a = torch.randn(tokens, 32)
    b = torch.randn(4, 32, 96)
    offs = torch.tensor([5, 12, 20, 28], dtype=torch.int32)
    out = torch._grouped_mm(a, b, offs=offs)
    assert flops.count(torch.ops.aten._grouped_mm.default, (a, b, offs), {}, out) == ("matmul",
                                                                                      2 * 28 * 32 * 96)


@pytest.mark.parametrize("op", ["addmm", "baddbmm"])
def test_the_nested_matrix_formulas_equal_torchs(op: str) -> None:
    """addmm / baddbmm go to the raw mm / bmm formula: the same count as FlopCounterMode's wrapped one."""
    from torch.utils.flop_counter import flop_registry

    rng = random.Random(3)
    for _ in range(20):
        b, m, k, n = (rng.randint(1, 9) for _ in range(4))
        a, w = (torch.empty(m, k), torch.empty(k, n)) if op == "addmm" else (torch.empty(b, m, k), torch.empty(b, k, n))
        bias = torch.empty(n)
        packet = getattr(torch.ops.aten, op)
        out = packet.default(bias, a, w)
        assert flops.count(packet.default, (bias, a, w), {}, out) == (
            "matmul", flop_registry[packet](bias, a, w, out_val=out))
