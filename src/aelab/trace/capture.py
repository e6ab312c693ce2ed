"""Capture values from a real forward pass: distributions sampled inside a model, and module outputs.

The recorder (recorder.py) finds *where* a model samples its latent or which layer is its bottleneck;
training and evaluation then need the *values* on every batch: the `Normal` whose `rsample` gave the
latent (for the KL term) and the latent layer's output. This module is the one place that installs
those hooks, for the duration of a `with capture(...)` block only.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from aelab.trace.samplers import patched_samplers


@dataclass
class Sampled:
    """One outermost `rsample`/`sample` call: the distribution it drew from and the draw."""

    method: str
    distribution: torch.distributions.Distribution
    value: torch.Tensor


@dataclass
class Captured:
    """What one `capture` block saw: samples in call order, and the last output of each watched module."""

    samples: list[Sampled] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)


def _wrap(method: Any, name: str, seen: Captured, depth: list[int]) -> Any:
    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        depth[0] += 1
        try:
            value = method(self, *args, **kwargs)
        finally:
            depth[0] -= 1
        if depth[0] == 0 and isinstance(value, torch.Tensor):  # Independent.rsample calls its base's: one draw
            seen.samples.append(Sampled(name, self, value))
        return value

    return wrapper


@contextlib.contextmanager
def capture(model: nn.Module | None = None, modules: tuple[str, ...] = (), samples: bool = False) -> Iterator[Captured]:
    """Within the block, record every distribution sample (`samples=True`) and the outputs of the
    submodules of `model` named in `modules`. Everything is removed again on exit."""
    seen = Captured()
    depth = [0]
    with contextlib.ExitStack() as undo:
        if samples:
            undo.enter_context(patched_samplers(lambda original, meth: _wrap(original, meth, seen, depth)))
        for path in modules:
            assert model is not None

            def keep(module: nn.Module, args: Any, output: Any, path: str = path) -> None:
                seen.outputs[path] = output

            undo.callback(model.get_submodule(path).register_forward_hook(keep).remove)
        yield seen
