"""`aelab explain` as text: a layer's formulas with the numbers filled in, or the sizes --want solves for."""

from __future__ import annotations

from rich.text import Text

from aelab.explain.inverse import SizeSolution
from aelab.explain.layers import LayerExplanation, sizes_arg
from aelab.render.console import capture, text
from aelab.shapes.notation import shape_text


def _line(label: str, value: str) -> Text:
    text = Text("  ")
    text.append(f"{label:<9}", style="bold")
    return text.append(value)


def render_explanation(e: LayerExplanation) -> list[Text]:
    """The text form: one line per fact, the size formulas between the input and the output shape."""
    lines = [Text.assemble((e.kind, "bold cyan"), "  ", e.torch_call),
             _line("input", shape_text(("N", *e.input_shape)))]
    lines += [Text(f"  {d.formula}", style="green") for d in e.derivations]
    lines += [_line("output", shape_text(("N", *e.output_shape))), _line("computes", e.equation)]
    if e.weight_shape is not None:
        lines.append(_line("weight", f"{e.weight_shape}   {e.weight_layout}"))
    if e.bias_shape is not None:
        lines.append(_line("bias", str(e.bias_shape)))
    lines.append(_line("params", f"{e.params} = {e.params_formula}" if e.params else "0"))
    if e.flops:
        lines += [_line("FLOPs", f"{e.flops} = {e.flops_formula}"),
                  _line("", f"for batch {e.batch}; a multiply-add counts 2, as in torch.utils.flop_counter")]
    else:
        lines.append(_line("FLOPs", f"0 ({e.flops_formula})"))
    lines += [_line("note", note) for note in e.notes]
    return lines


def render_solutions(kind: str, solutions: tuple[SizeSolution, ...]) -> list[Text]:
    """The text form of --want: per dimension the answer and its derivation, or why not and the nearest."""
    solves = solutions[0].solves
    wanted = ", ".join(f"{s.dim}_out = {s.want} from {s.dim} = {s.input_size}" for s in solutions)
    lines = [Text.assemble((kind, "bold cyan"), f"  {solves} for {wanted}")]
    for s in solutions:
        lines.append(_line(s.dim, s.note))
        for o in s.exact:
            lines.append(Text(f"  {'':<9}{o.derivation.formula}", style="green"))
        for o in s.nearest:
            setting = f"padding {o.padding}" + (f", output_padding {o.output_padding}"
                                                if solves == "output_padding" else "")
            lines.append(Text(f"  {'':<9}nearest: {setting}: {o.derivation.formula}", style="yellow"))
    if all(s.exact for s in solutions):
        picks = [s.exact[0] for s in solutions]
        pad = sizes_arg(tuple(o.padding for o in picks))
        use = f"padding={pad}" + (f", output_padding={sizes_arg(tuple(o.output_padding for o in picks))}"
                                  if solves == "output_padding" else "")
        lines.append(_line("use", use))
    return lines


def _text(lines: list[Text], color: bool) -> str:
    """The lines as text, never wrapped; with `color` (a terminal) in rich's colours."""
    console = capture(color=color, soft_wrap=True, highlight=False)
    for line in lines:
        console.print(line)
    return text(console)


def render_explanation_text(e: LayerExplanation, color: bool = False) -> str:
    return _text(render_explanation(e), color)


def render_solutions_text(kind: str, solutions: tuple[SizeSolution, ...], color: bool = False) -> str:
    return _text(render_solutions(kind, solutions), color)
