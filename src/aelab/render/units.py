"""Number and shape formatting shared by the renderers."""

from __future__ import annotations

from collections.abc import Sequence

from aelab.shapes.notation import shape_text


def si(value: float, unit: str = "", digits: int = 3) -> str:
    """`digits` significant digits with an SI prefix: 8_180_000_000 -> '8.18 G' (4 digits tell 119.1 M from 119.8 M)."""
    if value == 0:
        return f"0 {unit}".rstrip()
    for factor, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= factor:
            return f"{value / factor:.{digits}g} {prefix}{unit}"
    return f"{value:.{digits}g} {unit}".rstrip()


def nbytes(value: float) -> str:
    """Bytes in decimal units: 1_234_567 -> '1.23 MB'."""
    return si(value, "B")


def count(value: int) -> str:
    return f"{value:,}"


def shape(dims: Sequence[int]) -> str:
    """'(64, 1, 28, 28)' (`aelab.shapes.notation.shape_text`)."""
    return shape_text(dims)


def shapes(list_: Sequence[Sequence[int]], limit: int = 2) -> str:
    """Shapes of a call's tensors, at most `limit` of them and a count of the rest."""
    if not list_:
        return "—"
    text = ", ".join(shape(s) for s in list_[:limit])
    if len(list_) > limit:
        text += f" +{len(list_) - limit}"
    return text
