"""Conv geometry: the size each encoder stage produces and the `output_padding` that makes the
mirrored transposed conv give back exactly the stage's input size (odd sizes included). The size
arithmetic and its derivation are `aelab.shapes.sizes`.
"""

from __future__ import annotations

from dataclasses import dataclass

from aelab.shapes.sizes import conv_out, dim_words, exact_output_padding


@dataclass(frozen=True)
class Stage:
    """One encoder conv stage and its mirror: sizes per spatial dim, and the solved output_padding."""

    in_size: tuple[int, ...]
    out_size: tuple[int, ...]
    kernel: int
    stride: int
    padding: int
    output_padding: tuple[int, ...]


def plan_stages(spatial: tuple[int, ...], kernels: list[int], strides: list[int]) -> list[Stage]:
    """Sizes through the encoder's stages (padding (k-1)//2) and each mirror's output_padding.

    A stage is refused, with the number of stages that would fit, when a strided stage gets a size
    smaller than its stride (it could not shrink it) or the kernel is larger than the padded input.
    """
    names = dim_words(len(spatial))
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
        ops = tuple(exact_output_padding(m, n, k, s, p) for n, m in zip(size, out))
        stages.append(Stage(size, tuple(out), k, s, p, ops))
        size = tuple(out)
    return stages
