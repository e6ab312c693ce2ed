"""Output-size formulas along one dimension (conv, transposed conv, pooling), the numbers filled in.

Pure integer arithmetic, no tensor is made: the formulas are PyTorch's own (the docs of nn.Conv2d and
nn.ConvTranspose2d, ATen's `pooling_output_shape` for pooling), and the tests check every one against the
real layer on random hyper-parameters. Shapes are those of ONE sample (no batch dimension): (C, H, W) for
conv2d, (..., in_features) for linear. FLOPs count a multiply-add as 2, bias adds not counted, exactly as
`torch.utils.flop_counter` does; pooling and flatten count 0 there too, and the explanation says so.

One dimension at a time: `conv_size`, `conv_transpose_size`, `pool_size` give the value and its
derivation; a whole layer (`explain_layer`, `explain_module`) is `aelab.explain`, the plain ints are
`aelab.shapes.sizes`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aelab.errors import UsageError


@dataclass(frozen=True)
class SizeDerivation:
    """How one output size follows from the input size: `formula` is the full line, `short` the compact
    expression without the terms that are 1 or 0 (e.g. "50 − 3 + 1" for a plain kernel-3 conv)."""

    dim: str
    value: int
    formula: str
    short: str


def _num(v: int) -> str:
    return f"−{-v}" if v < 0 else str(v)


def _pads(left: int, right: int) -> str:
    return f"2·{left}" if left == right else f"{left} + {right}"


def conv_size(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1, *,
              dim: str = "L", padding_right: int | None = None) -> SizeDerivation:
    """⌊(L + 2p − d·(k − 1) − 1) / s⌋ + 1 (nn.Conv*d); `padding_right` differs from `padding` only for
    padding='same' with an odd total. The value may be ≤ 0: callers decide whether that is an error."""
    right = padding if padding_right is None else padding_right
    num = size + padding + right - dilation * (kernel - 1) - 1
    value = num // stride + 1
    formula = (f"{dim}_out = ⌊({size} + {_pads(padding, right)} − {dilation}·({kernel} − 1) − 1) / {stride}⌋"
               f" + 1 = {_num(value)}")
    short = f"{size}" + (f" + {_pads(padding, right)}" if padding or right else "")
    if stride == 1:
        short += f" − {kernel} + 1" if dilation == 1 else f" − {dilation}·({kernel} − 1)"
    else:
        short += f" − {kernel}" if dilation == 1 else f" − {dilation}·({kernel} − 1) − 1"
        short = f"⌊({short}) / {stride}⌋ + 1"
    return SizeDerivation(dim, value, formula, short)


def conv_transpose_size(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1,
                        output_padding: int = 0, *, dim: str = "L") -> SizeDerivation:
    """(L − 1)·s − 2p + d·(k − 1) + output_padding + 1 (nn.ConvTranspose*d)."""
    value = (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1
    formula = (f"{dim}_out = ({size} − 1)·{stride} − 2·{padding} + {dilation}·({kernel} − 1)"
               f" + {output_padding} + 1 = {_num(value)}")
    short = f"({size} − 1)·{stride}" if stride != 1 else f"{size} − 1"
    short += f" − 2·{padding}" if padding else ""
    if dilation == 1:  # + (k − 1) + op + 1 = + k + op
        short += f" + {kernel}" + (f" + {output_padding}" if output_padding else "")
    else:
        short += f" + {dilation}·({kernel} − 1)" + (f" + {output_padding}" if output_padding else "") + " + 1"
    return SizeDerivation(dim, value, formula, short)


def pool_size(size: int, kernel: int, stride: int | None = None, padding: int = 0, dilation: int = 1,
              ceil_mode: bool = False, *, dim: str = "L") -> SizeDerivation:
    """Like `conv_size` (stride defaults to the kernel); with ceil_mode the division rounds up, then a last
    window that would start in the right padding is dropped (ATen's pooling_output_shape)."""
    s = kernel if stride is None else stride
    if not ceil_mode:
        return conv_size(size, kernel, s, padding, dilation, dim=dim)
    num = size + 2 * padding - dilation * (kernel - 1) - 1
    raw = -(-num // s) + 1
    body = f"⌈({size} + 2·{padding} − {dilation}·({kernel} − 1) − 1) / {s}⌉ + 1"
    if (raw - 1) * s >= size + padding:
        text = f"{body} − 1 (a last window would start in the padding) = {_num(raw - 1)}"
        return SizeDerivation(dim, raw - 1, f"{dim}_out = {text}", f"{body} − 1")
    return SizeDerivation(dim, raw, f"{dim}_out = {body} = {_num(raw)}", body)


# --- reading hyper-parameters ---------------------------------------------------------------------------
def per_dim(kind: str, name: str, value: Any, n: int, least: int) -> tuple[int, ...]:
    """An int or a sequence of 1 or n ints, each at least `least`, as n ints (UsageError otherwise)."""
    values = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values) or len(values) not in (1, n):
        raise UsageError(f"{kind}: {name} must be an integer or {n} integers, got {value!r}")
    if any(v < least for v in values):
        raise UsageError(f"{kind}: {name} must be at least {least}, got {value!r}")
    return values * n if len(values) == 1 else values
