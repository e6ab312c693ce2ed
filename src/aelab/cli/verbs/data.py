"""`aelab data list` (the embedded sets, installed or not) and `aelab data show` (what a file holds)."""

from __future__ import annotations

import sys

import click

from aelab.cli.load import parse_kwargs
from aelab.data import SOURCES, load
from aelab.render.data_text import dataset_lines, render_sources_text


@click.group(name="data")
def command() -> None:
    """The embedded datasets, and what aelab makes of a data file."""


@command.command(name="list")
def list_() -> None:
    """Every embedded set: rows, sample shape, whether it is installed, and how to install it."""
    click.echo(render_sources_text(SOURCES.values(), color=sys.stdout.isatty()), nl=False)
    click.echo("Any set can be pointed at another folder or file with AELAB_DATA_<NAME>, "
               "e.g. AELAB_DATA_FASHION_MNIST=/path/to/idx/files.")


@command.command(name="show")
@click.argument("name")
@click.option("--data-opt", multiple=True, metavar="K=V", help="Data option (see `aelab train --help`).")
@click.option("--skip-bad", is_flag=True, help="Leave out bad rows/files instead of stopping.")
def show(name: str, data_opt: tuple[str, ...], skip_bad: bool) -> None:
    """What NAME (an embedded set, a file or a folder) holds: rows, inferred shape, labels, range."""
    ds = load(name, parse_kwargs(list(data_opt)), skip_bad)
    for line in dataset_lines(ds):
        click.echo(line)
