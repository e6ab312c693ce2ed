"""Prepare inputs for a model (meta, fake or real) and record one run: the trace's front door."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch._subclasses.fake_tensor import FakeTensorMode

from aelab.errors import UsageError
from aelab.trace.inputs import InputSpec
from aelab.trace.recorder import NeedsRealForward, run
from aelab.trace.records import Trace

InputLike = InputSpec | torch.Tensor | Sequence[int]


def as_input_spec(obj: Any) -> InputSpec | torch.Tensor:
    """A tensor stays a tensor; a shape tuple/list or InputSpec becomes an InputSpec."""
    if isinstance(obj, (torch.Tensor, InputSpec)):
        return obj
    if isinstance(obj, torch.Size) or (isinstance(obj, (tuple, list)) and all(isinstance(d, int) for d in obj)):
        dims = tuple(int(d) for d in obj)
        if not dims or any(d <= 0 for d in dims):
            raise UsageError(f"input shape {dims} must have positive sizes")
        return InputSpec(dims)
    raise UsageError(f"an input must be a tensor or a shape, not {type(obj).__name__}")


def model_device(model: nn.Module) -> torch.device:
    for t in list(model.parameters()) + list(model.buffers()):
        return t.device
    return torch.device("cpu")


def _make(spec: InputSpec | torch.Tensor, device: torch.device, *, batch1: bool = False,
          real: bool = False) -> torch.Tensor:
    if isinstance(spec, torch.Tensor):
        t = spec
        if batch1 and t.dim() > 0:
            t = t[:1]
        return t.to(device) if (real or device.type == "meta") else t
    shape = spec.shape
    if batch1 and shape:
        shape = (1, *shape[1:])
    if not real:
        return torch.empty(shape, dtype=spec.dtype, device=device)
    if spec.dtype.is_floating_point:
        return torch.randn(shape, dtype=spec.dtype, device=device)
    if spec.dtype == torch.bool:
        return torch.ones(shape, dtype=spec.dtype, device=device)
    return torch.zeros(shape, dtype=spec.dtype, device=device)


def _real_copy(model: nn.Module) -> nn.Module:
    """A real copy to run a data-dependent forward on; meta weights become initialised CPU weights."""
    clone = copy.deepcopy(model)
    if model_device(model).type == "meta":
        clone = clone.to_empty(device="cpu")
        for m in clone.modules():
            reset = getattr(m, "reset_parameters", None)
            if callable(reset):
                reset()
    return clone


def record(model: nn.Module, inputs: Sequence[InputLike] = (), kwinputs: Mapping[str, InputLike] | None = None, *,
           backward: bool = True) -> Trace:
    """Record one run of `model` without allocating activations; fall back to a real batch-1 forward
    when an op needs tensor values (and say so in `Trace.notes`)."""
    specs = [as_input_spec(x) for x in inputs]
    kwspecs = {k: as_input_spec(v) for k, v in (kwinputs or {}).items()}
    device = model_device(model)
    try:
        if device.type == "meta":
            args = [_make(s, device) for s in specs]
            kwargs = {k: _make(s, device) for k, s in kwspecs.items()}
            return run(model, args, kwargs, execution="meta", backward=backward)
        fake_mode = FakeTensorMode(allow_non_fake_inputs=True)
        with fake_mode:
            args = [fake_mode.from_tensor(s) if isinstance(s, torch.Tensor) else _make(s, device) for s in specs]
            kwargs = {k: fake_mode.from_tensor(s) if isinstance(s, torch.Tensor) else _make(s, device)
                      for k, s in kwspecs.items()}
        return run(model, args, kwargs, execution="fake", backward=backward, fake_mode=fake_mode)
    except NeedsRealForward as exc:
        op = str(exc)
        real = _real_copy(model)
        rdevice = model_device(real)
        args = [_make(s, rdevice, batch1=True, real=True) for s in specs]
        kwargs = {k: _make(s, rdevice, batch1=True, real=True) for k, s in kwspecs.items()}
        trace = run(real, args, kwargs, execution="real", backward=backward)
        trace.notes.append(f"{op} needs tensor values, which fake execution does not have: traced with a real "
                           "forward on a batch of 1 (shapes show batch 1)")
        return trace
