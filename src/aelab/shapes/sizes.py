"""Sizes along one spatial dim as plain ints: conv and transposed conv outputs, and the exact
`output_padding` that makes a transposed conv reach a wanted size. One copy, used by the builder
(`models/geometry.py`), the size explainer (`shapes/inverse.py`) and the doctor.

Formulas (PyTorch's Conv/ConvTranspose docs), per spatial dim, kernel k, stride s, padding p,
dilation d:

    conv:        L_out = floor((L_in + 2p - d(k-1) - 1) / s) + 1
    transposed:  L_out = (L_in - 1) s - 2p + d(k-1) + output_padding + 1
"""

from __future__ import annotations

#: spatial dims -> the axis letters of PyTorch's docs ((N, C, L), (N, C, H, W), (N, C, D, H, W)).
DIM_NAMES: dict[int, tuple[str, ...]] = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}
#: an axis letter as a word, for sentences ("stage 2 gets height 3").
DIM_WORDS: dict[str, str] = {"L": "length", "D": "depth", "H": "height", "W": "width"}


def dim_words(n: int) -> tuple[str, ...]:
    """The words for `n` spatial dims ("length"; "height", "width"), `dim i` where there are none."""
    return tuple(DIM_WORDS[c] for c in DIM_NAMES[n]) if n in DIM_NAMES else tuple(f"dim {i}" for i in range(n))


def conv_out(size: int, kernel: int, stride: int, padding: int, dilation: int = 1) -> int:
    """Output size of a Conv along one dim."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def transposed_out(size: int, kernel: int, stride: int, padding: int, dilation: int = 1,
                   output_padding: int = 0) -> int:
    """Output size of a ConvTranspose along one dim."""
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def output_padding_needed(size: int, want: int, kernel: int, stride: int, padding: int, dilation: int = 1) -> int:
    """The output_padding op that makes ConvTranspose map `size` to `want`; it may lie outside the
    range PyTorch accepts, 0 <= op < max(stride, dilation) (see `exact_output_padding`)."""
    return want - transposed_out(size, kernel, stride, padding, dilation, 0)


def exact_output_padding(size: int, want: int, kernel: int, stride: int, padding: int, dilation: int = 1) -> int:
    """The output_padding that makes ConvTranspose map `size` to `want`.

    Derivation. Setting the transposed formula equal to the wanted size,

        want = (size - 1) s - 2p + d(k-1) + op + 1
        op   = want - [(size - 1) s - 2p + d(k-1) + 1],

    and PyTorch accepts it only if 0 <= op < max(s, d). When `size` is what the mirrored encoder
    conv made of `want`, write A = want + 2p - d(k-1) - 1, so size - 1 = floor(A / s) and
    (size - 1) s = A - (A mod s). Substituting, op = A mod s, which lies in [0, s): a mirror of a
    valid conv always has a solution, and it is the remainder the encoder's floor threw away
    (28 -> 14 with k=3, s=2, p=1 gives A = 27, op = 1). Any other (size, want) pair may have none.

    Raises ValueError when no output_padding in [0, max(s, d)) reaches `want`.
    (`shapes.inverse.solve_output_padding` is the explaining form: options and a note instead of an error.)
    """
    op = output_padding_needed(size, want, kernel, stride, padding, dilation)
    if not 0 <= op < max(stride, dilation):
        raise ValueError(f"no output_padding maps size {size} to {want} with kernel {kernel}, stride {stride}, "
                         f"padding {padding}, dilation {dilation}: it would need {op}, "
                         f"but it must lie in [0, {max(stride, dilation)})")
    return op
