"""`aelab data` as text: the table of embedded sets, and what a data set holds."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from rich.table import Table

from aelab.data.embedded import Source
from aelab.data.records import Dataset
from aelab.render.console import capture, text


def render_sources_text(sources: Iterable[Source], color: bool = False) -> str:
    """Every embedded set: rows, sample shape, whether it is installed, and how to install it."""
    table = Table(title="embedded data sets")
    for col in ("name", "rows", "sample shape", "installed", "from", "install with", "what"):
        table.add_column(col, overflow="fold")
    for s in sources:
        where = s.path()
        table.add_row(s.name, f"{s.rows:,}", "x".join(map(str, s.sample_shape)),
                      "yes" if where is not None else "no", s.provider, s.install, s.summary)
    console = capture(width=160, color=color)
    console.print(table)
    return text(console)


def dataset_lines(ds: Dataset) -> list[str]:
    """What a loaded data set holds: rows, shape, storage, value range (first 4,096 training rows), labels."""
    lines: list[str] = []
    n_train, n_test = len(ds.parts["train"]), len(ds.parts["test"])
    shape = "x".join(map(str, ds.sample_shape))
    lines.append(f"{ds.name}: {n_train + n_test:,} rows of shape {shape} ({ds.kind}, stored as "
                 f"{str(ds.x.dtype).removeprefix('torch.')}); {n_train:,} train / {n_test:,} test")
    sample = ds.x[ds.parts["train"][:4096]].to(torch.float32)
    lines.append(f"values in [{float(sample.min()):.4g}, {float(sample.max()):.4g}] (first 4,096 training rows)"
                 + ("; all in [0, 1]" if ds.unit_interval else ""))
    if ds.y is not None:
        counts = torch.bincount(ds.y[ds.y >= 0]).tolist() if bool((ds.y >= 0).all()) else []
        names = ds.class_names or tuple(str(i) for i in range(len(counts)))
        listed = ", ".join(f"{names[i] if i < len(names) else i}: {c:,}" for i, c in enumerate(counts) if c)
        lines.append(f"labels: {len([c for c in counts if c])} classes ({listed})")
    else:
        lines.append("labels: none")
    for note in ds.notes:
        lines.append(f"note: {note}")
    return lines
