"""The shape doctor's analysis: from a trace (and what the model's layers were built with) to findings.

A finding names the layer, what it got and what it expects, the fix as a line of code with its
derivation, and a machine-readable `Fix` that `aelab.doctor.diagnose` applies to a copy of the model before
tracing again. Pure functions over records: nothing here runs or touches a model. The explainers, one
per kind of problem, live in `aelab.doctor.explainers.layers`; this file holds the records they share, the
data-flow walk they use to say where a size comes from, and `examine`, which asks them in turn.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from aelab.inspection.dataflow import DataFlow, walk_back
from aelab.shapes import notation
from aelab.shapes.formulas import conv_size, conv_transpose_size, per_dim, pool_size
from aelab.shapes.sizes import DIM_NAMES
from aelab.trace.records import CallEvent, TensorInfo, Trace, TraceError

Shape = tuple[int, ...]


# --- records ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModuleConfig:
    """What one submodule was built with, read from the model once (no tensors): its class, the nearest
    torch.nn class it derives from, and that class's constructor arguments (`__constants__` and bias)."""

    path: str
    type: str  # "CausalConv1d"
    base: str  # "Conv1d": the torch.nn class in its MRO
    hyper: dict[str, Any]
    custom_forward: bool = False  # the class overrides forward(), so the base's formula may not hold


@dataclass(frozen=True)
class Fix:
    """A change `aelab.doctor.diagnose` can apply to a copy of the model (or its inputs) before tracing again.

    action "set": rebuild module `target` with `changes` as new constructor arguments (its class is kept);
    "replace": put `changes["modules"]` ([(torch.nn class name, kwargs), ...], a Sequential when several)
    in place of module `target`; "input": input `changes["index"]` gets shape `changes["shape"]`;
    "call": the `changes["occurrence"]`-th call of torch function `target` on an input of shape
    `changes["input_shape"]` gets `changes["shape"]` (view/reshape) or `changes["pads"]` (cat: F.pad each input).
    """

    action: str
    target: str
    changes: dict[str, Any] = field(default_factory=dict)


@dataclass
class Finding:
    """One problem: where, what went in, what was expected, the fix and why that number."""

    kind: str  # explainer name, e.g. "linear_in_features"
    layer: str  # module path ("fc"), function call name ("view"), or "" for the model as a whole
    layer_type: str  # "Linear", "Tensor.view", or the model's class
    problem: str  # one sentence
    got: str
    expected: str
    fix: str | None = None  # a line of Python: "nn.Linear(12544, 10)"
    derivation: str | None = None  # "12544 = 16 × 28 × 28, the flattened output of conv (16, 28, 28)"
    alternatives: list[str] = field(default_factory=list)
    error: str | None = None  # the original exception, "RuntimeError: ..."
    action: Fix | None = None
    applied: bool = False  # the rest of the model was traced with this fix

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("action")
        return out


@dataclass
class Diagnosis:
    """Everything the doctor found, in order, and how the model fares with all the fixes applied."""

    model: str
    inputs: list[Shape]
    findings: list[Finding]
    status: str  # "ok": nothing found; "fixed": runs with the fixes; "stuck": a problem with no fix; "limit"
    output_shapes: list[Shape]  # the final trace's outputs (empty when it still fails)
    final_inputs: list[Shape]  # the inputs after input fixes (a batch dimension added, ...)
    batch: int | None  # the batch size N of the final inputs, for "(N, 10)"
    stopped: str | None = None  # why the doctor stopped before the model ran, in one sentence

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def exit_code(self) -> int:
        """0 when the model is fine, 1 when a problem was found (fixed or not)."""
        return 0 if self.ok else 1

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (`aelab doctor --format json`)."""
        return {"model": self.model, "inputs": [list(s) for s in self.inputs], "status": self.status,
                "ok": self.ok, "findings": [f.to_dict() for f in self.findings],
                "output_shapes": [list(s) for s in self.output_shapes],
                "final_inputs": [list(s) for s in self.final_inputs], "stopped": self.stopped}


# --- text helpers -------------------------------------------------------------------------------------
def shape_text(shape: Shape, batch: int | None = None) -> str:
    """The doctor writes shapes as Python tuples: "(N, 16, 28, 28)" when the first size is the batch, "(50,)"."""
    return notation.shape_text(shape, batch, python=True)


def error_text(error: TraceError | None) -> str | None:
    return f"{error.exc_type}: {error.message}" if error else None


#: constructor arguments shown by keyword, with the default that hides them
_DEFAULTS: dict[str, Any] = {"stride": 1, "padding": 0, "output_padding": 0, "dilation": 1, "groups": 1,
                             "bias": True, "padding_mode": "zeros", "eps": 1e-5, "momentum": 0.1, "affine": True,
                             "track_running_stats": True, "elementwise_affine": True}
#: positional constructor arguments, by torch.nn family
_POSITIONAL: dict[str, tuple[str, ...]] = {"Linear": ("in_features", "out_features"),
                                           "Conv": ("in_channels", "out_channels"),
                                           "BatchNorm": ("num_features",), "LayerNorm": ("normalized_shape",),
                                           "GroupNorm": ("num_groups", "num_channels")}


def _value(v: Any) -> str:
    if isinstance(v, (tuple, list)) and v and len(set(v)) == 1 and not isinstance(v[0], str):
        return str(v[0])
    return repr(tuple(v)) if isinstance(v, list) else repr(v)


def _family(base: str) -> str:
    if base.startswith("Conv"):
        return "Conv"
    return next((f for f in _POSITIONAL if base.startswith(f)), "")


def constructor_line(cfg: ModuleConfig, changes: dict[str, Any] | None = None, cls: str | None = None,
                     drop: tuple[str, ...] = ()) -> str:
    """`nn.Conv2d(16, 8, kernel_size=3, padding=1)`: the module rebuilt with `changes`, default arguments
    left out. A subclass keeps its own name (`CausalConv1d(...)`); a torch.nn class gets `nn.`."""
    hyper = {**cfg.hyper, **(changes or {})}
    name = cls or cfg.type
    positional = _POSITIONAL.get(_family(cfg.base), ())
    args = [_value(hyper[p]) for p in positional if p in hyper and p not in drop]
    if "kernel_size" in hyper:
        args.append(f"kernel_size={_value(hyper['kernel_size'])}")
    for key, default in _DEFAULTS.items():
        if key in hyper and key not in positional and _value(hyper[key]) != _value(default):
            args.append(f"{key}={_value(hyper[key])}")
    prefix = "nn." if name == cfg.base or cls else ""
    return f"{prefix}{name}({', '.join(args)})"


SIZING = ("Conv", "ConvTranspose", "MaxPool", "AvgPool", "AdaptiveMaxPool", "AdaptiveAvgPool", "LPPool")


def spatial_dims(cfg: ModuleConfig | None, *families: str) -> int | None:
    """n for a torch.nn `<family>{n}d` class (Conv2d, ConvTranspose1d, MaxPool3d, ...), else None."""
    if cfg is None or not cfg.base.startswith(families) or cfg.base[-2:] not in ("1d", "2d", "3d"):
        return None
    return int(cfg.base[-2])


def is_sizing(cfg: ModuleConfig | None) -> bool:
    """A conv or pooling layer: it chooses the spatial sizes."""
    return spatial_dims(cfg, *SIZING) is not None


@dataclass(frozen=True)
class Source:
    """Where a tensor's size comes from: the call that made it (None: a model input), the shape it made,
    and, when a flatten/view merged sizes on the way, the shape before that merge."""

    call: CallEvent | None
    shape: Shape
    merged_from: Shape | None = None
    input_index: int | None = None


def find_source(flow: DataFlow, tensor: TensorInfo, modules: dict[str, ModuleConfig]) -> Source:
    """Walk back from `tensor` past calls that keep the shape (activations, dropout, norms) and at most one
    reshape (flatten/view), to the layer that chose the sizes."""
    merged: Shape | None = None
    shape = tensor.shape
    path = walk_back(flow, tensor.tid)
    for call in path:
        cin, cout = call.inputs[0].shape, call.outputs[0].shape if call.outputs else shape
        cfg = modules.get(call.module) if call.kind == "module" else None
        if is_sizing(cfg) or (cfg is not None and cfg.base in ("Linear", "Embedding")):
            return Source(call, cout, merged)
        if cin == cout:
            continue
        if merged is None and math.prod(cin) == math.prod(cout) and len(cin) > len(cout):
            merged, shape = cin, cin
            continue
        return Source(call, cout, merged)
    first = path[-1].inputs[0].tid if path else tensor.tid
    inputs = {t.tid: i for i, t in enumerate(flow.trace.inputs)}
    return Source(None, merged or shape, merged, inputs.get(first))


def _ints(kind: str, value: Any, n: int, default: int) -> tuple[int, ...] | None:
    try:
        return per_dim(kind, "size", default if value is None else value, n, 0)
    except Exception:
        return None


def size_derivation(call: CallEvent, cfg: ModuleConfig) -> str | None:
    """For a conv/pool/transposed conv that changed a spatial size: "48 = 50 − 3 + 1" ("(H and W)" added
    when several dimensions share it), from `aelab.shapes.formulas`; checked against the traced sizes,
    None when nothing changed or the formula does not give what ran (a subclass with its own forward)."""
    n = spatial_dims(cfg, *SIZING)
    if n is None or not call.inputs or not call.outputs:
        return None
    cin, cout = call.inputs[0].shape, call.outputs[0].shape
    h = cfg.hyper
    k = _ints(cfg.base, h.get("kernel_size"), n, 1)
    s = _ints(cfg.base, h.get("stride") or h.get("kernel_size"), n, 1)
    p = _ints(cfg.base, h.get("padding"), n, 0)
    d = _ints(cfg.base, h.get("dilation"), n, 1)
    op = _ints(cfg.base, h.get("output_padding"), n, 0)
    if len(cin) != len(cout) or len(cin) < n + 1 or None in (k, s, p, d, op):
        return None
    assert k is not None and s is not None and p is not None and d is not None and op is not None
    groups: dict[str, list[str]] = {}
    for i in range(n):
        a, b = cin[-n + i], cout[-n + i]
        if a == b:
            continue
        if cfg.base.startswith("ConvTranspose"):
            dv = conv_transpose_size(a, k[i], s[i], p[i], d[i], op[i])
        elif cfg.base.startswith("Conv"):
            dv = conv_size(a, k[i], s[i], p[i], d[i])
        elif cfg.base.startswith(("MaxPool", "AvgPool")):
            dv = pool_size(a, k[i], s[i], p[i], d[i] if "MaxPool" in cfg.base else 1, bool(h.get("ceil_mode")))
        else:
            return None
        if dv.value != b:
            return None
        groups.setdefault(f"{b} = {dv.short}", []).append(DIM_NAMES[n][i])
    if n == 1:
        return "; ".join(groups) or None
    return "; ".join(f"{text} ({' and '.join(dims)})" for text, dims in groups.items()) or None


def source_text(source: Source, model: str) -> str:
    """", the flattened output of conv (16, 48), where 48 = 50 − 3 + 1" (no leading value)."""
    per_sample = source.shape[1:] if len(source.shape) > 1 else source.shape
    what = "the flattened output" if source.merged_from else "the output"
    if source.call is None:
        name = f"input {source.input_index}" if source.input_index else "input"
        return f"{what.replace('output', 'model ' + name)} {shape_text(per_sample)}"
    return f"{what} of {source.call.name or model} {shape_text(per_sample)}"


def origin(ctx: Context, x: TensorInfo) -> str:
    """ "the output of conv (16, 28, 28)" or "the flattened output of conv (16, 48), where 48 = 50 − 3 + 1"."""
    src = find_source(ctx.flow, x, ctx.modules)
    text = source_text(src, ctx.trace.model_type)
    cfg = ctx.modules.get(src.call.module) if src.call is not None and src.call.kind == "module" else None
    where = size_derivation(src.call, cfg) if src.call is not None and cfg is not None else None
    return text + (f", where {where}" if where else "")


# --- error context ------------------------------------------------------------------------------------
@dataclass
class Context:
    """What every explainer is handed: the trace, the modules' configurations and where it failed."""

    trace: Trace
    modules: dict[str, ModuleConfig]
    flow: DataFlow
    error: TraceError | None
    call: CallEvent | None  # the innermost call that raised (a function or a module)
    layer: CallEvent | None  # the innermost module call that raised
    batch: int | None

    @property
    def layer_config(self) -> ModuleConfig | None:
        return self.modules.get(self.layer.module) if self.layer is not None else None

    def where(self, call: CallEvent) -> str:
        """ "in Conv1dNetWrong.forward" for a function call."""
        owner = self.trace.module_types.get(call.module, self.trace.model_type)
        return f"in {owner}.forward" + (f" ({call.module})" if call.module else "")


def failing_calls(trace: Trace) -> tuple[CallEvent | None, CallEvent | None]:
    """(innermost call, innermost module call) that raised. The error's call stack says it; when the
    exception came from Python code before any torch call (e.g. BatchNorm's rank check) the stack may be
    empty, and the last module call that returned nothing is the one that raised."""
    error = trace.error
    if error is None or not trace.calls:
        return None, None
    stack = [trace.calls[c] for c in error.call_stack if c < len(trace.calls)]
    if len(stack) <= 1:
        stack = [trace.calls[0]]
        silent = [c for c in trace.calls[1:] if not c.outputs and c.inputs]
        if silent:
            last = silent[-1]
            stack = trace.path(last.cid)
    innermost = stack[-1]
    modules = [c for c in stack if c.kind == "module"]
    return innermost, (modules[-1] if modules else None)


def batch_of(shapes: list[Shape]) -> int | None:
    return shapes[0][0] if shapes and len(shapes[0]) >= 2 else None


def make_context(trace: Trace, modules: dict[str, ModuleConfig]) -> Context:
    call, layer = failing_calls(trace)
    return Context(trace, modules, DataFlow(trace), trace.error, call, layer, batch_of([t.shape for t in trace.inputs]))


_SHAPE_IN_MESSAGE = re.compile(r"shape '\[([-\d, ]*)\]' is invalid for input of size (\d+)")


def requested_shape(message: str) -> tuple[list[int], int] | None:
    """([-1, 500], 25088) from "shape '[-1, 500]' is invalid for input of size 25088"."""
    m = _SHAPE_IN_MESSAGE.search(message)
    if not m:
        return None
    return [int(v) for v in m.group(1).split(",") if v.strip()], int(m.group(2))
