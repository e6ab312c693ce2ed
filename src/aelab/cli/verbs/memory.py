"""`aelab memory SPEC --input SHAPE [--optimizer adam] [--amp bf16] [--fit 80GB]`: one training step's memory."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from aelab.cli.load import load_model
from aelab.io import write_output


@click.command(name="memory")
@click.argument("spec")
@click.option("--input", "inputs", multiple=True, required=True,
              help="Input shape, e.g. 64x1x28x28; ':long' sets the dtype; 'name=SHAPE' a keyword input.")
@click.option("--arg", "args", multiple=True, help="Constructor argument k=v (v is a Python literal).")
@click.option("--optimizer", default="adam", show_default=True, help="sgd, sgd-momentum, adam or adamw.")
@click.option("--amp", default="off", show_default=True, help="Autocast: off, bf16 or fp16.")
@click.option("--loss", default="sum", show_default=True,
              help="sum: the sum of the floating outputs (exact for a model that returns its loss); "
                   "mse: the first output against the first input.")
@click.option("--trainable", multiple=True, metavar="GLOB",
              help="Only parameters matching these globs train (names or module paths, as in `aelab cost`).")
@click.option("--freeze", multiple=True, metavar="GLOB", help="Parameters matching these globs do not train.")
@click.option("--checkpoint", multiple=True, metavar="GLOB",
              help="What if these modules ran under activation checkpointing?")
@click.option("--fit", default=None, metavar="SIZE",
              help="The largest batch (first input dimension) whose peak fits SIZE: 80GB, 24GiB, 512MiB.")
@click.option("--device", "target", type=click.Choice(["cuda", "cpu"]), default="cuda", show_default=True,
              help="Whose allocator the sizes are rounded for (cuda: 512-byte blocks; cpu: exact bytes).")
@click.option("--no-what-if", is_flag=True, help="Skip the what-ifs (another optimizer, all trainable).")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "markdown", "html"]), default="table")
@click.option("--timeline", default=None, help="Also plot live bytes over the step to this .png/.svg/.pdf.")
@click.option("--out", default=None, help="Write the report to this file instead of stdout.")
def command(spec: str, inputs: tuple[str, ...], args: tuple[str, ...], optimizer: str, amp: str, loss: str,
            trainable: tuple[str, ...], freeze: tuple[str, ...], checkpoint: tuple[str, ...], fit: str | None,
            target: str, no_what_if: bool, fmt: str, timeline: str | None, out: str | None) -> None:
    """How much memory one training step needs, before you run it: the peak (first step and steady
    state) and where it falls, what is live then, per-layer saved activations, what-ifs, --fit.

    Simulates forward, loss, backward, optimizer.step() and zero_grad(set_to_none=True) on meta
    tensors, tracking every tensor storage from its creation to its release. Nothing is allocated.
    """
    from aelab.errors import UsageError
    from aelab.footprint.memory import memory, parse_size
    from aelab.trace.step import AMP_DTYPES, OPTIMIZERS

    if optimizer not in OPTIMIZERS:  # fail before building the model
        raise UsageError(f"unknown --optimizer {optimizer!r} (choose from {', '.join(OPTIMIZERS)})")
    if amp not in AMP_DTYPES:
        raise UsageError(f"unknown --amp {amp!r} (choose from {', '.join(AMP_DTYPES)})")
    if fit is not None:
        parse_size(fit)
    if timeline:
        from aelab.render.memory_plot import check_target

        check_target(Path(timeline))
    loaded = load_model(spec, inputs, args, device="meta")
    keyword: dict[str, Any] = dict(loaded.keyword)
    report = memory(loaded.model, *loaded.positional, optimizer=optimizer, amp=amp, loss=loss, trainable=trainable,
                    freeze=freeze, checkpoint=checkpoint, fit=fit, device=target, what_if=not no_what_if,
                    name=loaded.name, **keyword)
    if timeline:
        from aelab.render.memory_plot import save_timeline

        save_timeline(report, Path(timeline))
    if fmt == "json":
        from aelab.render.memory_text import render_memory_json

        text = render_memory_json(report)
    elif fmt == "markdown":
        from aelab.render.memory_text import render_memory_markdown

        text = render_memory_markdown(report)
    elif fmt == "html":
        from aelab.render.memory_html import render_memory_html

        text = render_memory_html(report)
    else:
        from aelab.render.memory_text import render_memory_text

        text = render_memory_text(report, color=out is None and sys.stdout.isatty())
    write_output(text, out)
