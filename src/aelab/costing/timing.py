"""Time real forward + backward of a model under `requires_grad` patterns (`aelab cost --measure`).

Each iteration runs the forward, sums every differentiable output (the same scalar the recorder
differentiates), then `torch.autograd.grad` w.r.t. the pattern's trainable parameters, so the
user's `.grad` stays untouched. Forward and backward are timed separately (CUDA is synchronised
around each), warm-up iterations are dropped and the median of the rest is kept. Patterns are
interleaved iteration by iteration, in alternating order, so a change in machine load (or the
allocator's state after the other pattern) hits them alike.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from aelab.errors import UsageError
from aelab.trace.inputs import InputSpec
from aelab.trace.materialize import real_copy
from aelab.trace.tensors import flatten_tensors


@dataclass
class PatternTiming:
    """Median seconds of one pattern's forward and of its backward."""

    forward_s: float
    backward_s: float

    @property
    def total_s(self) -> float:
        return self.forward_s + self.backward_s


@dataclass
class Timing:
    """Timings of every pattern on one device, `repeats` timed iterations after `warmup`."""

    device: str
    repeats: int
    warmup: int
    threads: int
    patterns: dict[str, PatternTiming]

    def ratio(self, a: str = "pattern", b: str = "all", part: str = "backward") -> float:
        """Time of `a` over time of `b`, for the backward, the forward or the total."""
        ta, tb = self.patterns[a], self.patterns[b]
        num, den = {"backward": (ta.backward_s, tb.backward_s), "forward": (ta.forward_s, tb.forward_s),
                    "total": (ta.total_s, tb.total_s)}[part]
        return num / den if den else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"device": self.device, "repeats": self.repeats, "warmup": self.warmup, "threads": self.threads,
                **{f"{name}_{part}_s": round(getattr(t, f"{part}_s"), 9) for name, t in self.patterns.items()
                   for part in ("forward", "backward")},
                "backward_ratio": round(self.ratio(), 6), "total_ratio": round(self.ratio(part="total"), 6)}


def resolve_device(device: str | None) -> torch.device:
    """'cpu', 'cuda' or None (CUDA when available); a UsageError when CUDA is asked for and absent."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available here (use --device cpu)")
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise UsageError(f"--device {device}: timing runs on cpu or cuda")
    return torch.device(device)


def _tensor(spec: InputSpec | torch.Tensor, device: torch.device) -> torch.Tensor:
    if isinstance(spec, torch.Tensor):
        return spec.to(device)
    if spec.dtype.is_floating_point:
        return torch.randn(spec.shape, dtype=spec.dtype, device=device)
    return torch.zeros(spec.shape, dtype=spec.dtype, device=device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _step(model: nn.Module, args: list[torch.Tensor], kwargs: dict[str, torch.Tensor],
          params: list[nn.Parameter], device: torch.device) -> tuple[float, float]:
    _sync(device)
    t0 = time.perf_counter()
    outs = [t for t in flatten_tensors(model(*args, **kwargs))
            if t.requires_grad and (t.is_floating_point() or t.is_complex())]
    loss = torch.stack([t.float().sum() for t in outs]).sum() if outs else None
    _sync(device)
    t1 = time.perf_counter()
    if loss is not None and params:
        torch.autograd.grad(loss, params, allow_unused=True)
    _sync(device)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1


def time_patterns(model: nn.Module, inputs: list[InputSpec | torch.Tensor],
                  kwinputs: Mapping[str, InputSpec | torch.Tensor], patterns: Mapping[str, Mapping[str, bool]], *,
                  device: str | None = None, repeats: int = 20, warmup: int = 3,
                  threads: int | None = None) -> Timing:
    """Median forward and backward seconds of each `requires_grad` pattern (parameter name -> flag).

    `threads` sets torch's CPU threads for the timed runs only (1 gives steadier numbers on a busy machine).
    """
    if repeats < 1 or warmup < 0:
        raise UsageError("--repeats must be at least 1 and --warmup at least 0")
    if threads is not None and threads < 1:
        raise UsageError("--threads must be at least 1")
    dev = resolve_device(device)
    runner = real_copy(model, dev)
    args = [_tensor(s, dev) for s in inputs]
    kwargs = {k: _tensor(s, dev) for k, s in kwinputs.items()}
    named = dict(runner.named_parameters())
    before = {p: p.requires_grad for p in runner.parameters()}
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in patterns}
    threads_before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    used_threads = torch.get_num_threads()
    try:
        for i in range(warmup + repeats):
            order = list(patterns.items())
            for name, flags in (order if i % 2 == 0 else order[::-1]):
                for pname, flag in flags.items():
                    named[pname].requires_grad_(flag)
                params = [p for p in runner.parameters() if p.requires_grad]
                step = _step(runner, args, kwargs, params, dev)
                if i >= warmup:
                    samples[name].append(step)
    except Exception as exc:
        raise UsageError(f"the timed run failed on {dev} ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''})") from exc
    finally:
        torch.set_num_threads(threads_before)
        for p, flag in before.items():
            p.requires_grad_(flag)
    result = {name: PatternTiming(statistics.median(s[0] for s in runs), statistics.median(s[1] for s in runs))
              for name, runs in samples.items()}
    return Timing(str(dev), repeats, warmup, used_threads, result)
