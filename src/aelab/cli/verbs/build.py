"""`aelab build KIND --input SHAPE --latent N [--option k=v ...] [--out model.py] [--format text|json]`.

Builds the autoencoder, prints what was built (geometry, solved output_padding) and its inspection
table (or, with --format json, one document: docs/json.md), and with --out writes a standalone PyTorch
file of the same architecture.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import torch

from aelab.cli.load import parse_kwargs
from aelab.errors import UsageError
from aelab.io import check_target, write_output
from aelab.models import KINDS
from aelab.models.config import option_help
from aelab.trace.inputs import parse_shape


def _value(v: object) -> str:
    if isinstance(v, (tuple, list)):
        return "[" + ",".join(map(str, v)) + "]"
    return f"{v:g}" if isinstance(v, float) else str(v)


def _kinds_text() -> str:
    """Every registered kind and its options with defaults, from the kinds' own configs (nothing by hand)."""
    lines = ["\b", "Kinds and their options with defaults (docs/models.md explains them):"]
    for name, kind in KINDS.items():
        options = " ".join(f"{k}={_value(d)}" for k, (d, _) in option_help(kind.config).items())
        lines.append(f"  {name:<10} {options}")
    return "\n".join(lines) + "\n\n"


EPILOG = _kinds_text() + """\b
Examples:
  aelab build conv --input 1x28x28 --latent 16
  aelab build conv-vae --input 3x33x47 --latent 32 --option channels=[16,32,64] --out model.py
  aelab build seqvae --input 100x201 --latent 32 --option dilation=exponential
"""


@click.command(name="build", epilog=EPILOG)
@click.argument("kind", metavar="KIND")
@click.option("--input", "input_text", required=True, metavar="SHAPE",
              help="Per-sample input shape without the batch dim: 784, 1x28x28, 1x201, 100x201 (seqvae: TxF).")
@click.option("--latent", required=True, type=click.IntRange(min=1), metavar="N",
              help="Size of the code (per time step for seqvae).")
@click.option("--option", "-o", "options", multiple=True, metavar="K=V",
              help="A kind option, e.g. channels=[32,64] or likelihood=bernoulli; repeat for more.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the model as a standalone PyTorch file (imports only torch); an existing file "
                   "needs --force.")
@click.option("--force", is_flag=True, help="Replace the --out file if it exists.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="json: what was built, its inspection and the --out file as one document (docs/json.md).")
def command(kind: str, input_text: str, latent: int, options: tuple[str, ...], out: Path | None, force: bool,
            fmt: str) -> None:
    """Build an autoencoder whose decoder reproduces the input shape exactly.

    KIND is one of the kinds listed below.
    """
    spec = parse_shape(input_text)
    if spec.name is not None or spec.dtype != torch.float32:  # the model is float32; a dtype would be ignored
        raise UsageError(f"--input {input_text!r}: give only a shape, e.g. 1x28x28")
    kwargs = parse_kwargs(options)
    if out is not None:
        check_target(out, force)

    from aelab.inspection.report import inspect
    from aelab.models import build
    from aelab.models.codegen import render_source

    try:
        model = build(kind, spec.shape, latent, **kwargs)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    report = inspect(model, (1, *model.input_shape))
    if out is not None:
        source = render_source(model)
        compile(source, str(out), "exec")  # never write a file that would not import
        write_output(source, out, force)
    if fmt == "json":
        from aelab.render.jsonout import report_dict

        document = {"kind": model.kind, "class": type(model).__name__, "config": model.config_dict(),
                    "input_shape": list(model.input_shape), "latent_shape": list(model.latent_shape),
                    "description": model.describe(), "report": report_dict(report),
                    "source": str(out) if out is not None else None}
        write_output(json.dumps(document, indent=2, ensure_ascii=False), None)
        return
    for line in model.describe():
        click.echo(line)
    click.echo(str(report))
    if out is not None:
        click.echo(f"wrote {out}: class {type(model).__name__}, needs only torch")
