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


def test_cdist_counts_the_matmul_torchs_own_decomposition_runs() -> None:
    """`torch.cdist` on CPU is `aten._euclidean_dist`, which FlopCounterMode does not count; torch's own
    decomposition of it is one matmul of norm-padded operands, and FlopCounterMode counts that."""
    from torch._decomp import decomposition_table

    op = torch.ops.aten._euclidean_dist.default
    for shapes in [((5, 7), (4, 7)), ((3, 5, 7), (3, 4, 7)), ((2, 3, 6, 2), (2, 3, 9, 2))]:
        a, b = torch.randn(shapes[0]), torch.randn(shapes[1])
        with FlopCounterMode(display=False) as counter:
            decomposition_table[op](a, b)
        assert flops.count(op, (a, b), {}, op(a, b)) == ("matmul", counter.get_total_flops())


def test_an_in_place_variant_counts_what_its_op_counts() -> None:
    """`round_`, `logical_and_`: the registry's in-place entries are the out-of-place op's work, once each."""
    aten = torch.ops.aten
    x = torch.rand(3, 4) + 0.5
    checked = 0
    for packet, rule in flops.REGISTRY.items():
        name = packet.__name__ if hasattr(packet, "__name__") else str(packet).split(".")[-1]
        base = getattr(aten, name[:-1], None) if name.endswith("_") else None
        if base is None or base not in flops.REGISTRY or flops.REGISTRY[base].category != "elementwise":
            continue  # (zero_ fills, elementwise; zero is listed with the factories)
        assert rule.category == "elementwise", name
        assert rule.formula((x.clone(),), {}, x) == flops.REGISTRY[base].formula((x,), {}, x) == 12, name
        checked += 1
    assert checked > 40  # the generated entries, and the hand-listed ones (add_, relu_, ...)
    assert aten.round_ in flops.REGISTRY and aten.logical_and_ in flops.REGISTRY


@pytest.mark.parametrize(("mode", "dims", "taps"), [("linear", 1, 2), ("bilinear", 2, 4), ("bicubic", 2, 16),
                                                    ("trilinear", 3, 8)])
def test_interpolation_costs_a_multiply_add_per_tap_per_output(mode: str, dims: int, taps: int) -> None:
    import aelab

    size = (2, 3) + (4,) * dims
    up = torch.nn.Upsample(scale_factor=2, mode=mode)
    report = aelab.inspect(torch.nn.Sequential(torch.nn.Conv1d(3, 3, 1) if dims == 1 else
                                               torch.nn.Conv2d(3, 3, 1) if dims == 2 else torch.nn.Conv3d(3, 3, 1),
                                               up), torch.randn(size))
    outputs = 2 * 3 * 8 ** dims  # every element of the doubled grid, 4 -> 8 per spatial dim
    totals = report.summary.totals
    assert totals.flops_forward_by_category["interpolation"] == 2 * taps * outputs
    assert totals.flops_backward_by_category["interpolation"] == 2 * taps * outputs  # the input's gradient
    assert totals.not_counted == {}


class _Moves(torch.nn.Module):
    """Ops real models ran that the registry missed: nearest-exact upsampling (Wan's video VAE), a complex
    conjugate (Llama 4's rotary), nearest 1d/3d upsampling with their backward."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv3d(2, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        out = x.sum()
        for mode in ("nearest-exact", "nearest"):
            out = out + torch.nn.functional.interpolate(x, scale_factor=2, mode=mode).sum()
            out = out + torch.nn.functional.interpolate(x[:, :, 0], scale_factor=2, mode=mode).sum()
            out = out + torch.nn.functional.interpolate(x[:, :, 0, 0], scale_factor=2, mode=mode).sum()
        rotated = torch.view_as_complex(x.reshape(-1, 2).contiguous()).conj() * (1 + 1j)
        return out + torch.view_as_real(rotated).sum()


def test_every_op_of_upsampling_and_conjugation_has_a_formula() -> None:
    import aelab

    report = aelab.inspect(_Moves(), torch.randn(2, 2, 2, 2, 2))
    assert report.summary.totals.not_counted == {}
