"""Explainers of one layer's configuration against its input (Linear, conv, BatchNorm, LayerNorm) and the
catch-all `other_error`; the data-flow ones (batch dimension, view, cat, autoencoder output) are in `flow`.
Each registers itself with `@explainer` (registry.py), its `order` placing it among the others.
"""

from __future__ import annotations

import math

from aelab.doctor.explainers.registry import explainer
from aelab.doctor.records import (
    Context,
    Finding,
    Fix,
    ModuleConfig,
    constructor_line,
    error_text,
    find_source,
    is_sizing,
    origin,
    shape_text,
    spatial_dims,
)
from aelab.shapes.notation import times
from aelab.trace.records import CallEvent, TensorInfo


def _layer(ctx: Context, *bases: str) -> tuple[CallEvent, ModuleConfig, TensorInfo] | None:
    """The failing module call, its config and its first input, when its torch.nn class starts with a base."""
    layer, cfg = ctx.layer, ctx.layer_config
    if layer is None or cfg is None or not layer.inputs or not cfg.base.startswith(bases):
        return None
    return layer, cfg, layer.inputs[0]


# --- Linear -------------------------------------------------------------------------------------------
def _linear(ctx: Context) -> tuple[CallEvent, ModuleConfig, TensorInfo, int] | None:
    found = _layer(ctx, "Linear")
    if found is None or not found[2].shape or found[2].shape[-1] == found[1].hyper.get("in_features"):
        return None
    return (*found, int(found[1].hyper["in_features"]))


def _lazy(cfg: ModuleConfig) -> str:
    bias = "" if cfg.hyper.get("bias", True) else ", bias=False"
    return f"nn.LazyLinear({cfg.hyper['out_features']}{bias})  # in_features taken from the first batch"


def _linear_finding(ctx: Context, kind: str, layer: CallEvent, cfg: ModuleConfig, x: TensorInfo, problem: str,
                    fix: str, derivation: str, action: Fix, alternatives: list[str]) -> list[Finding]:
    f_in = cfg.hyper["in_features"]
    return [Finding(kind, layer.module, cfg.type, problem, f"input {shape_text(x.shape, ctx.batch)}",
                    f"last size {f_in} (in_features={f_in}): Linear acts on the last dimension", fix, derivation,
                    alternatives, error_text(ctx.error), action)]


@explainer("linear_channel_axis", "Linear(C, out) on (N, C, L): use a 1-wide conv", order=20)
def explain_linear_channel_axis(ctx: Context) -> list[Finding]:
    """Linear(C, out) on (N, C, L...): it acts on the last axis, L, but in_features matches the channel
    axis C. Fix: nn.Conv{1,2,3}d(C, out, kernel_size=1), the same Linear at every position."""
    found = _linear(ctx)
    if found is None:
        return []
    layer, cfg, x, f_in = found
    s = x.shape
    if not 3 <= len(s) <= 5 or s[1] != f_in:
        return []
    n, out, bias = len(s) - 2, cfg.hyper["out_features"], cfg.hyper.get("bias", True)
    conv = f"Conv{n}d"
    kwargs = {"in_channels": f_in, "out_channels": out, "kernel_size": 1, "bias": bias}
    positions = times(s[2:])
    line = f"nn.{conv}({f_in}, {out}, kernel_size=1{'' if bias else ', bias=False'})"
    return _linear_finding(
        ctx, "linear_channel_axis", layer, cfg, x,
        f"{layer.module} is Linear({f_in}, {out}) on {shape_text(s, ctx.batch)}: it acts on the last axis "
        f"({s[-1]}), but in_features {f_in} is the size of the channel axis",
        line, f"{f_in} = the channels of {origin(ctx, x)}; a 1-wide conv applies the Linear at each of "
                 f"the {positions} positions",
        Fix("replace", layer.module, {"modules": [(conv, kwargs)]}),
        [f"x = x.movedim(1, -1) before {layer.module}: (N, {times(s[2:])}, {f_in}) → (N, {times(s[2:])}, {out})",
         f"nn.Sequential(nn.Flatten(), nn.Linear({math.prod(s[1:])}, {out}))  # one vector per sample"])


@explainer("linear_missing_flatten", "Linear(C·L, out) on (N, C, L): flatten first", order=30)
def explain_linear_missing_flatten(ctx: Context) -> list[Finding]:
    """Linear(F, out) on (N, C, L...) where F = C × L × ...: the input was meant to be flattened first.
    Fix: nn.Sequential(nn.Flatten(), nn.Linear(F, out))."""
    found = _linear(ctx)
    if found is None:
        return []
    layer, cfg, x, f_in = found
    if len(x.shape) < 3 or math.prod(x.shape[1:]) != f_in:
        return []
    out = cfg.hyper["out_features"]
    kwargs = {"in_features": f_in, "out_features": out, "bias": cfg.hyper.get("bias", True)}
    linear = constructor_line(cfg, {}, "Linear")
    return _linear_finding(
        ctx, "linear_missing_flatten", layer, cfg, x,
        f"{layer.module} gets {shape_text(x.shape, ctx.batch)} unflattened: in_features {f_in} is all of "
        f"one sample's {times(x.shape[1:])} values, but Linear acts on the last dimension only",
        f"nn.Sequential(nn.Flatten(), {linear})",
        f"{f_in} = {times(x.shape[1:])}, {origin(ctx, x)}",
        Fix("replace", layer.module, {"modules": [("Flatten", {}), ("Linear", kwargs)]}),
        [f"x = x.flatten(1) before {layer.module}"])


@explainer("linear_in_features", "in_features is not the input's size: the flattened size and why", order=40)
def explain_linear_in_features(ctx: Context) -> list[Finding]:
    """Linear whose in_features is not its input's size: after a Flatten/view the right number is the
    product of the flattened shape, with the conv/pool output-size arithmetic where it shrank. Fix:
    nn.Linear(<that number>, out), or nn.LazyLinear(out)."""
    found = _linear(ctx)
    if found is None:
        return []
    layer, cfg, x, f_in = found
    src = find_source(ctx.flow, x, ctx.modules)
    out, value = cfg.hyper["out_features"], x.shape[-1]
    from_conv = src.call is not None and src.merged_from is None and len(x.shape) >= 3 and src.call.kind == "module" \
        and is_sizing(ctx.modules.get(src.call.module))
    if from_conv:  # a conv's (N, C, L) straight into a Linear: flatten it, as seed 004 says
        value = math.prod(x.shape[1:])
        kwargs = {"in_features": value, "out_features": out, "bias": cfg.hyper.get("bias", True)}
        return _linear_finding(
            ctx, "linear_in_features", layer, cfg, x,
            f"{layer.module} has in_features={f_in}, but its input is {shape_text(x.shape, ctx.batch)}",
            f"nn.Sequential(nn.Flatten(), {constructor_line(cfg, {'in_features': value}, 'Linear')})",
            f"{value} = {times(x.shape[1:])}: flatten {origin(ctx, x)}",
            Fix("replace", layer.module, {"modules": [("Flatten", {}), ("Linear", kwargs)]}),
            [f"{constructor_line(cfg, {'in_features': x.shape[-1]})}  # acts on the last axis only: "
             f"{x.shape[-1]} per channel"])
    per_sample = src.merged_from[1:] if src.merged_from else ()
    if src.merged_from and math.prod(per_sample) == value:
        derivation = f"{value} = {times(per_sample)}, {origin(ctx, x)}"
    else:
        derivation = f"{value} = the last size of {origin(ctx, x)}"
    return _linear_finding(
        ctx, "linear_in_features", layer, cfg, x,
        f"{layer.module} has in_features={f_in}, but its input has {value} features",
        constructor_line(cfg, {"in_features": value}), derivation,
        Fix("set", layer.module, {"in_features": value}), [_lazy(cfg)])


# --- conv and normalisation ---------------------------------------------------------------------------
def _channel_axis(cfg: ModuleConfig, x: TensorInfo) -> int | None:
    n = spatial_dims(cfg, "Conv")
    if n is None:
        return None
    return 1 if len(x.shape) == n + 2 else 0 if len(x.shape) == n + 1 else None


def _producer_alternative(ctx: Context, x: TensorInfo, key: str, want: int) -> list[str]:
    """ "or let conv1 make 32 channels: nn.Conv2d(1, 32, ...)" when a conv made the channels."""
    src = find_source(ctx.flow, x, ctx.modules)
    cfg = ctx.modules.get(src.call.module) if src.call is not None and src.call.kind == "module" else None
    if cfg is None or not cfg.base.startswith("Conv") or src.merged_from is not None:
        return []
    return [f"{constructor_line(cfg, {'out_channels': want})}  # or let {src.call.module if src.call else ''} make "
            f"{want} channels ({key}={want} stays)"]


@explainer("conv_in_channels", "conv in_channels is not the input's channels", order=50)
def explain_conv_in_channels(ctx: Context) -> list[Finding]:
    """Conv*d / ConvTranspose*d whose in_channels is not the input's channel count (dim 1, or 0 when
    unbatched). Fix: in_channels = that count, or nn.LazyConv*d."""
    found = _layer(ctx, "Conv")
    if found is None:
        return []
    layer, cfg, x = found
    axis = _channel_axis(cfg, x)
    want = int(cfg.hyper.get("in_channels", 0))
    if axis is None or x.shape[axis] == want:
        return []
    c = x.shape[axis]
    groups = int(cfg.hyper.get("groups", 1))
    action = Fix("set", layer.module, {"in_channels": c}) if c % groups == 0 else None
    lazy = constructor_line(cfg, {}, f"Lazy{cfg.base}", drop=("in_channels",))
    return [Finding(
        "conv_in_channels", layer.module, cfg.type,
        f"{layer.module} expects {want} input channels, but its input has {c}",
        f"input {shape_text(x.shape, ctx.batch)}: {c} channels",
        f"{want} channels (in_channels={want})",
        constructor_line(cfg, {"in_channels": c}) if action else None,
        f"{c} = the channels of {origin(ctx, x)}" + ("" if action else f"; not divisible by groups={groups}"),
        [f"{lazy}  # in_channels taken from the first batch", *_producer_alternative(ctx, x, "in_channels", want)],
        error_text(ctx.error), action)]


@explainer("batchnorm_num_features", "BatchNorm num_features is not the input's channels", order=60)
def explain_batchnorm_num_features(ctx: Context) -> list[Finding]:
    """BatchNorm*d whose num_features is not the input's channel count (dim 1). Fix: num_features = it."""
    found = _layer(ctx, "BatchNorm")
    if found is None:
        return []
    layer, cfg, x = found
    want = int(cfg.hyper.get("num_features", 0))
    if len(x.shape) < 2 or x.shape[1] == want or not _rank_ok(cfg, x):
        return []
    c = x.shape[1]
    return [Finding(
        "batchnorm_num_features", layer.module, cfg.type,
        f"{layer.module} normalises {want} channels, but its input has {c}",
        f"input {shape_text(x.shape, ctx.batch)}: {c} channels", f"{want} channels (num_features={want})",
        constructor_line(cfg, {"num_features": c}), f"{c} = the channels of {origin(ctx, x)}",
        [f"nn.Lazy{cfg.base}()  # num_features taken from the first batch",
         *_producer_alternative(ctx, x, "num_features", want)], error_text(ctx.error),
        Fix("set", layer.module, {"num_features": c}))]


_BN_RANKS = {"BatchNorm1d": (2, 3), "BatchNorm2d": (4,), "BatchNorm3d": (5,)}
_BN_FOR_RANK = {2: "BatchNorm1d", 3: "BatchNorm1d", 4: "BatchNorm2d", 5: "BatchNorm3d"}


def _rank_ok(cfg: ModuleConfig, x: TensorInfo) -> bool:
    return len(x.shape) in _BN_RANKS.get(cfg.base, (len(x.shape),))


@explainer("batchnorm_rank", "BatchNorm1d/2d/3d on an input of another rank", order=70)
def explain_batchnorm_rank(ctx: Context) -> list[Finding]:
    """BatchNorm1d on a 4-D input, BatchNorm2d on a 3-D one, ...: the class must match the input's rank
    ((N, C) or (N, C, L): 1d; (N, C, H, W): 2d; (N, C, D, H, W): 3d). Fix: the right class, C channels."""
    found = _layer(ctx, "BatchNorm")
    if found is None:
        return []
    layer, cfg, x = found
    right = _BN_FOR_RANK.get(len(x.shape))
    if _rank_ok(cfg, x) or right is None or cfg.base not in _BN_RANKS:
        return []
    c = x.shape[1]
    kwargs = {k: v for k, v in cfg.hyper.items() if k in ("eps", "momentum", "affine", "track_running_stats")}
    layout = {2: "(N, C)", 3: "(N, C, L)", 4: "(N, C, H, W)", 5: "(N, C, D, H, W)"}[len(x.shape)]
    return [Finding(
        "batchnorm_rank", layer.module, cfg.type,
        f"{layer.module} is {cfg.base}, which takes {' or '.join(f'{r}-D' for r in _BN_RANKS[cfg.base])} "
        f"input, but gets a {len(x.shape)}-D one",
        f"input {shape_text(x.shape, ctx.batch)}", f"a {right} for a {layout} input",
        constructor_line(cfg, {"num_features": c}, right),
        f"{shape_text(x.shape, ctx.batch)} is {layout} with C = {c}, {origin(ctx, x)}", [],
        error_text(ctx.error), Fix("replace", layer.module, {"modules": [(right, {"num_features": c, **kwargs})]}))]


@explainer("layernorm_shape", "LayerNorm normalized_shape is not the input's trailing sizes", order=80)
def explain_layernorm_shape(ctx: Context) -> list[Finding]:
    """LayerNorm whose normalized_shape is not the input's trailing sizes. Fix: those sizes."""
    found = _layer(ctx, "LayerNorm")
    if found is None:
        return []
    layer, cfg, x = found
    ns = tuple(cfg.hyper.get("normalized_shape", ()))
    if not ns or len(ns) > len(x.shape) or tuple(x.shape[-len(ns):]) == ns:
        return []
    want = tuple(x.shape[-len(ns):])
    value = want[0] if len(want) == 1 else want
    return [Finding(
        "layernorm_shape", layer.module, cfg.type,
        f"{layer.module} normalises over {ns}, but the input ends in {want}",
        f"input {shape_text(x.shape, ctx.batch)}", f"trailing sizes {ns} (normalized_shape)",
        constructor_line(cfg, {"normalized_shape": value}),
        f"{times(want)} = the trailing size{'s' if len(want) > 1 else ''} of {origin(ctx, x)}", [],
        error_text(ctx.error),
        Fix("set", layer.module, {"normalized_shape": want}))]


@explainer("other_error", "anything else: the layer and the original error", order=110)
def explain_other_error(ctx: Context) -> list[Finding]:
    """Anything else the forward raised, shape problem or not: the layer, what it got, the original error.
    No fix is guessed."""
    if ctx.error is None:
        return []
    call = ctx.layer if ctx.layer is not None and ctx.layer.parent is not None else ctx.call
    if call is not None and call.parent is None:
        call = None  # raised in the model's own forward, outside any torch call
    if call is None:
        name, type_, where = "", ctx.trace.model_type, f"{ctx.trace.model_type}.forward"
    elif call.kind == "module":
        name, type_, where = call.module, call.type, call.module
    else:
        name, type_, where = call.name, call.type, f"{call.name} {ctx.where(call)}"
    tensors = call.inputs if call is not None else ctx.trace.inputs
    got = ", ".join(shape_text(t.shape, ctx.batch) for t in tensors)
    return [Finding("other_error", name, type_, f"{where} raised {ctx.error.exc_type}, which the doctor has "
                    "no explainer for; the original error is below", f"input {got}" if got else "no tensor input",
                    "see the error", None, None, [], error_text(ctx.error), None)]
