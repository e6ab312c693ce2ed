"""`aelab inspect SPEC --input SHAPE`: the layer table, totals and bottleneck of a model."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from aelab.cli.load import load_model
from aelab.errors import ModelError
from aelab.io import check_target as check_writable
from aelab.io import user_code, write_output


@click.command(name="inspect")
@click.argument("spec")
@click.option("--input", "inputs", multiple=True, required=True,
              help="Input shape, e.g. 1x28x28 or 8,100,201; ':long' sets the dtype; 'name=SHAPE' a keyword input.")
@click.option("--arg", "args", multiple=True, help="Constructor argument k=v (v is a Python literal).")
@click.option("--depth", type=click.IntRange(min=1), default=None, help="Show rows down to this depth.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "markdown", "html"]), default="table")
@click.option("--out", default=None, help="Write to this file instead of stdout (an existing file needs --force).")
@click.option("--force", is_flag=True, help="Replace the --out (and --graph/--hourglass) files if they exist.")
@click.option("--device", type=click.Choice(["meta", "cpu", "cuda"]), default="meta",
              help="Where to construct the model: meta (default) allocates no weights.")
@click.option("--bottleneck-only", is_flag=True, help="Only the bottleneck / encoder-decoder section.")
@click.option("--explain", "explain_rows", is_flag=True,
              help="Add the output-size formula under conv/pool/linear rows.")
@click.option("--graph", default=None, help="Also draw the data flow with Graphviz to this .svg/.png file.")
@click.option("--hourglass", default=None, help="Also plot widths along the data path to this .png/.svg file.")
@click.option("--no-backward", is_flag=True, help="Skip recording backward (faster; no backward FLOPs).")
@click.option("--eval", "eval_mode", is_flag=True,
              help="Trace in eval mode (dropout, LayerDrop off): counts that would be one random draw are exact.")
def command(spec: str, inputs: tuple[str, ...], args: tuple[str, ...], depth: int | None, fmt: str,
            out: str | None, device: str, bottleneck_only: bool, explain_rows: bool, graph: str | None,
            hourglass: str | None, no_backward: bool, force: bool, eval_mode: bool) -> None:
    """Every layer's shapes, parameters and FLOPs, and the bottleneck, without the model's memory.

    FLOPs count a multiply-add as 2, as torch.utils.flop_counter does; elementwise,
    normalisation and softmax work is shown beside the matrix work, never mixed in.
    """
    from aelab.inspection.report import inspect

    if graph:
        from aelab.render.graph import check_target

        check_target(Path(graph))  # a missing `dot` or a bad suffix fails before the slow part
    for path in (out, graph, hourglass):
        if path:
            check_writable(Path(path), force)  # an existing file is refused before the slow part
    with user_code():
        loaded = load_model(spec, inputs, args, device)
        report = inspect(loaded.model, *loaded.positional, depth=depth, backward=not no_backward, name=loaded.name,
                         eval_mode=eval_mode, explain=explain_rows or fmt == "html", **loaded.keyword)
        if report.trace.error is not None and fmt in ("html", "json"):
            from aelab.doctor.diagnose import diagnose

            keyword: dict[str, Any] = dict(loaded.keyword)
            report.diagnosis = diagnose(loaded.model, *loaded.positional, name=loaded.name, **keyword)
    if bottleneck_only:
        from aelab.render.table import bottleneck_lines

        lines = bottleneck_lines(report) or ["No data path from the inputs to the outputs was found."]
        write_output("\n".join(lines), out, force)
        if report.trace.error is not None:
            raise ModelError(f"the forward of {loaded.name} failed ({report.trace.error.exc_type}); "
                             "`aelab doctor` finds the layer")
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
    write_output(text, out, force)
    if graph:
        from aelab.render.graph import render_graph

        render_graph(report, Path(graph))
    if hourglass and report.bottleneck is not None:
        from aelab.render.hourglass import render_hourglass

        render_hourglass(report.bottleneck, Path(hourglass))
    if report.trace.error is not None:
        raise click.exceptions.Exit(1)  # the user's model is wrong: `aelab doctor` explains it
