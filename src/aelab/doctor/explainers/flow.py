"""Explainers that follow the data rather than one layer: a missing batch dimension, a view/reshape whose
sizes do not divide, a torch.cat of mismatched tensors, an autoencoder whose output is not its input's
shape. Each registers itself with `@explainer` (registry.py).
"""

from __future__ import annotations

import math
import re

from aelab.doctor.explainers.registry import explainer
from aelab.doctor.records import (
    Context,
    Finding,
    Fix,
    ModuleConfig,
    constructor_line,
    error_text,
    find_source,
    origin,
    requested_shape,
    shape_text,
    spatial_dims,
)
from aelab.explain.inverse import solve_output_padding
from aelab.shapes.formulas import conv_transpose_size, per_dim
from aelab.shapes.notation import times
from aelab.shapes.sizes import DIM_NAMES
from aelab.trace.records import CallEvent

_LAYOUT = {1: "(N, C, L)", 2: "(N, C, H, W)", 3: "(N, C, D, H, W)"}


@explainer("missing_batch_dim", "a conv took the model input as one unbatched sample; add N", order=10)
def explain_missing_batch(ctx: Context) -> list[Finding]:
    """The model input reaches the first conv with one dimension too few: (C, H, W) for a Conv2d runs as
    one unbatched sample, and everything after it (Flatten keeps dim 0) is off by a dimension; (H, W)
    with in_channels 1 lacks the channel too. Fix: the input with N (and C) in front."""
    trace = ctx.trace
    if ctx.error is None or len(trace.inputs) != 1:
        return []
    x = trace.inputs[0]
    for call in trace.calls:
        cfg = ctx.modules.get(call.module) if call.kind == "module" else None
        n = spatial_dims(cfg, "Conv")
        if n is None or cfg is None or not call.inputs:
            continue
        src = find_source(ctx.flow, call.inputs[0], ctx.modules)
        if src.call is not None or src.merged_from is not None or call.inputs[0].shape != x.shape:
            return []
        c_in = cfg.hyper.get("in_channels")
        if len(x.shape) == n + 1 and x.shape[0] == c_in:
            new, added = (1, *x.shape), "a batch dimension N"
        elif len(x.shape) == n and c_in == 1:
            new, added = (1, 1, *x.shape), "a batch dimension N and the channel dimension C = 1"
        else:
            return []
        line = "x = x.unsqueeze(0)" if len(new) == len(x.shape) + 1 else f"x = x.view({', '.join(map(str, new))})"
        return [Finding(
            "missing_batch_dim", call.module, cfg.type,
            f"the input {shape_text(x.shape)} has no batch dimension: {call.module} ({cfg.type}) takes "
            f"{_LAYOUT[n]}, so the layers after it see the wrong dimensions",
            f"input {shape_text(x.shape)}", f"{_LAYOUT[n]} for {constructor_line(cfg)}",
            line, f"{_LAYOUT[n]} = {shape_text(new)}: {added} in front",
            [f"--input {'x'.join(map(str, new))}"], error_text(ctx.error),
            Fix("input", "", {"index": 0, "shape": new}))]
    return []


# --- view / reshape -----------------------------------------------------------------------------------
_RESHAPES = {"Tensor.view": "view", "Tensor.reshape": "reshape", "torch.reshape": "reshape"}


def _occurrence(ctx: Context, call: CallEvent) -> int:
    """How many calls of the same function on an input of the same shape ran before this one."""
    shape = call.inputs[0].shape if call.inputs else ()
    return sum(1 for c in ctx.trace.calls[:call.cid]
               if c.type == call.type and c.inputs and c.inputs[0].shape == shape)


def _runs(dims: tuple[int, ...], value: int) -> tuple[int, ...] | None:
    """The consecutive sizes of `dims` whose product is `value` (to show 784 as 28 × 28)."""
    for i in range(len(dims)):
        for j in range(i + 1, len(dims) + 1):
            if math.prod(dims[i:j]) == value and j - i > 1:
                return dims[i:j]
    return None


def _solve_view(req: list[int], x: tuple[int, ...]) -> tuple[tuple[int, ...], str] | None:
    """A shape close to `req` that does divide x's elements, and the derivation of the size it changes."""
    numel = math.prod(x)
    if len(req) == 2 and -1 in req and len(x) >= 2:  # the flatten idiom: one row per sample
        per = math.prod(x[1:])
        return (x[0], per), f"{per} = {times(x[1:])}, one sample of"
    if -1 in req:
        return None
    order = sorted(range(len(req)), key=lambda j: (j < len(x) and req[j] == x[j], -j))
    for j in order:
        rest = math.prod(req[:j] + req[j + 1:])
        if rest and numel % rest == 0:
            value = numel // rest
            run = _runs(x, value)
            others = times(tuple(req[:j] + req[j + 1:]))
            text = f"{value} = {numel} / ({others})" + (f" = {times(run)}" if run else "") + ", from"
            return (*req[:j], value, *req[j + 1:]), text
    return None


@explainer("view_size", "view/reshape sizes that do not divide the input's elements", order=90)
def explain_view(ctx: Context) -> list[Finding]:
    """view/reshape whose sizes multiply to something other than the input's element count. Fix: keep
    the batch as x.size(0) and let the rest be one sample's size (the flatten idiom), or change the one
    size that makes the product right; the trace continues with that shape."""
    call = ctx.call
    if call is None or call.type not in _RESHAPES or not call.inputs or ctx.error is None:
        return []
    parsed = requested_shape(ctx.error.message)
    if parsed is None:
        return []
    req, numel = parsed
    x = call.inputs[0].shape
    solved = _solve_view(req, x)
    method = _RESHAPES[call.type]
    asked = f"x.{method}({', '.join(map(str, req))})"
    got = f"{asked} on {shape_text(x, ctx.batch)} ({numel} elements)"
    if solved is None:
        return [Finding("view_size", call.name, call.type, f"{call.name} {ctx.where(call)}: {asked} cannot "
                        f"hold {numel} elements", got, f"sizes whose product is {numel}", None, None, [],
                        error_text(ctx.error), None)]
    new, why = solved
    dims = ["x.size(0)" if i == 0 and len(x) >= 2 and v == x[0] else str(v) for i, v in enumerate(new)]
    if len(req) == 2 and -1 in req:
        dims = ["x.size(0)", "-1"]
    alternatives = [f"x.flatten(1)  # {shape_text(new, ctx.batch)}", f"x.{method}(-1, {new[1]})"] \
        if len(req) == 2 and -1 in req else []
    return [Finding(
        "view_size", call.name, call.type,
        f"{call.name} {ctx.where(call)}: {asked} does not divide the input's {numel} elements",
        got, f"sizes whose product is {numel} = {times(x)}",
        f"x.{method}({', '.join(dims)})", f"{shape_text(new, ctx.batch)}: {why} {origin(ctx, call.inputs[0])}",
        alternatives, error_text(ctx.error),
        Fix("call", call.type, {"occurrence": _occurrence(ctx, call), "input_shape": x, "shape": new}))]


# --- torch.cat ----------------------------------------------------------------------------------------
_CATS = ("torch.cat", "torch.concat", "torch.concatenate")
_CAT_DIM = re.compile(r"except in dimension (-?\d+)")


def solve_transpose(call: CallEvent, cfg: ModuleConfig,
                    wants: dict[int, int]) -> tuple[dict[str, tuple[int, ...]], str] | None:
    """New output_padding (and, when that cannot reach it, padding) for a transposed conv so that output
    dimension d (an index into its output shape) becomes wants[d]; with the derivation. None if
    PyTorch's 0 ≤ output_padding < max(stride, dilation) leaves no way."""
    n = spatial_dims(cfg, "ConvTranspose")
    if n is None or not call.inputs:
        return None
    x, rank = call.inputs[0].shape, len(call.inputs[0].shape)
    try:
        k, s, p, d, op = (per_dim(cfg.base, key, cfg.hyper.get(key, default), n, 0) for key, default in
                          (("kernel_size", 1), ("stride", 1), ("padding", 0), ("dilation", 1), ("output_padding", 0)))
    except Exception:
        return None
    pad, out_pad = list(p), list(op)
    texts: dict[str, list[str]] = {}
    for dim, want in sorted(wants.items()):
        i = dim - (rank - n)
        if not 0 <= i < n:
            return None
        try:
            sol = solve_output_padding(x[dim], want, k[i], s[i], p[i], d[i], dim=DIM_NAMES[n][i])
        except Exception:  # a wanted size below 1: no setting gives it
            return None
        options = sol.exact or tuple(o for o in sol.nearest if o.size == want)
        if not options:
            return None
        pad[i], out_pad[i] = options[0].padding, options[0].output_padding
        dv = conv_transpose_size(x[dim], k[i], s[i], pad[i], d[i], out_pad[i], dim=DIM_NAMES[n][i])
        lhs, rhs = dv.formula.split(" = ", 1)
        texts.setdefault(rhs, []).append(lhs)
    changes: dict[str, tuple[int, ...]] = {"output_padding": tuple(out_pad)}
    if tuple(pad) != p:
        changes["padding"] = tuple(pad)
    return changes, "; ".join(" = ".join([*lhs, rhs]) for rhs, lhs in texts.items())


@explainer("cat_size", "torch.cat of tensors whose sizes differ outside the cat dimension", order=100)
def explain_cat(ctx: Context) -> list[Finding]:
    """torch.cat of tensors that differ outside the cat dimension. When the odd one comes from a
    transposed conv (a U-Net's up path), solve its output_padding/padding with the ConvTranspose
    output-size formula; otherwise pad (or crop) it to tensor 0's sizes with F.pad."""
    call = ctx.call
    if call is None or call.type not in _CATS or ctx.error is None or len(call.inputs) < 2:
        return []
    m = _CAT_DIM.search(ctx.error.message)
    shapes = [t.shape for t in call.inputs]
    if m is None or len({len(s) for s in shapes}) != 1:
        return []
    rank = len(shapes[0])
    cat_dim = int(m.group(1)) % rank
    differs = {i: [d for d in range(rank) if d != cat_dim and s[d] != shapes[0][d]] for i, s in enumerate(shapes)}
    odd = [i for i, dims in differs.items() if dims]
    if not odd:
        return []
    listing = ", ".join(f"{i}: {shape_text(s, ctx.batch)}" for i, s in enumerate(shapes))
    head = (f"{call.name} {ctx.where(call)} joins along dim {cat_dim} tensors whose other sizes differ")
    expected = f"every size but dim {cat_dim} equal to tensor 0's {shape_text(shapes[0], ctx.batch)}"
    # the odd tensor (or, if it is tensor 0 that came from a transposed conv, tensor 0 itself)
    for i, target in [*((i, shapes[0]) for i in odd), (0, shapes[odd[0]])]:
        src = find_source(ctx.flow, call.inputs[i], ctx.modules)
        cfg = ctx.modules.get(src.call.module) if src.call is not None and src.call.kind == "module" else None
        if src.call is None or cfg is None or src.merged_from is not None or not cfg.base.startswith("ConvTranspose"):
            continue
        dims = [d for d in range(rank) if d != cat_dim and shapes[i][d] != target[d]]
        solved = solve_transpose(src.call, cfg, {d: target[d] for d in dims})
        if solved is None:
            continue
        changes, text = solved
        return [Finding(
            "cat_size", call.name, call.type, head, f"tensors {listing}", expected,
            constructor_line(cfg, dict(changes)),
            f"in {src.call.module}, which makes tensor {i}: {text}",
            [], error_text(ctx.error), Fix("set", src.call.module, dict(changes)))]
    i = odd[0]
    diff = differs[i]
    last = min(diff)
    pads: list[int] = []
    for d in range(rank - 1, last - 1, -1):
        pads += [0, shapes[0][d] - shapes[i][d]] if d != cat_dim else [0, 0]
    padded = tuple(shapes[0][d] if d != cat_dim else shapes[i][d] for d in range(rank))
    return [Finding(
        "cat_size", call.name, call.type, head, f"tensors {listing}", expected,
        f"t{i} = F.pad(t{i}, {tuple(pads)})",
        f"{shape_text(shapes[i], ctx.batch)} → {shape_text(padded, ctx.batch)}: tensor {i} is "
        f"{origin(ctx, call.inputs[i])}; a negative pad crops",
        [f"t{i} = F.interpolate(t{i}, size={tuple(shapes[0][d] for d in range(2, rank))})"] if rank >= 3 else [],
        error_text(ctx.error),
        Fix("call", call.type, {"occurrence": _occurrence(ctx, call), "input_shape": shapes[0],
                                "pads": {i: tuple(pads)}}))]


# --- autoencoder output -------------------------------------------------------------------------------
def _close(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    """Same rank (≥ 3), batch and channels; the other sizes off by a little (an off-by-one up path)."""
    return (len(a) == len(b) >= 3 and a[:2] == b[:2] and a != b
            and all(abs(x - y) <= max(2, y // 4) for x, y in zip(a[2:], b[2:])))


@explainer("autoencoder_output",
           "an autoencoder's output shape is not its input's: solve a transposed conv's output_padding/padding",
           order=120, on_error=False, whole_model=True)
def explain_autoencoder_output(ctx: Context) -> list[Finding]:
    """A model that ran, whose output has the input's rank, batch and channels but spatial sizes a little
    off, and which has transposed convs: an autoencoder whose decoder misses the input size. For each
    transposed conv from the last back, solve output_padding (or padding) with the ConvTranspose
    output-size formula so its output grows by the difference; the doctor keeps the first that works."""
    trace = ctx.trace
    if ctx.error is not None or not trace.inputs or not trace.outputs:
        return []
    x = trace.inputs[0].shape
    out = next((t.shape for t in trace.outputs if _close(t.shape, x)), None)
    if out is None:
        return []
    transposed = [c for c in trace.calls if c.kind == "module" and spatial_dims(ctx.modules.get(c.module),
                                                                             "ConvTranspose")]
    if not transposed:
        return []
    dims = [d for d in range(len(x)) if x[d] != out[d]]
    head = f"the output {shape_text(out, ctx.batch)} is not the input's shape {shape_text(x, ctx.batch)}"
    found = []
    for call in reversed(transposed):
        cfg = ctx.modules[call.module]
        y = call.outputs[0].shape if call.outputs else ()
        if len(y) != len(x):
            continue
        solved = solve_transpose(call, cfg, {d: y[d] + x[d] - out[d] for d in dims})
        if solved is None:
            continue
        changes, text = solved
        found.append(Finding(
            "autoencoder_output", call.module, cfg.type, f"{head}: {call.module} makes {shape_text(y, ctx.batch)}",
            f"output {shape_text(out, ctx.batch)}", f"{shape_text(x, ctx.batch)}, the input's shape",
            constructor_line(cfg, dict(changes)), text, [], None,
            Fix("set", call.module, dict(changes))))
    found.sort(key=lambda f: f.action is not None and "padding" in f.action.changes)  # output_padding alone first
    return found or [Finding("autoencoder_output", "", trace.model_type, head + "; no transposed conv's "
                             "output_padding or padding restores it", f"output {shape_text(out, ctx.batch)}",
                             f"{shape_text(x, ctx.batch)}, the input's shape")]
