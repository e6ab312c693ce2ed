"""`aelab cost SPEC --input SHAPE [--trainable GLOB] [--freeze GLOB] [--measure]`: what backward really costs."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from aelab.cli.load import load_model
from aelab.io import check_target as check_writable
from aelab.io import user_code, write_output


@click.command(name="cost")
@click.argument("spec")
@click.option("--input", "inputs", multiple=True, required=True,
              help="Input shape, e.g. 64x1x28x28; ':long' sets the dtype; 'name=SHAPE' a keyword input.")
@click.option("--arg", "args", multiple=True, help="Constructor argument k=v (v is a Python literal).")
@click.option("--trainable", multiple=True, metavar="GLOB",
              help="Only parameters matching these globs train (names or module paths: 'encoder', 'fc.*').")
@click.option("--freeze", multiple=True, metavar="GLOB", help="Parameters matching these globs do not train.")
@click.option("--measure", is_flag=True, help="Also time real forward + backward of both patterns.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default=None,
              help="Where --measure runs (default: cuda when available, else cpu).")
@click.option("--repeats", type=click.IntRange(min=1), default=20, show_default=True,
              help="Timed iterations per pattern (the median is kept).")
@click.option("--warmup", type=click.IntRange(min=0), default=3, show_default=True,
              help="Untimed iterations first.")
@click.option("--threads", type=click.IntRange(min=1, max=os.cpu_count() or 1), default=None,
              help=f"CPU threads for --measure, 1 to {os.cpu_count() or 1} (this machine's cores; default: "
                   "torch's; 1 is steadier on a busy machine).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.option("--out", default=None, help="Write the report to this file (an existing one needs --force).")
@click.option("--force", is_flag=True, help="Replace the --out and --graph files if they exist.")
@click.option("--graph", default=None,
              help="Draw autograd's backward graph to this .svg/.png, the nodes the pattern skips greyed out.")
@click.option("--eval", "eval_mode", is_flag=True,
              help="Trace in eval mode (dropout, LayerDrop off): counts that would be one random draw are exact.")
def command(spec: str, inputs: tuple[str, ...], args: tuple[str, ...], trainable: tuple[str, ...],
            freeze: tuple[str, ...], measure: bool, device: str | None, repeats: int, warmup: int,
            threads: int | None, fmt: str, out: str | None, graph: str | None, force: bool,
            eval_mode: bool) -> None:
    """Backward FLOPs for a trainable subset, split per layer into input- and weight-gradient work.

    Runs forward and backward on fake tensors with exactly the chosen requires_grad pattern and
    once with every parameter trainable. FLOPs count a multiply-add as 2, as
    torch.utils.flop_counter does, and are the kernels autograd really runs.
    """
    from aelab.costing.cost import cost
    from aelab.costing.trainable import choose

    if measure:
        from aelab.costing.timing import resolve_device

        resolve_device(device)  # fail before the slow part
    if graph:
        from aelab.render.graph import check_target

        check_target(Path(graph))
    for path in (out, graph):
        if path:
            check_writable(Path(path), force)
    with user_code():
        loaded = load_model(spec, inputs, args, device="meta")
        model, positional = loaded.model, loaded.positional
        keyword: dict[str, Any] = dict(loaded.keyword)
        result = cost(model, *positional, trainable=trainable, freeze=freeze, name=loaded.name,
                      eval_mode=eval_mode, **keyword)
        flags = choose(model, trainable, freeze)  # the pattern cost() recorded; a rebuilt model has the same names
        if measure:
            from aelab.costing.timing import resolve_device, time_patterns

            dev = resolve_device(device)
            result.timing = time_patterns(loaded.rebuild(str(dev)), list(positional), keyword,
                                          {"pattern": flags, "all": dict.fromkeys(flags, True)},
                                          device=str(dev), repeats=repeats, warmup=warmup, threads=threads)
        if graph:
            from aelab.costing.cost import backward_graph
            from aelab.render.graph import render_backward_graph

            render_backward_graph(backward_graph(model, positional, flags, keyword), Path(graph),
                                  title=f"{loaded.name}: backward with {len(result.trainable)} of "
                                        f"{len(result.trainable) + len(result.frozen)} parameter tensors trainable")
    if fmt == "json":
        from aelab.render.cost_text import render_cost_json

        write_output(render_cost_json(result), out, force)
    else:
        from aelab.render.cost_text import render_cost_text

        write_output(render_cost_text(result, color=out is None and sys.stdout.isatty()), out, force)
