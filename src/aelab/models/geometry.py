"""Conv geometry: the size each encoder stage produces and the `output_padding` that makes the
mirrored transposed conv give back exactly the stage's input size (odd sizes included).

Formulas (PyTorch's Conv/ConvTranspose docs), per spatial dim, kernel k, stride s, padding p,
dilation d:

    conv:        L_out = floor((L_in + 2p - d(k-1) - 1) / s) + 1
    transposed:  L_out = (L_in - 1) s - 2p + d(k-1) + output_padding + 1
"""

from __future__ import annotations

from dataclasses import dataclass


def conv_out(size: int, kernel: int, stride: int, padding: int, dilation: int = 1) -> int:
    """Output size of a Conv along one dim."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def transposed_out(size: int, kernel: int, stride: int, padding: int, dilation: int = 1,
                   output_padding: int = 0) -> int:
    """Output size of a ConvTranspose along one dim."""
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def solve_output_padding(target: int, size: int, kernel: int, stride: int, padding: int,
                         dilation: int = 1) -> int:
    """The output_padding that makes ConvTranspose map `size` to `target`.

    Derivation. Setting the transposed formula equal to the target,

        target = (size - 1) s - 2p + d(k-1) + op + 1
        op     = target - [(size - 1) s - 2p + d(k-1) + 1],

    and PyTorch accepts it only if 0 <= op < max(s, d). When `size` is what the mirrored encoder
    conv made of `target`, write A = target + 2p - d(k-1) - 1, so size - 1 = floor(A / s) and
    (size - 1) s = A - (A mod s). Substituting, op = A mod s, which lies in [0, s): a mirror of a
    valid conv always has a solution, and it is the remainder the encoder's floor threw away
    (28 -> 14 with k=3, s=2, p=1 gives A = 27, op = 1). Any other (size, target) pair may have none.

    Raises ValueError when no output_padding in [0, max(s, d)) reaches the target.
    """
    op = target - transposed_out(size, kernel, stride, padding, dilation, 0)
    if not 0 <= op < max(stride, dilation):
        raise ValueError(f"no output_padding maps size {size} to {target} with kernel {kernel}, stride {stride}, "
                         f"padding {padding}, dilation {dilation}: it would need {op}, "
                         f"but it must lie in [0, {max(stride, dilation)})")
    return op


@dataclass(frozen=True)
class Stage:
    """One encoder conv stage and its mirror: sizes per spatial dim, and the solved output_padding."""

    in_size: tuple[int, ...]
    out_size: tuple[int, ...]
    kernel: int
    stride: int
    padding: int
    output_padding: tuple[int, ...]


DIM_NAMES = {1: ("length",), 2: ("height", "width")}


def plan_stages(spatial: tuple[int, ...], kernels: list[int], strides: list[int]) -> list[Stage]:
    """Sizes through the encoder's stages (padding (k-1)//2) and each mirror's output_padding.

    A stage is refused, with the number of stages that would fit, when a strided stage gets a size
    smaller than its stride (it could not shrink it) or the kernel is larger than the padded input.
    """
    names = DIM_NAMES.get(len(spatial), tuple(f"dim {i}" for i in range(len(spatial))))
    shape_text = "x".join(map(str, spatial))
    stages: list[Stage] = []
    size = spatial
    for i, (k, s) in enumerate(zip(kernels, strides)):
        p = (k - 1) // 2
        out: list[int] = []
        for name, n in zip(names, size):
            m = conv_out(n, k, s, p)
            if (s > 1 and n < s) or m < 1:
                why = f"too small for stride {s}" if m >= 1 else f"smaller than kernel {k}"
                fix = (f"use at most {i} stage(s) (fewer channels entries), or a smaller stride or kernel" if i
                       else "use a smaller stride or kernel")
                raise ValueError(f"conv: stage {i + 1} gets {name} {n}, {why}; for spatial size {shape_text} {fix}")
            out.append(m)
        ops = tuple(solve_output_padding(n, m, k, s, p) for n, m in zip(size, out))
        stages.append(Stage(size, tuple(out), k, s, p, ops))
        size = tuple(out)
    return stages
