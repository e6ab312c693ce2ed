"""`aelab doctor SPEC --input SHAPE`: find the layer a shape error comes from, the number to use and why,
and trace the rest of the model with the fix applied. Exit 0 when the model is fine, 1 when a problem
was found (fixed in the report or not), 2 for bad usage."""

from __future__ import annotations

from pathlib import Path

import click

from aelab.cli.load import load_model
from aelab.io import check_target, user_code, write_output


@click.command(name="doctor")
@click.argument("spec")
@click.option("--input", "inputs", multiple=True, required=True,
              help="Input shape with the batch first, e.g. 1x1x28x28; ':long' sets the dtype; 'name=SHAPE' a "
                   "keyword input.")
@click.option("--arg", "args", multiple=True, help="Constructor argument k=v (v is a Python literal).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.option("--out", default=None, help="Write the report to this file (an existing one needs --force).")
@click.option("--force", is_flag=True, help="Replace the --out file if it exists.")
@click.option("--max-fixes", type=click.IntRange(min=0), default=8, show_default=True,
              help="Stop after this many fixes.")
@click.option("--device", type=click.Choice(["meta", "cpu"]), default="meta", show_default=True,
              help="Where to construct the model: meta allocates no weights.")
@click.pass_context
def command(ctx: click.Context, spec: str, inputs: tuple[str, ...], args: tuple[str, ...], fmt: str,
            out: str | None, max_fixes: int, device: str, force: bool) -> None:
    """Find the layer a shape error comes from and the number to use.

    For each problem: the layer, what it got and what it expects, the fix as a line of code with its
    derivation (12544 = 16 × 28 × 28); then the rest of the model is traced with the fix applied, so
    the next problem shows too. An autoencoder whose output is not its input's shape gets the
    transposed conv's output_padding/padding that restores it. The model is never changed.
    Exit codes: 0 no problem, 1 a problem was found, 2 bad usage.
    """
    from aelab.doctor.diagnose import diagnose
    from aelab.render.doctor_text import render_json, render_text

    if out is not None:
        check_target(Path(out), force)
    with user_code():
        loaded = load_model(spec, inputs, args, device)
        diagnosis = diagnose(loaded.model, *loaded.positional, max_fixes=max_fixes, name=loaded.name,
                             **loaded.keyword)
    write_output(render_json(diagnosis) if fmt == "json" else render_text(diagnosis), out, force)
    ctx.exit(diagnosis.exit_code)
