"""`aelab data list` (the embedded sets, installed or not) and `aelab data show` (what a file holds)."""

from __future__ import annotations

import click
import torch
from rich.console import Console
from rich.table import Table

from aelab.cli.load import parse_kwargs
from aelab.data import SOURCES, load


@click.group(name="data")
def command() -> None:
    """The embedded datasets, and what aelab makes of a data file."""


@command.command(name="list")
def list_() -> None:
    """Every embedded set: rows, sample shape, whether it is installed, and how to install it."""
    table = Table(title="embedded data sets")
    for col in ("name", "rows", "sample shape", "installed", "from", "install with", "what"):
        table.add_column(col, overflow="fold")
    for s in SOURCES.values():
        where = s.path()
        table.add_row(s.name, f"{s.rows:,}", "x".join(map(str, s.sample_shape)),
                      "yes" if where is not None else "no", s.provider, s.install, s.summary)
    Console(width=160).print(table)
    click.echo("Any set can be pointed at another folder or file with AELAB_DATA_<NAME>, "
               "e.g. AELAB_DATA_FASHION_MNIST=/path/to/idx/files.")


@command.command(name="show")
@click.argument("name")
@click.option("--data-opt", multiple=True, metavar="K=V", help="Data option (see `aelab train --help`).")
@click.option("--skip-bad", is_flag=True, help="Leave out bad rows/files instead of stopping.")
def show(name: str, data_opt: tuple[str, ...], skip_bad: bool) -> None:
    """What NAME (an embedded set, a file or a folder) holds: rows, inferred shape, labels, range."""
    ds = load(name, parse_kwargs(list(data_opt)), skip_bad)
    n_train, n_test = len(ds.parts["train"]), len(ds.parts["test"])
    shape = "x".join(map(str, ds.sample_shape))
    click.echo(f"{ds.name}: {n_train + n_test:,} rows of shape {shape} ({ds.kind}, stored as "
               f"{str(ds.x.dtype).removeprefix('torch.')}); {n_train:,} train / {n_test:,} test")
    sample = ds.x[ds.parts["train"][:4096]].to(torch.float32)
    click.echo(f"values in [{float(sample.min()):.4g}, {float(sample.max()):.4g}] (first 4,096 training rows)"
               + ("; all in [0, 1]" if ds.unit_interval else ""))
    if ds.y is not None:
        counts = torch.bincount(ds.y[ds.y >= 0]).tolist() if bool((ds.y >= 0).all()) else []
        names = ds.class_names or tuple(str(i) for i in range(len(counts)))
        listed = ", ".join(f"{names[i] if i < len(names) else i}: {c:,}" for i, c in enumerate(counts) if c)
        click.echo(f"labels: {len([c for c in counts if c])} classes ({listed})")
    else:
        click.echo("labels: none")
    for note in ds.notes:
        click.echo(f"note: {note}")
