"""A layer's output-size formulas with the numbers filled in: conv, transposed conv, pooling, linear, flatten.

Pure integer arithmetic, no tensor is made (the per-dimension formulas are `aelab.shapes.formulas`). Shapes
are those of ONE sample (no batch dimension): (C, H, W) for conv2d, (..., in_features) for linear. FLOPs
count a multiply-add as 2, bias adds not counted, exactly as `torch.utils.flop_counter` does; pooling and
flatten count 0 there too, and the explanation says so.

`explain_layer("conv2d", (1, 28, 28), out_channels=16, kernel_size=5, padding=2)`,
`explain_module(nn.Conv1d(8, 16, 3), (8, 50))`. The inverse (which padding gives a wanted size) is
`aelab.explain.inverse`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

from torch import nn

from aelab.errors import UsageError
from aelab.shapes.formulas import SizeDerivation, conv_size, conv_transpose_size, per_dim, pool_size
from aelab.shapes.notation import times
from aelab.shapes.sizes import DIM_NAMES


@dataclass(frozen=True)
class LayerExplanation:
    """Everything `aelab explain` says about one layer; shapes are one sample's (no batch dimension)."""

    kind: str
    torch_call: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    derivations: tuple[SizeDerivation, ...]
    equation: str
    weight_shape: tuple[int, ...] | None
    weight_layout: str
    bias_shape: tuple[int, ...] | None
    params: int
    params_formula: str
    flops: int
    flops_formula: str
    batch: int = 1
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (`aelab explain --format json`)."""
        return asdict(self)



def _int(kind: str, h: dict[str, Any], name: str, default: int | None, least: int) -> int:
    value = h.get(name, default)
    if value is None:
        raise UsageError(f"{kind} needs {name}")
    return per_dim(kind, name, value, 1, least)[0]


def split_sample(kind: LayerKind, x: tuple[int, ...]) -> tuple[int, tuple[int, ...]]:
    """(channels, spatial sizes) of one sample, checked against the kind's dimensionality."""
    want = "C×" + "×".join(kind.dim_names)
    if len(x) != kind.spatial + 1:
        raise UsageError(f"{kind.name} needs one sample's shape as {want} ({kind.spatial + 1} sizes), "
                         f"got {'x'.join(map(str, x))} ({len(x)} sizes)")
    return x[0], x[1:]


def _check_out(kind: str, d: SizeDerivation, why: str) -> SizeDerivation:
    if d.value <= 0:
        raise UsageError(f"{kind}: {d.formula} ≤ 0: {why}")
    return d


def sizes_arg(v: tuple[int, ...]) -> str:
    """A per-dimension argument as PyTorch takes it: (5, 5) -> "5", (3, 5) -> "(3, 5)"."""
    return str(v[0]) if len(set(v)) == 1 else str(v)


def _call(cls: str, pos: list[str], named: dict[str, tuple[Any, Any]]) -> str:
    """`nn.Conv2d(1, 16, kernel_size=5, padding=2)`: only the arguments that differ from their default."""
    args = pos + [f"{k}={sizes_arg(v) if isinstance(v, tuple) else repr(v)}"
                  for k, (v, default) in named.items() if v != default]
    return f"nn.{cls}({', '.join(args)})"


def _channel_groups(kind: str, c_in: int, c_out: int, groups: int) -> None:
    for name, c in (("in_channels", c_in), ("out_channels", c_out)):
        if c % groups:
            raise UsageError(f"{kind}: {name} {c} is not divisible by groups {groups}")


def _prod(xs: tuple[int, ...]) -> str:
    return "·".join(map(str, xs))


# --- one explainer per family ---------------------------------------------------------------------------
def _explain_conv(kind: LayerKind, x: tuple[int, ...], h: dict[str, Any], batch: int) -> LayerExplanation:
    """Conv*d and ConvTranspose*d: they share their checks; sizes, weight layout and FLOPs differ."""
    c_in, sizes = split_sample(kind, x)
    n, name, transposed = kind.spatial, kind.name, "transpose" in kind.name
    if h.get("in_channels") not in (None, c_in):
        raise UsageError(f"{name}: in_channels is {h['in_channels']} but the input has {c_in} channels")
    c_out = _int(name, h, "out_channels", None, 1)
    k = per_dim(name, "kernel_size", h.get("kernel_size"), n, 1)
    s, d = (per_dim(name, key, h.get(key, 1), n, 1) for key in ("stride", "dilation"))
    op = per_dim(name, "output_padding", h.get("output_padding", 0), n, 0)
    groups, bias = _int(name, h, "groups", 1, 1), bool(h.get("bias", True))
    _channel_groups(name, c_in, c_out, groups)
    pad, notes = h.get("padding", 0), []
    if pad in ("same", "valid") and not transposed:
        if pad == "same" and set(s) != {1}:
            raise UsageError(f"{name}: padding='same' needs stride 1 (PyTorch refuses it for strided convs)")
        total = [di * (ki - 1) if pad == "same" else 0 for di, ki in zip(d, k)]
        left, right = tuple(t // 2 for t in total), tuple(t - t // 2 for t in total)
        notes.append(f"padding={pad!r}: " + ", ".join(
            f"{dn} gets {lo} left and {r} right" for dn, lo, r in zip(kind.dim_names, left, right)))
    else:
        left = right = per_dim(name, "padding", pad, n, 0)
    derivs: list[SizeDerivation] = []
    for i, dn in enumerate(kind.dim_names):
        if transposed and op[i] >= max(s[i], d[i]):
            raise UsageError(f"{name}: output_padding {op[i]} on {dn} must be smaller than stride {s[i]} "
                             f"or dilation {d[i]}")
        if transposed:
            size = conv_transpose_size(sizes[i], k[i], s[i], left[i], d[i], op[i], dim=dn)
            derivs.append(_check_out(name, size, f"padding 2·{left[i]} removes more than the {sizes[i]} "
                                                 f"inputs produce"))
        else:
            derivs.append(_check_out(name, conv_size(sizes[i], k[i], s[i], left[i], d[i], dim=dn,
                                                     padding_right=right[i]),
                                     f"the kernel spans {d[i] * (k[i] - 1) + 1} but the padded input {dn} is "
                                     f"only {sizes[i] + left[i] + right[i]}"))
    out_sp = tuple(dv.value for dv in derivs)
    w = (c_in, c_out // groups, *k) if transposed else (c_out, c_in // groups, *k)
    positions = sizes if transposed else out_sp  # each weight is a multiply-add once per such position
    one, zero = (1,) * n, (0,) * n
    named: dict[str, tuple[Any, Any]] = {"stride": (s, one),
                                         "padding": (pad if isinstance(pad, str) else left, zero)}
    named |= {"output_padding": (op, zero)} if transposed else {}
    named |= {"dilation": (d, one), "groups": (groups, 1), "bias": (bias, True)}
    call = _call(f"ConvTranspose{n}d" if transposed else f"Conv{n}d",
                 [str(c_in), str(c_out), f"kernel_size={sizes_arg(k)}"], named)
    k_names = ", ".join(f"k{dn}" for dn in kind.dim_names)
    b = " + b" if bias else ""
    equation = (f"y = Wᵀ ⋆ x{b}: each input position adds W × its value into a {sizes_arg(k)}-wide output window, "
                f"windows {sizes_arg(s)} apart (a conv's gradient)" if transposed else
                f"y = W ⋆ x{b}: each of the {c_out} filters slides over the input (cross-correlation)")
    layout = "in_channels, out_channels / groups" if transposed else "out_channels, in_channels / groups"
    flops_text = f"2 · ({_prod(w)}) · " + (f"({_prod(positions)})" if n > 1 else str(positions[0]))
    flops_text += f" · {batch}" if batch != 1 else ""
    return LayerExplanation(
        name, call, x, (c_out, *out_sp), tuple(derivs), equation, w, f"W is ({layout}, {k_names})",
        (c_out,) if bias else None, math.prod(w) + (c_out if bias else 0),
        f"{_prod(w)}" + (f" + {c_out}" if bias else ""), 2 * math.prod(w) * math.prod(positions) * batch,
        flops_text + (" (bias adds not counted)" if bias else ""), batch, tuple(notes))


def _explain_pool(kind: LayerKind, x: tuple[int, ...], h: dict[str, Any], batch: int) -> LayerExplanation:
    c, sizes = split_sample(kind, x)
    n, name, is_max = kind.spatial, kind.name, kind.name.startswith("max")
    k = per_dim(name, "kernel_size", h.get("kernel_size"), n, 1)
    stride = h.get("stride")
    s = k if stride is None or stride == () else per_dim(name, "stride", stride, n, 1)
    p = per_dim(name, "padding", h.get("padding", 0), n, 0)
    d = per_dim(name, "dilation", h.get("dilation", 1), n, 1)
    ceil = bool(h.get("ceil_mode", False))
    for dn, pi, ki, size in zip(kind.dim_names, p, k, sizes):
        if pi > ki // 2:
            raise UsageError(f"{name}: padding {pi} on {dn} is more than half the kernel {ki} "
                             f"(PyTorch allows at most {ki // 2})")
        if name == "avgpool3d" and size < ki:  # ATen's avg_pool3d checks this before padding; 1d/2d do not
            raise UsageError(f"{name}: the input {dn} = {size} is smaller than the kernel {ki} "
                             f"(AvgPool3d needs input ≥ kernel before padding)")
    derivs = tuple(_check_out(name, pool_size(*a, dim=dn),
                              f"the window spans {a[4] * (a[1] - 1) + 1} but the padded input {dn} is only "
                              f"{a[0] + 2 * a[3]}")
                   for a, dn in zip(zip(sizes, k, s, p, d, (ceil,) * n), kind.dim_names))
    out = (c, *(dv.value for dv in derivs))
    op = "max" if is_max else "mean"
    cls = f"{'Max' if is_max else 'Avg'}Pool{n}d"
    named: dict[str, tuple[Any, Any]] = {"stride": (s, k), "padding": (p, (0,) * n)}
    if is_max:
        named["dilation"] = (d, (1,) * n)
    named["ceil_mode"] = (ceil, False)
    window = "×".join(map(str, k)) if n > 1 else f"{k[0]}-wide"
    return LayerExplanation(
        name, _call(cls, [f"kernel_size={sizes_arg(k)}"], named), x, out,
        derivs, f"y = {op} over each {window} window, per channel", None, "no weights", None, 0, "0", 0,
        f"not counted, as in torch.utils.flop_counter: {_prod(out)} outputs × windows of {_prod(k)} = "
        f"{math.prod(out) * math.prod(k) * batch} {'comparisons' if is_max else 'adds'}", batch)


def _explain_linear(kind: LayerKind, x: tuple[int, ...], h: dict[str, Any], batch: int) -> LayerExplanation:
    name = kind.name
    f_in = _int(name, h, "in_features", x[-1] if x else None, 1)
    f_out = _int(name, h, "out_features", None, 1)
    bias = bool(h.get("bias", True))
    if not x or x[-1] != f_in:
        raise UsageError(f"{name}: the input's last size is {x[-1] if x else 'missing'} but in_features is "
                         f"{f_in} (Linear acts on the last dimension)")
    rows = x[:-1]
    flops = 2 * math.prod(rows) * f_in * f_out * batch
    text = "2 · " + " · ".join(map(str, (*rows, f_in, f_out))) + (f" · {batch}" if batch != 1 else "")
    return LayerExplanation(
        name, f"nn.Linear({f_in}, {f_out}{', bias=False' if not bias else ''})", x, (*rows, f_out), (),
        f"y = x Wᵀ{' + b' if bias else ''}", (f_out, f_in), "W is (out_features, in_features)",
        (f_out,) if bias else None, f_out * f_in + (f_out if bias else 0),
        f"{f_out}·{f_in}" + (f" + {f_out}" if bias else ""), flops,
        text + (" (bias adds not counted)" if bias else ""), batch)


def _explain_flatten(kind: LayerKind, x: tuple[int, ...], h: dict[str, Any], batch: int) -> LayerExplanation:
    full = (batch, *x)
    start, end = (_int(kind.name, h, name, default, -len(full)) for name, default in (("start_dim", 1),
                                                                                       ("end_dim", -1)))
    lo, hi = start % len(full), end % len(full)
    if start >= len(full) or end >= len(full) or lo > hi:
        raise UsageError(f"flatten: start_dim {start} and end_dim {end} do not fit a {len(full)}-d input "
                         f"(batch dimension included)")
    if lo == 0:
        raise UsageError("flatten: start_dim 0 merges the batch into the features; aelab explains one sample")
    merged = full[lo:hi + 1]
    value = math.prod(merged)
    expr = times(merged)
    out = (*full[1:lo], value, *full[hi + 1:])
    return LayerExplanation(
        kind.name, _call("Flatten", [], {"start_dim": (start, 1), "end_dim": (end, -1)}), x, out,
        (SizeDerivation("features", value, f"features = {expr} = {value}", expr),),
        f"y = x.flatten({lo}, {hi}): a view, no arithmetic", None, "no weights", None, 0, "0", 0,
        "a view: no arithmetic", batch)


# --- the registry ---------------------------------------------------------------------------------------
_CONV = frozenset({"in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups",
                   "bias"})
_POOL = frozenset({"kernel_size", "stride", "padding", "ceil_mode"})


@dataclass(frozen=True)
class LayerKind:
    """One registry entry: a layer kind, its explainer, the nn.Module class it covers and the
    hyper-parameters it takes (PyTorch's own names)."""

    name: str
    spatial: int
    module_class: type[nn.Module]
    explain: Callable[[LayerKind, tuple[int, ...], dict[str, Any], int], LayerExplanation]
    accepts: frozenset[str]

    @property
    def dim_names(self) -> tuple[str, ...]:
        return DIM_NAMES.get(self.spatial, ())


def _kinds() -> dict[str, LayerKind]:
    out: dict[str, LayerKind] = {}
    for n in (1, 2, 3):
        out[f"conv{n}d"] = LayerKind(f"conv{n}d", n, getattr(nn, f"Conv{n}d"), _explain_conv, _CONV)
    for n in (1, 2, 3):
        out[f"conv_transpose{n}d"] = LayerKind(f"conv_transpose{n}d", n, getattr(nn, f"ConvTranspose{n}d"),
                                               _explain_conv, _CONV | {"output_padding"})
    for n in (1, 2, 3):
        out[f"maxpool{n}d"] = LayerKind(f"maxpool{n}d", n, getattr(nn, f"MaxPool{n}d"), _explain_pool,
                                        _POOL | {"dilation"})
    for n in (1, 2, 3):
        out[f"avgpool{n}d"] = LayerKind(f"avgpool{n}d", n, getattr(nn, f"AvgPool{n}d"), _explain_pool, _POOL)
    out["linear"] = LayerKind("linear", 0, nn.Linear, _explain_linear,
                              frozenset({"in_features", "out_features", "bias"}))
    out["flatten"] = LayerKind("flatten", 0, nn.Flatten, _explain_flatten,
                               frozenset({"start_dim", "end_dim"}))
    return out


#: kind name -> entry; a new layer kind is one entry here
LAYER_KINDS: dict[str, LayerKind] = _kinds()
#: other spellings; "conv", "conv_transpose", "maxpool", "avgpool" take their dimensionality from the input
ALIASES: dict[str, str] = {"dense": "linear", "fc": "linear", "deconv1d": "conv_transpose1d",
                           "deconv2d": "conv_transpose2d", "deconv3d": "conv_transpose3d"}
_FAMILIES = ("conv", "conv_transpose", "maxpool", "avgpool")


def _key(name: str) -> str:
    return name.strip().lower().removeprefix("torch.").removeprefix("nn.").replace("_", "").replace("-", "")


def resolve_kind(name: str, input_shape: tuple[int, ...] | None = None) -> LayerKind:
    """The registry entry for a name as users write it: `conv2d`, `Conv2d`, `nn.ConvTranspose2d`,
    `max_pool2d`, `deconv2d`, or `conv` (dimensionality from the input shape)."""
    index = {_key(k): k for k in LAYER_KINDS} | {_key(a): k for a, k in ALIASES.items()}
    key = _key(name)
    if key in {_key(f) for f in _FAMILIES} and input_shape is not None and 2 <= len(input_shape) <= 4:
        key += f"{len(input_shape) - 1}d"
    if key not in index:
        raise UsageError(f"unknown layer kind {name!r}; known: {', '.join(LAYER_KINDS)}")
    return LAYER_KINDS[index[key]]


def explain_layer(kind: str, input_shape: tuple[int, ...], *, batch: int = 1,
                  **hyper: Any) -> LayerExplanation:
    """Explain a layer from its kind, one sample's input shape and PyTorch's hyper-parameter names, e.g.
    `explain_layer("conv2d", (1, 28, 28), out_channels=16, kernel_size=5, padding=2)`; `batch` scales FLOPs.
    Raises UsageError with one sentence for bad hyper-parameters or an output size ≤ 0."""
    entry = resolve_kind(kind, input_shape)
    unknown = sorted(set(hyper) - entry.accepts)
    if unknown:
        raise UsageError(f"{entry.name} does not take {', '.join(unknown)} "
                         f"(it takes {', '.join(sorted(entry.accepts))})")
    shape = tuple(input_shape)
    if any(not isinstance(v, int) or v < 1 for v in shape):
        raise UsageError(f"{entry.name}: every input size must be at least 1, got {shape}")
    if batch < 1:
        raise UsageError(f"{entry.name}: batch must be at least 1, got {batch}")
    return entry.explain(entry, shape, {k: v for k, v in hyper.items() if v is not None}, batch)


def kind_of_module(module: nn.Module) -> LayerKind | None:
    """The registry entry whose class `module` is an instance of (subclasses included), or None."""
    return next((k for k in LAYER_KINDS.values() if isinstance(module, k.module_class)), None)


def explain_module(module: nn.Module, input_shape: tuple[int, ...], *,
                   batch: int = 1) -> LayerExplanation | None:
    """Explain a real nn.Conv*/ConvTranspose*/MaxPool*/AvgPool*/Linear/Flatten module (subclasses too) for
    one sample's input shape; None for other modules. A subclass that overrides forward() gets a note,
    because its real output may differ from the formula (e.g. a causal conv padding on the left)."""
    entry = kind_of_module(module)
    if entry is None:
        return None
    hyper = {name: getattr(module, name) for name in entry.accepts if hasattr(module, name)}
    if "bias" in hyper:
        hyper["bias"] = getattr(module, "bias", None) is not None
    for name in ("in_channels", "in_features"):
        if hyper.get(name) == 0:  # a Lazy* module not yet run: the input decides
            del hyper[name]
    result = explain_layer(entry.name, input_shape, batch=batch, **hyper)
    notes = list(result.notes)
    if type(module).forward is not entry.module_class.forward:
        base = entry.module_class.__name__
        notes.append(f"{type(module).__name__} overrides forward(); this is nn.{base}'s formula and its real "
                     f"output may differ")
    mode = getattr(module, "padding_mode", "zeros")
    if mode != "zeros":
        notes.append(f"padding_mode={mode!r} pads before the conv; the sizes are those of zero padding")
    return replace(result, notes=tuple(notes))
