"""The shape doctor's hands: read the model's layer configurations, apply a fix to a COPY of the model
(never the user's object), trace again, and repeat until the model runs or a problem has no fix.

`diagnose(model, *inputs) -> Diagnosis` is the Python API behind `aelab doctor`. The first trace runs on
the model as given (meta or fake tensors, nothing allocated, nothing changed); the first fix makes a
meta-device copy (weights become shapes only), and every later fix copies that copy, so a trial that
does not help leaves nothing behind. Fixes to code inside forward() (a view's sizes, padding the inputs of
a torch.cat) cannot be made on a module: they are applied while tracing, by a TorchFunctionMode that
rewrites that one call.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from aelab.doctor.examine import examine, same_problem
from aelab.doctor.records import Diagnosis, Finding, Fix, ModuleConfig, batch_of
from aelab.trace.call_patches import CallPatch, CallPatches
from aelab.trace.inputs import InputSpec
from aelab.trace.record import InputLike, as_input_spec, record
from aelab.trace.records import Trace

#: the most fixes one diagnosis applies before it stops and says so
MAX_FIXES = 8


# --- reading the model --------------------------------------------------------------------------------
def _torch_base(cls: type) -> type | None:
    return next((c for c in cls.__mro__ if c.__module__.startswith("torch.nn.modules")
                 and c is not nn.Module), None)


def describe_modules(model: nn.Module) -> dict[str, ModuleConfig]:
    """Every submodule's class, nearest torch.nn class and constructor arguments (its `__constants__`,
    and `bias` as a bool). Reads attributes only."""
    out: dict[str, ModuleConfig] = {}
    for path, module in model.named_modules():
        base = _torch_base(type(module))
        hyper: dict[str, Any] = {}
        if base is not None:
            for name in getattr(base, "__constants__", []):
                if hasattr(module, name):
                    value = getattr(module, name)
                    hyper[name] = tuple(value) if isinstance(value, list) else value
            if "bias" in inspect.signature(base).parameters:
                hyper["bias"] = getattr(module, "bias", None) is not None
        custom = base is not None and type(module).forward is not getattr(base, "forward", None)
        out[path] = ModuleConfig(path, type(module).__name__, base.__name__ if base else type(module).__name__,
                                 hyper, custom)
    return out


# --- the state a trace runs on: a model, its inputs, the calls rewritten ----------------------------------
@dataclass
class _State:
    model: nn.Module
    inputs: list[InputLike]
    kwinputs: dict[str, InputLike]
    patches: list[Fix] = field(default_factory=list)
    is_copy: bool = False


def _meta_copy(model: nn.Module) -> nn.Module:
    """A deep copy whose parameters and buffers are meta tensors of the same shapes (no weights copied)."""
    memo: dict[int, Any] = {}
    for t in [*model.parameters(), *model.buffers()]:
        if t.device.type == "meta":
            continue
        empty = torch.empty_like(t, device="meta")
        memo[id(t)] = nn.Parameter(empty, requires_grad=t.requires_grad) if isinstance(t, nn.Parameter) else empty
    return copy.deepcopy(model, memo)


def _device_dtype(module: nn.Module) -> tuple[torch.device, torch.dtype | None]:
    for t in [*module.parameters(recurse=False), *module.buffers(recurse=False)]:
        return t.device, (t.dtype if t.is_floating_point() else None)
    return torch.device("meta"), None


def _build(cls_name: str, kwargs: dict[str, Any], device: torch.device, dtype: torch.dtype | None) -> nn.Module:
    cls = getattr(nn, cls_name)
    with torch.device(device):
        module: nn.Module = cls(**kwargs)
    return module.to(dtype) if dtype is not None else module


def _set_module(model: nn.Module, path: str, new: nn.Module) -> None:
    parent_path, _, name = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    setattr(parent, name, new)


def _rebuild(module: nn.Module, cfg: ModuleConfig, changes: dict[str, Any]) -> None:
    """Give `module` (a copy) the parameters and attributes a fresh torch.nn base class built with the
    changed arguments would have; its own class, and so its forward(), stays."""
    device, dtype = _device_dtype(module)
    params = inspect.signature(getattr(nn, cfg.base)).parameters
    kwargs = {k: v for k, v in {**cfg.hyper, **changes}.items() if k in params}
    fresh = _build(cfg.base, kwargs, device, dtype)
    for name, p in fresh.named_parameters(recurse=False):
        setattr(module, name, p)
    for name, b in fresh.named_buffers(recurse=False):
        module.register_buffer(name, b)
    for name in changes:
        setattr(module, name, getattr(fresh, name))
    if hasattr(fresh, "_reversed_padding_repeated_twice"):
        module._reversed_padding_repeated_twice = fresh._reversed_padding_repeated_twice


def apply_fix(state: _State, fix: Fix) -> _State:
    """A new state with `fix` applied to a copy; `state` (and the user's model) are left as they were."""
    model = copy.deepcopy(state.model) if state.is_copy else _meta_copy(state.model)
    new = _State(model, list(state.inputs), dict(state.kwinputs), list(state.patches), is_copy=True)
    if fix.action == "set":
        module = model.get_submodule(fix.target)
        _rebuild(module, describe_modules(module)[""], fix.changes)
    elif fix.action == "replace":
        old = model.get_submodule(fix.target)
        device, dtype = _device_dtype(old)
        built = [_build(cls, kwargs, device, dtype) for cls, kwargs in fix.changes["modules"]]
        _set_module(model, fix.target, built[0] if len(built) == 1 else nn.Sequential(*built))
    elif fix.action == "input":
        index, shape = fix.changes["index"], tuple(fix.changes["shape"])
        old_input = new.inputs[index]
        if isinstance(old_input, torch.Tensor):
            new.inputs[index] = old_input.reshape(shape)
        else:
            spec = as_input_spec(old_input)
            assert isinstance(spec, InputSpec)
            new.inputs[index] = InputSpec(shape, spec.dtype, spec.name)
    elif fix.action == "call":
        new.patches.append(fix)
    else:
        raise ValueError(f"unknown fix action {fix.action!r}")
    return new


# --- rewriting one call inside forward() (trace/call_patches.py does it while recording) -------------------
def _call_patch(fix: Fix) -> CallPatch:
    c = fix.changes
    return CallPatch(fix.target, tuple(c["input_shape"]), c["occurrence"],
                     tuple(c["shape"]) if "shape" in c else None, c.get("pads", {}))


def _trace(state: _State) -> Trace:
    """One trace of the state (the recorder itself keeps FakeTensor's per-kernel tracebacks out of the log)."""
    patches = CallPatches([_call_patch(f) for f in state.patches]) if state.patches else contextlib.nullcontext()
    with patches:
        return record(state.model, state.inputs, state.kwinputs, backward=False)


# --- the loop ------------------------------------------------------------------------------------------
def _shapes(items: Sequence[InputLike]) -> list[tuple[int, ...]]:
    return [tuple(as_input_spec(item).shape) for item in items]


def diagnose(model: nn.Module, *inputs: InputLike, max_fixes: int = MAX_FIXES, name: str | None = None,
             **kwinputs: InputLike) -> Diagnosis:
    """Trace `model` on `inputs` (shapes or tensors); while something is wrong, explain it, apply the fix
    to a copy and trace again, so one run reports every problem down the model, or stops at one without
    a fix, or after `max_fixes` fixes (the problem left listed, not applied). The user's model is never
    modified."""
    state = _State(model, list(inputs), dict(kwinputs))
    trace = _trace(state)
    findings: list[Finding] = []
    status, stopped = "ok", None
    while True:
        candidates = examine(trace, describe_modules(state.model))
        if not candidates:
            status = "fixed" if findings else "ok"
            break
        if len(findings) >= max_fixes:  # the problem left is listed, not applied: the model still fails
            findings.append(candidates[0])
            status = "limit"
            fixes = f"{max_fixes} fix{'' if max_fixes == 1 else 'es'}"
            stopped = f"stopped after {fixes}; problem {len(findings)} is not fixed"
            break
        chosen, failure = None, None
        for cand in candidates:
            if cand.action is None:
                continue
            try:
                trial = apply_fix(state, cand.action)
            except Exception as exc:  # a model deepcopy cannot copy, a layer its class cannot rebuild
                failure = f"the fix could not be applied to a copy of the model ({type(exc).__name__}: {exc})"
                continue
            trial_trace = _trace(trial)
            after = examine(trial_trace, describe_modules(trial.model))
            if not after or not same_problem(after[0], cand):
                chosen = (cand, trial, trial_trace)
                break
        if chosen is None:
            first = candidates[0]
            findings.append(first)
            status = "stuck"
            stopped = ("no fix is known for this problem" if all(c.action is None for c in candidates) else
                       failure or "the fix did not remove the problem")
            break
        cand, state, trace = chosen
        findings.append(replace(cand, applied=True))
    output_shapes = [t.shape for t in trace.outputs] if trace.error is None else []
    final_inputs = _shapes(state.inputs)
    return Diagnosis(name or type(model).__name__, _shapes(inputs), findings, status, output_shapes,
                     final_inputs, batch_of(final_inputs), stopped)
