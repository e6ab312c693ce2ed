"""The bottleneck section as plain text lines (printed under the layer table, and by `--bottleneck-only`)."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

from aelab.inspection.bottleneck_notes import batch_shape, ratio_text

if TYPE_CHECKING:
    from aelab.inspection.bottleneck import Bottleneck, Representation

WIDTH = 110


def _names(names: list[str]) -> str:
    if not names:
        return "(none)"
    if len(names) <= 8:
        return ", ".join(names)
    return f"{', '.join(names[:3])}, ..., {', '.join(names[-2:])} ({len(names)} layers)"


def _wrap(text: str, first: str, rest: str) -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent=first, subsequent_indent=rest) or [first.rstrip()]


def _rows(b: Bottleneck) -> list[tuple[Representation, int]]:
    """Path rows where the width changes (and the input, latent and output), each with how many rows it stands
    for beyond itself."""
    shown: list[tuple[Representation, int]] = []
    for r in b.path:
        keep = not shown or r.role in ("latent", "output") or shown[-1][0].role == "latent" or (
            (r.per_sample, r.per_position) != (shown[-1][0].per_sample, shown[-1][0].per_position))
        if keep:
            shown.append((r, 0))
        else:
            shown[-1] = (shown[-1][0], shown[-1][1] + 1)
    return shown


_SOURCE = {"method": "the model's encode()/decode()", "sample": "the sampling step",
           "attribute": "the model's encoder/decoder", "narrowest": "width"}


def bottleneck_lines(b: Bottleneck) -> list[str]:
    """The verdict, the latent and its sizes, the encoder/decoder split, the widths along the path, the notes."""
    if b.latent_source == "none":
        lines = ["Bottleneck: none", *_wrap(b.verdict, "  ", "  ")]
        if b.notes:
            lines.append("Notes:")
            for note in b.notes:
                lines += _wrap(note, "  - ", "    ")
        return lines
    pos_word = b.position_word
    per = f", {b.per_position:,} per {pos_word or 'position'}" if b.per_position is not None else ""
    ratio = f"compression {ratio_text(b.compression_ratio)}x"
    if b.compression_ratio_per_position is not None:
        ratio += f" (per {pos_word or 'position'} {ratio_text(b.compression_ratio_per_position)}x)"
    lines = [f"Bottleneck: {b.layer} ({b.type}) {batch_shape(b.shape, b.batch)}: {b.per_sample:,} per sample"
             f"{per}; {ratio}; found by {_SOURCE.get(b.latent_source, b.latent_source)}"]
    lines += _wrap(b.verdict, "  ", "  ")
    lines.append(f"Encoder: {_names(b.encoder)}")
    lines.append(f"Decoder: {_names(b.decoder)}")
    rows = _rows(b)
    table = []
    for r, more in rows:
        pp = f"{r.per_position:,}" if r.per_position is not None else "-"
        mark = {"latent": "<- latent", "input": "", "output": "output"}.get(r.role, "")
        extra = [mark] if mark else []
        if more:
            extra.append(f"+{more} more at this width")
        if r.bypass_per_sample:
            extra.append(f"{r.bypass_per_sample:,} bypass")
        table.append((r.layer, r.type, batch_shape(r.shape, b.batch), f"{r.per_sample:,}", pp, "  ".join(extra)))
    heads = ("layer", "type", "shape", "per sample", f"per {pos_word}", "")
    keep = [0, 1, 2, 3, 4, 5] if pos_word else [0, 1, 2, 3, 5]
    widths = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(heads)]
    lines.append(f"Widths along the data path (batch N = {b.batch}, the first dim of the first input):")
    for row in (heads, *table):
        cells = [row[i].rjust(widths[i]) if i in (3, 4) else row[i].ljust(widths[i]) for i in keep]
        lines.append(("  " + "  ".join(cells)).rstrip())
    if b.notes:
        lines.append("Notes:")
        for note in b.notes:
            lines += _wrap(note, "  - ", "    ")
    return lines
