"""`aelab explain KIND --input SHAPE [hyper-parameters] [--want SIZE] [--format text|json]`.

Prints a layer's output-size formula with the numbers filled in, its output shape, weight and bias shapes,
parameters and FLOPs; with --want, the padding (conv) or output_padding (transposed conv) that gives a size.
The arithmetic lives in aelab.explain, the text in aelab.render.explain_text; this module only parses.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import click

from aelab.cli.ranges import POSITIVE
from aelab.errors import UsageError
from aelab.explain.inverse import solve_layer
from aelab.explain.layers import explain_layer, resolve_kind
from aelab.render.explain_text import render_explanation_text, render_solutions_text
from aelab.trace.inputs import parse_shape

EPILOG = """\b
Examples:
  aelab explain conv2d --input 1x28x28 --out-channels 16 --kernel 5 --padding 2
  aelab explain flatten --input 16x28x28
  aelab explain linear --in-features 12544 --out-features 10
  aelab explain conv_transpose2d --input 32x7x7 --out-channels 16 --kernel 3 --stride 2 --padding 1 \\
      --output-padding 1
  aelab explain maxpool2d --input 16x7x7 --kernel 2 --ceil-mode
  aelab explain conv2d --input 1x28x28 --kernel 5 --want 28      (which padding keeps 28?)
  aelab explain conv_transpose2d --input 16x7x7 --kernel 3 --stride 2 --padding 1 --want 14

\b
Kinds: conv1d/2d/3d, conv_transpose1d/2d/3d, maxpool1d/2d/3d, avgpool1d/2d/3d, linear, flatten
(also Conv2d, nn.ConvTranspose2d, deconv2d, dense; conv/maxpool/... take their dimensionality from --input).
Sizes per dimension: 5, or 3x5 for (kH, kW). FLOPs are for one sample; a multiply-add counts 2 and bias
adds are not counted, as in torch.utils.flop_counter.
"""

#: CLI option -> PyTorch hyper-parameter name
OPTIONS: dict[str, str] = {
    "--out-channels": "out_channels", "--kernel": "kernel_size", "--stride": "stride", "--padding": "padding",
    "--dilation": "dilation", "--output-padding": "output_padding", "--groups": "groups", "--bias": "bias",
    "--in-features": "in_features", "--out-features": "out_features", "--ceil-mode": "ceil_mode",
    "--start-dim": "start_dim", "--end-dim": "end_dim",
}
_SIZES = re.compile(r"^\s*-?\d+(\s*[x×,]\s*-?\d+)*\s*$")


def parse_sizes(text: str | None, option: str, words: tuple[str, ...] = ()) -> Any:
    """`5` -> 5, `3x5` -> (3, 5); a word in `words` (e.g. 'same') is kept; None stays None."""
    if text is None or text.strip().lower() in words:
        return text.strip().lower() if text else None
    if not _SIZES.match(text):
        extra = f" or {' or '.join(words)}" if words else ""
        raise UsageError(f"{option} takes an integer or sizes joined by 'x' (e.g. 3x5){extra}, got {text!r}")
    values = tuple(int(v) for v in re.split(r"[x×,]", text.replace(" ", "")))
    return values[0] if len(values) == 1 else values


def _input_shape(kind: str, input_text: str | None, hyper: dict[str, Any]) -> tuple[int, ...]:
    if input_text is not None:
        spec = parse_shape(input_text)
        if spec.name is not None:
            raise UsageError(f"--input {input_text!r}: give only a shape, e.g. 1x28x28")
        return spec.shape
    entry = resolve_kind(kind)
    if entry.name == "linear" and isinstance(hyper.get("in_features"), int):
        return (hyper["in_features"],)
    example = {"linear": "784 (or give --in-features)", "flatten": "16x28x28"}.get(entry.name, "1x28x28")
    raise UsageError(f"{entry.name} needs --input, one sample's shape without the batch, e.g. {example}")


@click.command(name="explain", epilog=EPILOG)
@click.argument("kind", metavar="KIND")
@click.option("--input", "input_text", metavar="SHAPE",
              help="One sample's shape without the batch: C×H×W, e.g. 1x28x28.")
@click.option("--out-channels", type=POSITIVE, help="conv: number of filters.")
@click.option("--kernel", metavar="K", help="kernel_size: 5, or 3x5 per dimension.")
@click.option("--stride", metavar="S", help="stride (pooling: defaults to the kernel).")
@click.option("--padding", metavar="P", help="padding per side: 2, 1x2, or for conv 'same' / 'valid'.")
@click.option("--dilation", metavar="D", help="dilation (conv, transposed conv, max pooling).")
@click.option("--output-padding", metavar="OP", help="transposed conv: extra size on one side.")
@click.option("--groups", type=POSITIVE, help="conv: channel groups.")
@click.option("--bias/--no-bias", default=None, help="conv, linear: with a bias (the default) or without.")
@click.option("--in-features", type=POSITIVE, help="linear: in_features (else the last size of --input).")
@click.option("--out-features", type=POSITIVE, help="linear: out_features.")
@click.option("--ceil-mode", is_flag=True, default=None, help="pooling: round the division up.")
@click.option("--start-dim", type=int, help="flatten: first dimension merged (1: after the batch).")
@click.option("--end-dim", type=int, help="flatten: last dimension merged (-1 = the last).")
@click.option("--want", metavar="SIZE",
              help="Solve for this output size: padding (conv), output_padding (transposed conv).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def command(kind: str, input_text: str | None, want: str | None, fmt: str, **options: Any) -> None:
    """Explain a layer's output size, shapes, parameters and FLOPs, numbers filled in.

    KIND is a layer kind (conv2d, conv_transpose2d, maxpool2d, avgpool2d, linear, flatten, ...).
    """
    names = {opt.lstrip("-").replace("-", "_"): (opt, hyper) for opt, hyper in OPTIONS.items()}
    hyper: dict[str, Any] = {}
    for key, value in options.items():
        if value is None:
            continue
        option, name = names[key]
        if isinstance(value, str):
            value = parse_sizes(value, option, ("same", "valid") if name == "padding" else ())
        hyper[name] = value
    shape = _input_shape(kind, input_text, hyper)
    entry = resolve_kind(kind, shape)
    refused = [opt for opt, name in OPTIONS.items() if name in hyper and name not in entry.accepts]
    if refused:
        takes = [opt for opt, name in OPTIONS.items() if name in entry.accepts]
        raise UsageError(f"{entry.name} does not take {', '.join(refused)} (it takes {', '.join(takes)})")
    if want is not None:
        ignored = {"out_channels", "groups", "bias", "in_channels"}
        solutions = solve_layer(entry.name, shape, parse_sizes(want, "--want"),
                                **{k: v for k, v in hyper.items() if k not in ignored})
        if fmt == "json":
            answer = {"kind": entry.name, "input_shape": list(shape), "solves": solutions[0].solves,
                      "dims": [s.to_dict() for s in solutions]}
            click.echo(json.dumps(answer, indent=2, ensure_ascii=False))
            return
        click.echo(render_solutions_text(entry.name, solutions, color=sys.stdout.isatty()), nl=False)
        return
    explanation = explain_layer(entry.name, shape, **hyper)
    if fmt == "json":
        click.echo(json.dumps(explanation.to_dict(), indent=2, ensure_ascii=False))
        return
    click.echo(render_explanation_text(explanation, color=sys.stdout.isatty()), nl=False)
