"""One walk over a model's modules, parameters and buffers, shared by everything a run sets up.

torch's `named_modules` / `named_parameters` / `named_buffers` are nested generators (every item passes
through one generator frame per level of depth) and setting up one run asked for them eight times: a fifth
of a small model's trace. `walk` visits the tree once, in their order, with their names.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TypeVar

import torch
from torch import nn

_T = TypeVar("_T")


def _first_of_each(items: list[tuple[str, _T]]) -> list[tuple[str, _T]]:
    """Each object once, at its first path (what torch's `remove_duplicate=True` yields)."""
    seen: set[int] = set()
    out = []
    for name, obj in items:
        if id(obj) not in seen:
            seen.add(id(obj))
            out.append((name, obj))
    return out


@dataclass(frozen=True)
class ModelParts:
    """Every (path, object) of a model, in `named_modules()` pre-order: a module, parameter or buffer shared
    between places is listed at each of its paths (`remove_duplicate=False`); `unique_*` keep the first
    (computed once: a run's set-up asks for them several times)."""

    modules: list[tuple[str, nn.Module]]
    params: list[tuple[str, nn.Parameter]]
    buffers: list[tuple[str, torch.Tensor]]

    @functools.cached_property
    def unique_modules(self) -> list[tuple[str, nn.Module]]:
        return _first_of_each(self.modules)

    @functools.cached_property
    def unique_params(self) -> list[tuple[str, nn.Parameter]]:
        return _first_of_each(self.params)

    @functools.cached_property
    def unique_buffers(self) -> list[tuple[str, torch.Tensor]]:
        return _first_of_each(self.buffers)


def walk(model: nn.Module) -> ModelParts:
    """The model's modules, parameters and buffers with the names `named_*(remove_duplicate=False)` give."""
    modules: list[tuple[str, nn.Module]] = []
    params: list[tuple[str, nn.Parameter]] = []
    buffers: list[tuple[str, torch.Tensor]] = []

    todo: list[tuple[nn.Module, str]] = [(model, "")]  # depth first, children in order (no recursive closure:
    while todo:                                         # one is a reference cycle, and kept the lists to the GC)
        module, path = todo.pop()
        modules.append((path, module))
        prefix = f"{path}." if path else ""
        for key, p in module._parameters.items():
            if p is not None:
                params.append((prefix + key, p))
        for key, b in module._buffers.items():
            if b is not None:
                buffers.append((prefix + key, b))
        todo.extend(reversed([(child, prefix + key) for key, child in module._modules.items() if child is not None]))
    return ModelParts(modules, params, buffers)
