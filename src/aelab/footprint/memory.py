"""`memory(model, *inputs, ...)`: how much memory one training step needs, before you run it.

The driver: it turns the options into `requires_grad` flags (the cost verb's `choose`), has
`aelab.trace.step.simulate` run a whole training step on fake (or meta) stand-ins for the weights and
inputs, and reads the log with the pure `footprint.analysis`; this room holds no mode and no hook.
What-ifs and `fit` are more simulated steps; the model itself is never touched and never allocated.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from aelab.costing.trainable import choose, matches
from aelab.errors import UsageError
from aelab.footprint import analysis
from aelab.footprint.report import LayerRow, MaxBatch, MemoryReport, WhatIf
from aelab.trace.inputs import InputSpec
from aelab.trace.lifetimes import StepLog, ValueReadError
from aelab.trace.params import refuse_lazy
from aelab.trace.record import InputLike, as_input_spec, is_meta_model
from aelab.trace.step import AMP_DTYPES, LOSSES, OPTIMIZERS, simulate

#: allocator granularity per device: CUDA's caching allocator hands out 512-byte multiples
BLOCKS: dict[str, int] = {"cpu": 1, "cuda": 512}

_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def parse_size(text: str | int) -> int:
    """'80GB' (10^9), '80GiB' (2^30), '512MiB', '1000000' -> bytes; anything else is a UsageError."""
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    else:
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", str(text))
        if not m or m.group(2).upper() not in _UNITS:
            raise UsageError(f"--fit {text!r}: write a size like 80GB, 24GiB or 512MiB")
        value = int(float(m.group(1)) * _UNITS[m.group(2).upper()])
    if value <= 0:
        raise UsageError(f"--fit {text!r}: the budget must be more than 0 bytes")
    return value


def not_modelled(device: str) -> list[dict[str, str]]:
    """What the prediction leaves out, each with its typical size: never a silent zero."""
    if device == "cuda":
        return [
            {"what": "CUDA context", "typical": "300-600 MiB per process (outside the caching allocator)"},
            {"what": "cuBLAS/cuBLASLt workspace", "typical": "4-32 MiB per handle and stream"},
            {"what": "allocator fragmentation and reserved-but-free segments (memory_reserved above "
                     "memory_allocated)", "typical": "0-30% of the peak; segments are 2 MiB (small) or 20 MiB"},
            {"what": "kernel workspaces (cuDNN convolution, flash attention)",
             "typical": "0-several hundred MiB, chosen by the kernel at run time"},
            {"what": "the foreach/fused optimizer kernels' choice", "typical":
                "modelled as torch.optim's CUDA default (foreach); fused=True differs by its temporaries"},
        ]
    return [
        {"what": "C allocator overhead (glibc chunk headers, mmap page rounding)", "typical": "< 1% of the peak"},
        {"what": "kernel-internal scratch freed inside one kernel (oneDNN scratchpads)", "typical": "< 1%"},
        {"what": "Python objects and the interpreter", "typical": "tens of MiB, constant"},
    ]


def _checkpoint_paths(model: nn.Module, globs: Sequence[str]) -> list[str]:
    names = [n for n, _ in model.named_modules() if n]
    out: list[str] = []
    for g in globs:
        hit = [n for n in names if matches(n, g)]
        if not hit:
            sample = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
            raise UsageError(f"--checkpoint {g!r} matches no module (modules: {sample})")
        out.extend(hit)
    # outermost only: a module inside a checkpointed one is recomputed with it
    chosen = sorted(set(out))
    return [n for n in chosen if not any(n.startswith(p + ".") for p in chosen if p != n)]


def _scaled(spec: InputSpec | torch.Tensor, batch: int | None, batch0: int | None) -> InputSpec | torch.Tensor:
    if batch is None or isinstance(spec, torch.Tensor) or not spec.shape or spec.shape[0] != batch0:
        return spec
    return replace(spec, shape=(batch, *spec.shape[1:]))


def _run(model: nn.Module, specs: Sequence[Any], kwspecs: Mapping[str, Any], flags: Mapping[str, bool],
         **options: Any) -> StepLog:
    try:
        device = options.pop("device", "cuda")
        foreach = True if device == "cuda" else None  # torch.optim's default on CUDA; on CPU the single-tensor loop
        return simulate(model, specs, kwspecs, flags, foreach=foreach, **options)
    except UsageError:
        raise
    except ValueReadError as exc:
        meta = is_meta_model(model)
        raise UsageError("the forward reads a tensor value that depends on the weights"
                         + (" or on a meta tensor without a value" if meta else "")
                         + f" ({exc}): a training step cannot be simulated without them"
                         + ("; a model built on CPU has its values" if meta else "")) from exc
    except Exception as exc:
        msg = str(exc).splitlines()[0] if str(exc) else ""
        raise UsageError(f"the simulated training step failed ({type(exc).__name__}: {msg}); "
                         "run `aelab doctor` on the model") from exc


def memory(model: nn.Module, *inputs: InputLike, optimizer: str = "adam", amp: str = "off", loss: str = "sum",
           trainable: Sequence[str] = (), freeze: Sequence[str] = (), checkpoint: Sequence[str] = (),
           fit: str | int | None = None, device: str = "cuda", what_if: bool = True, name: str | None = None,
           **kwinputs: InputLike) -> MemoryReport:
    """Predict the memory of one training step of `model` on `inputs`, layer by layer.

    The step: forward (under `torch.autocast` with `amp="bf16"|"fp16"`), the loss (by default the sum
    of the floating outputs; `loss="mse"` against the first input), `backward()`, `optimizer.step()`
    and `zero_grad(set_to_none=True)`; the first step (the optimizer creating its state) and the
    steady state are both reported. `trainable`/`freeze` are the `aelab cost` globs; `checkpoint`
    globs name modules whose activation checkpointing is a what-if; `fit` (e.g. "80GB") finds the
    largest batch whose predicted peak fits. `device="cuda"` rounds every storage up to the caching
    allocator's 512-byte block; `"cpu"` counts exact bytes. The model comes back untouched.
    """
    started = time.perf_counter()
    if not isinstance(model, nn.Module):
        raise UsageError(f"memory() needs a torch.nn.Module, not {type(model).__name__}")
    refuse_lazy(model)
    if optimizer not in OPTIMIZERS:
        raise UsageError(f"unknown optimizer {optimizer!r} (choose from {', '.join(OPTIMIZERS)})")
    if amp not in AMP_DTYPES:
        raise UsageError(f"unknown --amp {amp!r} (choose from {', '.join(AMP_DTYPES)})")
    if loss not in LOSSES:
        raise UsageError(f"unknown --loss {loss!r} (choose from {', '.join(LOSSES)})")
    if device not in BLOCKS:
        raise UsageError(f"unknown device {device!r} (choose from {', '.join(BLOCKS)})")
    budget = parse_size(fit) if fit is not None else None
    specs = [as_input_spec(x) for x in inputs]
    kwspecs = {k: as_input_spec(v) for k, v in kwinputs.items()}
    if not specs and not kwspecs:
        raise UsageError("memory() needs at least one input (a shape or a tensor)")
    flags = choose(model, trainable, freeze)
    if not any(flags.values()):
        raise UsageError("no parameter trains with these --trainable/--freeze globs: there is no training step")
    ckpt = _checkpoint_paths(model, checkpoint) if checkpoint else []
    block = BLOCKS[device]
    opts = {"amp": amp, "loss": loss, "device": device}
    other = "sgd" if optimizer in ("adam", "adamw") else "adam"
    log = _run(model, specs, kwspecs, flags, **opts, optimizers=[optimizer, other] if what_if else [optimizer])
    pk = analysis.peaks(log, optimizer, block)
    first, steady = pk.first, pk.steady
    rows = [LayerRow(r.name, r.saved_bytes, r.output_bytes, r.saved_at_peak_bytes)
            for r in analysis.layers(log, steady, block)]
    tl, phases = analysis.timeline(log, optimizer, block)
    params = list(model.named_parameters())
    report = MemoryReport(
        model=name or type(model).__name__,
        inputs=[[int(d) for d in s.shape] for s in [*specs, *kwspecs.values()]],
        optimizer=optimizer, amp=amp, device=device, peak_bytes=steady.bytes, first_step_peak_bytes=first.bytes,
        peak_at=steady.where, first_step_peak_at=first.where, peak_phase=steady.phase, peak_module=steady.module,
        breakdown=analysis.breakdown(log, steady, block), first_step_breakdown=analysis.breakdown(log, first, block),
        layers=rows, params_bytes=sum(p.numel() * p.element_size() for _, p in params),
        trainable_params=sum(p.numel() for n, p in params if flags.get(n)),
        total_params=sum(p.numel() for _, p in params),
        timeline=tl, timeline_phases=phases, not_modelled=not_modelled(device), corrections=list(log.corrections),
        notes=list(log.notes), unrounded_peak_bytes=analysis.peaks(log, optimizer, 1).steady.bytes)
    if amp == "fp16":
        report.notes.append("fp16 autocast is simulated without a GradScaler (its scale and found-inf tensors are "
                            "a few bytes)")
    if what_if:
        alt = analysis.peaks(log, other, block)
        report.what_if.append(WhatIf("optimizer", f"optimizer {other} instead of {optimizer}", alt.steady.bytes,
                                     alt.first.bytes, alt.steady.where))
        report.what_if.extend(_what_ifs(model, specs, kwspecs, flags, ckpt, [*trainable, *freeze],
                                        {**opts, "optimizers": [optimizer]}, block))
    if budget is not None:
        report.max_batch = max_batch(model, specs, kwspecs, flags, budget, {**opts, "optimizers": [optimizer]},
                                     block)
    report.seconds = time.perf_counter() - started
    return report


def _what_if(label: str, description: str, log: StepLog, optimizer: str, block: int) -> WhatIf:
    pk = analysis.peaks(log, optimizer, block)
    return WhatIf(label, description, pk.steady.bytes, pk.first.bytes, pk.steady.where)


def _what_ifs(model: nn.Module, specs: Sequence[Any], kwspecs: Mapping[str, Any], flags: Mapping[str, bool],
              ckpt: Sequence[str], selected: Sequence[str], opts: dict[str, Any], block: int) -> list[WhatIf]:
    out = []
    optimizer = opts["optimizers"][0]
    if ckpt:
        log = _run(model, specs, kwspecs, flags, **opts, checkpoint=ckpt)
        out.append(_what_if("checkpoint", f"activation checkpointing of {', '.join(ckpt)}", log, optimizer, block))
    if selected:
        log = _run(model, specs, kwspecs, dict.fromkeys(flags, True), **opts)
        out.append(_what_if("trainable", "every parameter trainable (no --trainable/--freeze)", log, optimizer,
                            block))
    return out


def max_batch(model: nn.Module, specs: Sequence[Any], kwspecs: Mapping[str, Any], flags: Mapping[str, bool],
              budget: int, opts: dict[str, Any], block: int) -> MaxBatch:
    """The largest batch whose predicted peak (first step and steady state) fits `budget`.

    The peak is nearly affine in the batch (the weights and optimizer state are constant, activations
    grow with it): predict batches 1 and 2, solve for the budget, sharpen the slope through the answer
    (secant), then predict around it until `batch` fits and `batch + 1` does not. Every step is a
    prediction; nothing runs for real.
    """
    def as_spec(s: Any) -> Any:  # a tensor stands for its shape and dtype (fake runs never read values)
        return InputSpec(tuple(int(d) for d in s.shape), s.dtype) if isinstance(s, torch.Tensor) else s

    specs = [as_spec(s) for s in specs]
    kwspecs = {k: as_spec(s) for k, s in kwspecs.items()}
    first_spec = next((s for s in [*specs, *kwspecs.values()] if s.shape), None)
    if first_spec is None:
        raise UsageError("--fit scales the first input's first dimension, and no input has one")
    b0 = first_spec.shape[0]
    cache: dict[int, int] = {}

    def peak(b: int) -> int:
        if b not in cache:
            s2 = [_scaled(s, b, b0) for s in specs]
            k2 = {k: _scaled(s, b, b0) for k, s in kwspecs.items()}
            pk = analysis.peaks(_run(model, s2, k2, flags, **opts), opts["optimizers"][0], block)
            cache[b] = max(pk.first.bytes, pk.steady.bytes)
        return cache[b]

    p1, p2 = peak(1), peak(2)
    if p1 > budget:
        return MaxBatch(budget, 0, 0, p1, len(cache))
    slope = float(max(p2 - p1, 1))
    b = max(1, int((budget - p1) // slope) + 1)
    for _ in range(4):  # secant through (1, p1): the constant part is exact, the slope sharpens
        if b > 1:
            slope = max((peak(b) - p1) / (b - 1), 1e-9)
        nxt = max(1, int((budget - p1) // slope) + 1)
        if nxt == b:
            break
        b = nxt
    if peak(b) <= budget:  # lo fits, hi does not
        lo, hi = b, b + 1
        while peak(hi) <= budget:
            lo, hi = hi, hi + 2 * (hi - lo)
    else:
        lo, hi = b - 1, b
        while lo > 1 and peak(lo) > budget:
            lo, hi = max(1, lo - 2 * (hi - lo)), lo
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if peak(mid) <= budget:
            lo = mid
        else:
            hi = mid
    return MaxBatch(budget, lo, peak(lo), peak(lo + 1), len(cache))
