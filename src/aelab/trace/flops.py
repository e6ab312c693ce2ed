"""One registry: aten op -> (category, FLOP formula). A multiply-add counts 2.

Matrix work (mm, addmm, bmm, baddbmm, convolution and their backward, attention) reuses
`torch.utils.flop_counter`'s formulas, so `category == "matmul"` totals equal FlopCounterMode's plus the
matrix kernels it has no formula for (CPU flash attention, `_grouped_mm`, cdist's `_euclidean_dist`), derived
below. We add formulas for the rest, each a stated convention, so nothing is a silent zero:

- elementwise (add, mul, relu, sigmoid, tanh, exp, ...): 1 FLOP per output element;
- softmax / log_softmax: 5 per element (max, subtract, exp, sum, divide);
- normalisation (batch/layer/group/RMS norm, weight norm): 5 per element with statistics, 2 with running stats;
- pooling: one per window element per output (max: comparisons, avg: additions);
- interpolation (bilinear, bicubic, ... upsampling): each output element a weighted sum of its taps, a
  multiply-add each (2 per tap: 2 taps linear, 4 bilinear, 8 trilinear, 16 bicubic); backward the same;
- reductions (sum, mean, var): 1 per input element;
- data movement (view, transpose, cat, copy, index, embedding lookup) and random draws: 0, counted.

An op with none of these is *not counted*: the trace lists it by name. The registry is strict: a
formula for an op name this torch does not have, or a second formula for one op, raises
`RegistryError` when this module is imported (a misspelt name would otherwise count nothing, silently).
Adding an op is one `register(...)` line or one `@flop_formula(category, "op_name")` function.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.flop_counter import flop_registry as _torch_flop_registry

from aelab.errors import RegistryError
from aelab.trace.aten_args import ATOMS, shapes_of

aten = torch.ops.aten

#: Categories, in the order tables show them. Only "matmul" is what FlopCounterMode counts.
CATEGORIES = ("matmul", "elementwise", "normalization", "softmax", "pooling", "interpolation", "reduction", "movement",
              "random")

Formula = Callable[[tuple[Any, ...], dict[str, Any], Any], int]


@dataclass(frozen=True)
class FlopRule:
    """How one op packet is counted: its category and a formula of (args, kwargs, out)."""

    category: str
    formula: Formula


REGISTRY: dict[Any, FlopRule] = {}


def _numel(obj: Any) -> int:
    if isinstance(obj, torch.Tensor):
        return obj.numel()
    if isinstance(obj, (tuple, list)):
        return sum(_numel(o) for o in obj)
    return 0


def _first_tensor(obj: Any) -> torch.Tensor | None:
    if type(obj) in ATOMS:
        return None
    if isinstance(obj, torch.Tensor):
        return obj
    if isinstance(obj, (tuple, list)):
        for o in obj:
            t = _first_tensor(o)
            if t is not None:
                return t
    return None


def _out_numel(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> int:
    t = _first_tensor(out)
    return t.numel() if t is not None else 0


def _in_numel(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> int:
    t = _first_tensor(args)
    return t.numel() if t is not None else 0


def _packet(name: str) -> Any:
    """The aten op packet called `name`; a name this torch build does not have is an error, not a skip."""
    try:
        return getattr(aten, name)
    except (AttributeError, RuntimeError):
        raise RegistryError(f"aten.{name} is not an op of torch {torch.__version__}: a FLOP formula for it "
                            "would never be used (misspelt?)") from None


def _add(category: str, formula: Formula, packet: Any) -> None:
    if category not in CATEGORIES:
        raise RegistryError(f"{packet}: unknown category {category!r} (one of {', '.join(CATEGORIES)})")
    if packet in REGISTRY:
        raise RegistryError(f"{packet} has a FLOP formula already (category {REGISTRY[packet].category!r}); "
                            "a second one would silently replace it")
    REGISTRY[packet] = FlopRule(category, formula)


def register(category: str, formula: Formula, *names: str) -> None:
    """Register `formula` for each aten op named (e.g. "mm"). Raises `RegistryError` at import for an
    unknown name or an op that already has a formula."""
    for name in names:
        _add(category, formula, _packet(name))


def flop_formula(category: str, *names: str) -> Callable[[Formula], Formula]:
    """Decorator form of `register`, as `torch.utils.flop_counter.register_flop_formula`."""

    def decorate(formula: Formula) -> Formula:
        register(category, formula, *names)
        return formula

    return decorate


# torch's addmm / baddbmm / _scaled_mm formulas are its mm / bmm formula of two of the shapes, called through
# that formula's pytree wrapper (~30 us per op, a Linear with a bias): the same arithmetic, on the raw formula
_NESTED = {aten.addmm: (aten.mm, (1, 2)), aten.baddbmm: (aten.bmm, (1, 2)), aten._scaled_mm: (aten.mm, (0, 1))}


def _torch_formula(packet: Any) -> Formula:
    if packet in _NESTED:
        inner, (i, j) = _NESTED[packet]
        raw_inner = _torch_flop_registry[inner].__wrapped__

        def nested(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> int:
            return int(raw_inner(args[i].shape, args[j].shape))

        return nested
    fn = _torch_flop_registry[packet]
    raw = getattr(fn, "__wrapped__", None)  # torch wraps shape formulas in a pytree map of the arguments
    if raw is None:
        def formula(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> int:
            return int(fn(*args, **kwargs, out_val=out))
    else:
        def formula(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> int:
            # the same map, without pytree's per-leaf overhead (a tenth of a small model's trace)
            return int(raw(*shapes_of(args), **{k: shapes_of(v) for k, v in kwargs.items()}, out_shape=shapes_of(out)))

    return formula


for _torch_packet in _torch_flop_registry:  # torch's own entries are packets (some not aten: flex_attention)
    _add("matmul", _torch_formula(_torch_packet), _torch_packet)


def _sdpa_cpu(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> int:
    """CPU flash attention: QKᵀ and PV, 2·B·H·(Lq·Lk·E + Lq·Lk·Ev) (same as the CUDA kernels' formula)."""
    q, k, v = args[0], args[1], args[2]
    b, h, lq, e = q.shape
    lk, ev = k.shape[-2], v.shape[-1]
    return 2 * b * h * lq * lk * (e + ev)


def _sdpa_cpu_backward(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> int:
    """Backward recomputes the scores and forms dQ, dK, dV, dP: 2·B·H·Lq·Lk·(2E + 2Ev) + forward scores."""
    q, k, v = args[1], args[2], args[3]
    b, h, lq, e = q.shape
    lk, ev = k.shape[-2], v.shape[-1]
    return 2 * b * h * lq * lk * (2 * e + 2 * ev) + 2 * b * h * lq * lk * e


register("matmul", _sdpa_cpu, "_scaled_dot_product_flash_attention_for_cpu")
register("matmul", _sdpa_cpu_backward, "_scaled_dot_product_flash_attention_for_cpu_backward")

@flop_formula("matmul", "_grouped_mm")
def _grouped_mm(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> int:
    """Grouped matmul (MoE experts; transformers 5's default `grouped_mm` experts): groups of rows,
    columns or the contraction, each group its own matrix product; 2 FLOPs per multiply-add.

    With `offs` (G,) the cumulative group ends along the split dimension:
    - (M, K) × (G, K, N) → (M, N), rows split: row r meets group g(r)'s K×N, so Σ_g 2·M_g·K·N = 2·M·K·N;
    - (G, M, K) × (K, N) → (M, N), columns split: Σ_g 2·M·K·N_g = 2·M·K·N;
    - (M, K) × (K, N) → (G, M, N), contraction split: Σ_g 2·M·K_g·N = 2·M·K·N;
    - (G, M, K) × (G, K, N) → (G, M, N), no offs: a bmm, 2·G·M·K·N.
    Rows past `offs[-1]` are skipped by the kernel but counted here (shapes only; in transformers'
    MoE `offs[-1]` is every token × top-k unless experts are sharded across processes).

    Backward is `_grouped_mm` again, so this formula counts it: for the MoE case dA = dOut (M, N) ×
    Bᵀ (G, N, K), rows split (2·M·N·K), and dB = Aᵀ (K, M) × dOut (M, N), contraction split into
    (G, K, N) (2·K·M·N): twice the forward when both gradients are needed, as for mm.
    """
    a, b = args[0], args[1]
    if a.dim() == 3 and b.dim() == 3:
        return 2 * a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2]
    m, k = a.shape[-2], a.shape[-1]
    return 2 * m * k * b.shape[-1]


_ELEMENTWISE = (
    "add", "add_", "sub", "sub_", "mul", "mul_", "div", "div_", "neg", "abs", "sign", "reciprocal",
    "relu", "relu_", "relu6", "leaky_relu", "leaky_relu_", "elu", "elu_", "selu", "celu", "gelu", "silu",
    "silu_", "mish", "hardtanh", "hardtanh_", "hardswish", "hardsigmoid", "softplus", "prelu", "_prelu_kernel",
    "sigmoid", "sigmoid_", "tanh", "tanh_", "exp", "exp_", "expm1", "log", "log1p", "log2", "log_sigmoid_forward",
    "sqrt", "rsqrt", "pow", "pow_", "square", "sin", "cos", "erf", "erfinv", "clamp", "clamp_", "clamp_min",
    "clamp_max", "clip", "where", "maximum", "minimum", "fmod", "remainder", "floor", "ceil", "round", "trunc",
    "lerp", "addcmul", "addcdiv", "eq", "ne", "lt", "le", "gt", "ge", "logical_not", "logical_and", "logical_or",
    "bitwise_and", "bitwise_or", "bitwise_not", "masked_fill", "masked_fill_", "threshold", "threshold_backward",
    "sigmoid_backward", "tanh_backward", "gelu_backward", "silu_backward", "elu_backward", "hardtanh_backward",
    "leaky_relu_backward", "softplus_backward", "mish_backward", "hardswish_backward", "hardsigmoid_backward",
    "log_sigmoid_backward", "_prelu_kernel_backward", "native_dropout_backward", "xlogy", "isnan", "isinf",
    "nan_to_num", "lgamma", "digamma", "atan", "atan2", "asin", "acos", "sinh", "cosh", "logit", "frac",
    "fill_", "zero_", "native_dropout", "mse_loss", "mse_loss_backward", "binary_cross_entropy",
    "binary_cross_entropy_backward", "binary_cross_entropy_with_logits", "smooth_l1_loss", "l1_loss",
    "huber_loss", "floor_divide", "lerp_", "_softmax_backward_data", "_log_softmax_backward_data", "rsub", "sgn",
    "polar", "logaddexp",
)
register("elementwise", _out_numel, *_ELEMENTWISE)
# an op's in-place variant (`round_`, `logical_and_`) does its work, into its first argument
register("elementwise", _out_numel, *(f"{n}_" for n in _ELEMENTWISE if not n.endswith("_")
                                      and f"{n}_" not in _ELEMENTWISE and hasattr(aten, f"{n}_")))


def _softmax(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> int:
    return 5 * _out_numel(args, kwargs, out)


register("softmax", _softmax, "_softmax", "_log_softmax", "softmax", "log_softmax", "_safe_softmax")


def _norm_train(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> int:
    return 5 * _in_numel(args, kwargs, out)


def _batch_norm(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> int:
    training = bool(args[5]) if len(args) > 5 and isinstance(args[5], bool) else True
    return (5 if training else 2) * _in_numel(args, kwargs, out)


def _batch_norm_no_stats(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> int:
    return 2 * _in_numel(args, kwargs, out)


register("normalization", _batch_norm, "native_batch_norm", "_native_batch_norm_legit_functional")
register("normalization", _norm_train, "_native_batch_norm_legit", "native_layer_norm", "native_group_norm",
                                             "_fused_rms_norm", "native_batch_norm_backward",
                                             "native_layer_norm_backward", "native_group_norm_backward",
                                             "_fused_rms_norm_backward", "_batch_norm_with_update",
                                             "batch_norm_backward", "_weight_norm_interface",
                                             "_weight_norm_interface_backward")
register("normalization", _batch_norm_no_stats, "_native_batch_norm_legit_no_training",
                                                      "_batch_norm_no_update")


def _window(kernel: Any, dims: int) -> int:
    if isinstance(kernel, int):
        return kernel**dims
    ks = list(kernel)
    if len(ks) == 1:
        ks = ks * dims
    return math.prod(ks)


def _pool(dims: int) -> Formula:
    def formula(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> int:
        kernel = args[1] if len(args) > 1 else kwargs.get("kernel_size", 1)
        return _window(kernel, dims) * _out_numel(args, kwargs, out)

    return formula


def _pool_backward(dims: int) -> Formula:
    """Backward scatters each output gradient over its window: one per window element per output."""

    def formula(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> int:
        kernel = args[2] if len(args) > 2 else kwargs.get("kernel_size", 1)
        return _window(kernel, dims) * _numel(args[0])

    return formula


register("pooling", _pool(1), "max_pool1d", "max_pool1d_with_indices", "avg_pool1d")
register("pooling", _pool(2), "max_pool2d", "max_pool2d_with_indices", "avg_pool2d")
register("pooling", _pool(3), "max_pool3d", "max_pool3d_with_indices", "avg_pool3d")
register("pooling", _pool_backward(2), "max_pool2d_with_indices_backward", "avg_pool2d_backward")
register("pooling", _pool_backward(3), "max_pool3d_with_indices_backward", "avg_pool3d_backward")
register("pooling", _in_numel, "_adaptive_avg_pool2d", "_adaptive_avg_pool3d", "adaptive_avg_pool1d",
                                     "adaptive_max_pool2d", "adaptive_max_pool1d", "_adaptive_avg_pool2d_backward",
                                     "_adaptive_avg_pool3d_backward", "adaptive_max_pool2d_backward")
register("reduction", _in_numel, "sum", "mean", "var", "std", "var_mean", "std_mean", "amax", "amin",
                                       "max", "min", "argmax", "argmin", "norm", "linalg_vector_norm", "prod",
                                       "logsumexp", "cumsum", "all", "any", "nll_loss_forward",
                                       "nll_loss_backward", "nll_loss2d_forward", "nll_loss2d_backward",
                                       "topk", "sort", "kthvalue", "histc", "aminmax", "median", "_is_all_true",
                                       "_is_any_true")


def _taps(taps: int, backward: bool = False) -> Formula:
    """An interpolation: 2 FLOPs per tap per output element (forward) or per output-gradient element (backward:
    each is spread back over the same taps of the input gradient)."""
    def formula(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> int:
        return 2 * taps * (_numel(args[0]) if backward else _out_numel(args, kwargs, out))

    return formula


for _name, _n in (("upsample_linear1d", 2), ("upsample_bilinear2d", 4), ("_upsample_bilinear2d_aa", 4),
                  ("upsample_trilinear3d", 8), ("upsample_bicubic2d", 16), ("_upsample_bicubic2d_aa", 16)):
    register("interpolation", _taps(_n), _name)
    register("interpolation", _taps(_n, backward=True), f"{_name}_backward")


@flop_formula("matmul", "_euclidean_dist")
def _euclidean_dist(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> int:
    """`torch.cdist` on CPU (a VQ codebook lookup): torch computes it as one matmul of the operands padded with
    their squared norms, (..., P, M+2) × (..., M+2, R), so 2·P·R·(M+2) per batch; the norms, 1 FLOP an input
    element, are elementwise work beside it and not in this count."""
    a, b = args[0], args[1]
    batch = math.prod(a.shape[:-2]) if a.dim() > 2 else 1
    return 2 * batch * a.shape[-2] * b.shape[-2] * (a.shape[-1] + 2)


def _zero(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> int:
    return 0


_MOVEMENT = (
    "view", "_unsafe_view", "reshape", "_reshape_alias", "transpose", "transpose_", "t", "t_", "permute",
    "expand", "expand_as", "unsqueeze", "unsqueeze_", "squeeze", "squeeze_", "slice", "select", "split",
    "split_with_sizes", "chunk", "unbind", "cat", "stack", "clone", "copy_", "contiguous", "_to_copy", "detach",
    "alias", "lift_fresh", "lift_fresh_copy", "empty", "empty_like", "empty_strided", "zeros", "zeros_like",
    "ones", "ones_like", "full", "full_like", "new_empty", "new_empty_strided", "new_zeros", "new_ones",
    "new_full", "arange", "linspace", "scalar_tensor", "index", "index_select", "gather", "scatter",
    "scatter_add", "index_put", "index_put_", "index_add", "embedding", "embedding_dense_backward",
    "constant_pad_nd", "reflection_pad1d", "reflection_pad2d", "replication_pad1d", "replication_pad2d",
    "pad", "flip", "roll", "repeat", "tril", "triu", "masked_select", "nonzero", "as_strided", "unfold",
    "diagonal", "narrow", "as_strided_", "slice_backward", "select_backward", "unsqueeze_copy", "view_as_real",
    "view_as_complex", "_unsafe_index", "_unsafe_index_put", "im2col", "col2im", "upsample_nearest1d",
    "upsample_nearest2d", "upsample_nearest3d", "upsample_nearest2d_backward", "pixel_shuffle",
    "pixel_unshuffle", "tensor_split", "movedim", "flatten", "unflatten", "_local_scalar_dense", "item",
    "zero", "set_", "resize_", "_pin_memory", "to", "type_as", "masked_scatter", "index_copy", "scatter_",
    "scatter_add_", "reflection_pad1d_backward", "reflection_pad2d_backward", "_conj", "conj",
    "upsample_nearest1d_backward", "upsample_nearest3d_backward", "_upsample_nearest_exact1d",
    "_upsample_nearest_exact2d", "_upsample_nearest_exact3d", "_upsample_nearest_exact1d_backward",
    "_upsample_nearest_exact2d_backward", "_upsample_nearest_exact3d_backward",
)
register("movement", _zero, *_MOVEMENT)
register("random", _zero, "normal", "normal_", "randn", "randn_like", "rand", "rand_like", "randint",
                                "randint_like", "uniform_", "bernoulli", "bernoulli_", "randperm",
                                "exponential_", "multinomial", "_standard_gamma", "poisson")


def lookup(func: Any) -> FlopRule | None:
    """The rule for an aten OpOverload (by its packet), or None when the op is not counted."""
    return REGISTRY.get(getattr(func, "overloadpacket", func))


def count(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> tuple[str, int] | None:
    """(category, flops) for one executed op, or None when it has no formula."""
    rule = lookup(func)
    if rule is None:
        return None
    return rule.category, int(rule.formula(args, kwargs, out))
