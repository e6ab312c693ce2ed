"""What the recorder and the shadow ask of an aten op, looked up once per op overload.

Every op of a run asked the same questions of its `OpOverload` five to seven times (its name, whether it reads
values, draws random numbers, writes an argument, has a FLOP formula, a shape-only kernel), each a dict or
`lru_cache` lookup hashed by torch's Python-level `OpOverload.__hash__`. One record per overload, found by
`id` (overloads live as long as the process), answers all of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from aelab.trace import fastmeta
from aelab.trace import flops as flop_rules

_aten = torch.ops.aten
# in-place ops whose result does not depend on what their first argument held
_OVERWRITE = frozenset({"fill_", "zero_", "copy_", "normal_", "uniform_", "bernoulli_", "random_", "exponential_",
                        "geometric_", "cauchy_", "log_normal_"})
_UNINITIALISED = frozenset({_aten.empty, _aten.empty_like, _aten.empty_strided, _aten.new_empty,
                            _aten.new_empty_strided, _aten.empty_permuted})
_SKIP = frozenset({"prim.device", "prim.layout", "aten.sym_size", "aten.sym_stride", "aten.sym_numel",
                   "aten.sym_storage_offset", "aten.is_same_size"})


@dataclass(frozen=True)
class OpFacts:
    """One op overload, as the recording sees it."""

    name: str  # "aten.mm"
    skip: bool  # metadata queries (`sym_size`, `prim.device`): run, not recorded
    reads: bool  # its output depends on input values (`.item()`, `nonzero`)
    random: bool  # draws from an RNG
    overwrite: bool  # writes its first argument whatever it held (`fill_`, `copy_`)
    uninitialised: bool  # makes a tensor without values (`empty`)
    is_view: bool
    mutated: tuple[tuple[int, str], ...]  # (position, name) of each argument it writes
    rule: flop_rules.FlopRule | None  # its FLOP formula; None: not counted
    kernel: fastmeta.Kernel | None  # the shape-only kernel on meta tensors, if one


_FACTS: dict[int, tuple[Any, OpFacts]] = {}  # id(overload) -> (the overload, kept alive; its facts)


def facts(func: Any) -> OpFacts:
    """The facts of one aten op overload (or any callable a dispatch mode is given)."""
    hit = _FACTS.get(id(func))
    if hit is not None and hit[0] is func:
        return hit[1]
    found = _facts(func)
    _FACTS[id(func)] = (func, found)
    return found


def _facts(func: Any) -> OpFacts:
    packet = func.overloadpacket
    name = str(packet) if "." in str(packet) else f"aten.{packet}"
    tags = set(func.tags)
    schema = func._schema
    return OpFacts(
        name=name, skip=name in _SKIP or name.startswith("prim."),
        reads=torch.Tag.data_dependent_output in tags or torch.Tag.dynamic_output_shape in tags,
        random=torch.Tag.nondeterministic_seeded in tags, overwrite=packet.__name__ in _OVERWRITE,
        uninitialised=packet in _UNINITIALISED, is_view=bool(getattr(func, "is_view", False)),
        mutated=tuple((i, a.name) for i, a in enumerate(schema.arguments)
                      if a.alias_info is not None and a.alias_info.is_write),
        rule=flop_rules.lookup(func), kernel=fastmeta.KERNELS.get(func))
