"""`aelab inspect SPEC --input SHAPE`: the layer table, totals and bottleneck of a model."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import torch

from aelab.errors import UsageError
from aelab.spec import build_model, parse_kwargs, parse_model_spec, parse_shape


def write_output(text: str, out: str | None) -> None:
    """Print, or write atomically to `out` (one clear line if it cannot be written)."""
    if out is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return
    path = Path(out)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc.strerror or exc}") from exc


def check_device(device: str) -> str:
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available here (use meta or cpu)")
    return device


@click.command(name="inspect")
@click.argument("spec")
@click.option("--input", "inputs", multiple=True, required=True,
              help="Input shape, e.g. 1x28x28 or 8,100,201; ':long' sets the dtype; 'name=SHAPE' a keyword input.")
@click.option("--arg", "args", multiple=True, help="Constructor argument k=v (v is a Python literal).")
@click.option("--depth", type=click.IntRange(min=1), default=None, help="Show rows down to this depth.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "markdown", "html"]), default="table")
@click.option("--out", default=None, help="Write to this file instead of stdout.")
@click.option("--device", type=click.Choice(["meta", "cpu", "cuda"]), default="meta",
              help="Where to construct the model: meta (default) allocates no weights.")
@click.option("--bottleneck-only", is_flag=True, help="Only the bottleneck / encoder-decoder section.")
@click.option("--explain", "explain_rows", is_flag=True,
              help="Add the output-size formula under conv/pool/linear rows.")
@click.option("--graph", default=None, help="Also draw the data flow with Graphviz to this .svg/.png file.")
@click.option("--no-backward", is_flag=True, help="Skip recording backward (faster; no backward FLOPs).")
def command(spec: str, inputs: tuple[str, ...], args: tuple[str, ...], depth: int | None, fmt: str,
            out: str | None, device: str, bottleneck_only: bool, explain_rows: bool, graph: str | None,
            no_backward: bool) -> None:
    """Every layer's shapes, parameters and FLOPs, and the bottleneck, without the model's memory.

    FLOPs count a multiply-add as 2, as torch.utils.flop_counter does; elementwise,
    normalisation and softmax work is shown beside the matrix work, never mixed in.
    """
    from aelab.inspector import inspect

    input_specs = [parse_shape(s) for s in inputs]
    model_spec = parse_model_spec(spec)
    model = build_model(model_spec, parse_kwargs(args), device=check_device(device))
    positional = [s for s in input_specs if s.name is None]
    keyword = {s.name: s for s in input_specs if s.name is not None}
    report = inspect(model, *positional, depth=depth, backward=not no_backward, name=model_spec.name,
                     explain=explain_rows, **keyword)
    if bottleneck_only:
        from aelab.render.table import bottleneck_lines

        lines = bottleneck_lines(report) or ["No data path from the inputs to the outputs was found."]
        write_output("\n".join(lines), out)
        return
    if fmt == "json":
        from aelab.render.jsonout import render_json

        text = render_json(report)
    elif fmt == "markdown":
        from aelab.render.markdown import render_markdown

        text = render_markdown(report)
    elif fmt == "html":
        text = report._repr_html_()
    else:
        from aelab.render.table import render_text

        text = render_text(report, color=out is None and sys.stdout.isatty())
    write_output(text, out)
    if graph:
        from aelab.render.graph import render_graph

        render_graph(report, Path(graph))
    if report.trace.error is not None:
        raise click.exceptions.Exit(1)  # the user's model is wrong: `aelab doctor` explains it
