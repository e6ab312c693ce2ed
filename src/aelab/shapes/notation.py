"""How a shape is written, in every room: `(N, 16, 28, 28)` in sentences and tables, `1×28×28` on a
graph's edges. One copy; each room picks its form with a keyword, not its own formatter."""

from __future__ import annotations

from collections.abc import Sequence


def shape_text(dims: Sequence[int | str], batch: int | None = None, *, batch_anywhere: bool = False,
               python: bool = False) -> str:
    """'(1, 16, 28, 28)', or '(N, 16, 28, 28)' when `batch` is given and the first size equals it (rank ≥ 2).

    `batch_anywhere`: the first size equal to `batch`, wherever it is, is written N (sequence-first
    layouts, '(50, N, 201)'). `python`: a rank-1 shape is written as Python writes the tuple, '(50,)'.
    """
    sizes = [str(d) for d in dims]
    at: int | None = None
    if batch is not None:
        if batch_anywhere:
            at = next((i for i, d in enumerate(dims) if d == batch), None)
        elif len(dims) >= 2 and dims[0] == batch:
            at = 0
    if at is not None:
        sizes[at] = "N"
    return "(" + ", ".join(sizes) + ("," if python and len(sizes) == 1 else "") + ")"


def batch_shape(dims: Sequence[int], batch: int) -> str:
    """'(N, 50, 201)': the batch dim (the first dim equal to the batch) written N."""
    return shape_text(dims, batch, batch_anywhere=True)


def compact_shape(dims: Sequence[int]) -> str:
    """'1×28×28' (a graph edge's label); 'scalar' for a 0-d tensor."""
    return "×".join(map(str, dims)) if dims else "scalar"


def times(sizes: Sequence[int]) -> str:
    """'16 × 28 × 28': sizes as the product they are."""
    return " × ".join(str(s) for s in sizes)
