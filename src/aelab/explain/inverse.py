"""The inverse of the output-size formulas: which padding (conv) or output_padding (transposed conv)
gives the size you want, and, when none does exactly, the nearest options and why.

Pure integer arithmetic over `aelab.shapes.formulas`; the tests check every option it offers against the
real layer. Used by `aelab explain KIND --want SIZE`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from aelab.errors import UsageError
from aelab.explain.layers import resolve_kind, split_sample
from aelab.shapes.formulas import SizeDerivation, conv_size, conv_transpose_size, per_dim
from aelab.shapes.sizes import transposed_out


@dataclass(frozen=True)
class PaddingOption:
    """One setting and the size it gives, with its derivation."""

    padding: int
    output_padding: int
    derivation: SizeDerivation

    @property
    def size(self) -> int:
        return self.derivation.value


@dataclass(frozen=True)
class SizeSolution:
    """The answer for one spatial dimension: `exact` options give `want`; when there are none, `nearest`
    holds the closest ones (below and above, or an exact one with another padding) and `note` says why."""

    dim: str
    input_size: int
    want: int
    solves: str  # "padding" or "output_padding"
    exact: tuple[PaddingOption, ...]
    nearest: tuple[PaddingOption, ...]
    note: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return asdict(self)


def _closest(options: list[PaddingOption], want: int) -> tuple[PaddingOption, ...]:
    """The option just below `want` and the one just above (first found of each size), sizes ≥ 1 only."""
    below = [o for o in options if 1 <= o.size < want]
    above = [o for o in options if o.size > want]
    picks = ([max(below, key=lambda o: (o.size, -o.padding))] if below else []) + \
            ([min(above, key=lambda o: (o.size, o.padding))] if above else [])
    return tuple(picks)


def _check(size: int, want: int, kernel: int, stride: int, dilation: int) -> None:
    for name, value in (("input size", size), ("wanted size", want), ("kernel_size", kernel),
                        ("stride", stride), ("dilation", dilation)):
        if value < 1:
            raise UsageError(f"the {name} must be at least 1, got {value}")


def solve_padding(size: int, want: int, kernel: int, stride: int = 1, dilation: int = 1, *,
                  dim: str = "L") -> SizeSolution:
    """The paddings p ≥ 0 with ⌊(size + 2p − d·(k − 1) − 1) / s⌋ + 1 = want.

    That holds when the total padding 2p lies in [need, need + s − 1], need = s·(want − 1) − size + d·(k − 1)
    + 1; with stride 1 only need itself works, so an odd need has no symmetric answer."""
    _check(size, want, kernel, stride, dilation)
    need = stride * (want - 1) - size + dilation * (kernel - 1) + 1
    options = [PaddingOption(p, 0, conv_size(size, kernel, stride, p, dilation, dim=dim))
               for p in range(0, max(0, (need + stride) // 2) + 2)]
    exact = tuple(o for o in options if o.size == want)
    if exact:
        ps = [o.padding for o in exact]
        some = f"{ps[0]} and {ps[1]} both" if len(ps) == 2 else f"{ps[0]} to {ps[-1]} all"
        note = (f"padding {ps[0]} gives {want}" if len(ps) == 1 else
                f"stride {stride} rounds down, so paddings {some} give {want}")
        return SizeSolution(dim, size, want, "padding", exact, (), note)
    if need + stride - 1 < 0:
        note = (f"even with padding 0 the output is {options[0].size} > {want}: padding only grows the "
                f"output; use a larger kernel, stride or dilation")
        return SizeSolution(dim, size, want, "padding", (), (options[0],), note)
    # stride 1 and an odd total: no symmetric padding; PyTorch's padding='same' pads one more on the right
    same = " (padding='same' does exactly that)" if want == size else ""
    note = (f"the total padding needed, {need}, is odd, so no equal padding on both sides gives {want}: pad "
            f"{need // 2} left and {need - need // 2} right with F.pad{same}, or take a nearest option")
    return SizeSolution(dim, size, want, "padding", (), _closest(options, want), note)


def solve_output_padding(size: int, want: int, kernel: int, stride: int = 1, padding: int = 0,
                         dilation: int = 1, *, dim: str = "L") -> SizeSolution:
    """The output_padding op with (size − 1)·s − 2p + d·(k − 1) + op + 1 = want, where PyTorch requires
    0 ≤ op < max(stride, dilation). When none fits, the nearest options may change the padding too."""
    _check(size, want, kernel, stride, dilation)
    if padding < 0:
        raise UsageError(f"padding must be at least 0, got {padding}")
    room = max(stride, dilation)
    base = transposed_out(size, kernel, stride, padding, dilation)
    op = want - base
    if 0 <= op < room:
        option = PaddingOption(padding, op, conv_transpose_size(size, kernel, stride, padding, dilation, op,
                                                                dim=dim))
        note = (f"output_padding {op} adds {op} to the {base} that padding {padding} gives" if op else
                f"padding {padding} already gives {want}; no output_padding needed")
        return SizeSolution(dim, size, want, "output_padding", (option,), (), note)
    top = conv_transpose_size(size, kernel, stride, 0, dilation, 0).value + room
    options = [PaddingOption(p, o, conv_transpose_size(size, kernel, stride, p, dilation, o, dim=dim))
               for p in range(0, top // 2 + 1) for o in range(room)]
    why = (f"with padding {padding} the output_padding would have to be {op}".replace("-", "−") +
           f", but PyTorch needs 0 ≤ output_padding < max(stride {stride}, dilation {dilation}) = {room}")
    others = sorted((o for o in options if o.size == want),
                    key=lambda o: (abs(o.padding - padding), o.padding))
    if others:
        o = others[0]
        note = f"{why}; padding {o.padding} with output_padding {o.output_padding} gives {want}"
        return SizeSolution(dim, size, want, "output_padding", (), tuple(others[:2]), note)
    hint = "; use a larger stride or kernel" if op >= room else ""
    return SizeSolution(dim, size, want, "output_padding", (), _closest(options, want),
                        f"{why}, and no other padding gives {want} either{hint}")


def solve_layer(kind: str, input_shape: tuple[int, ...], want: int | tuple[int, ...],
                **hyper: Any) -> tuple[SizeSolution, ...]:
    """Per spatial dimension of one sample's input (C, spatial...): the padding of a conv, or the
    output_padding of a transposed conv, that gives `want` (one size for every dimension, or one each)."""
    entry = resolve_kind(kind, input_shape)
    transposed = entry.name.startswith("conv_transpose")
    if not entry.name.startswith("conv"):
        raise UsageError(f"--want solves the padding of a conv or the output_padding of a transposed conv; "
                         f"{entry.name} has neither")
    solved = "output_padding" if transposed else "padding"
    if hyper.get(solved) is not None:
        raise UsageError(f"{entry.name}: --want solves {solved}, so leave {solved} out")
    n = entry.spatial
    _, sizes = split_sample(entry, input_shape)
    wants = per_dim(entry.name, "the wanted size", want, n, 1)
    k = per_dim(entry.name, "kernel_size", hyper.get("kernel_size"), n, 1)
    s, d = (per_dim(entry.name, key, hyper.get(key) or 1, n, 1) for key in ("stride", "dilation"))
    if transposed:
        p = per_dim(entry.name, "padding", hyper.get("padding") or 0, n, 0)
        return tuple(solve_output_padding(sizes[i], wants[i], k[i], s[i], p[i], d[i], dim=dn)
                     for i, dn in enumerate(entry.dim_names))
    return tuple(solve_padding(sizes[i], wants[i], k[i], s[i], d[i], dim=dn)
                 for i, dn in enumerate(entry.dim_names))
