"""`aelab cost` as text: per-layer backward split, totals against all-trainable, timing, the explanation."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterable
from typing import TYPE_CHECKING

from rich import box
from rich.table import Table

from aelab.render.console import capture, text
from aelab.render.units import count, nbytes, shape, si

if TYPE_CHECKING:
    from aelab.costing.backward import CostReport, LayerCost

#: what each layer status means, as the table's legend says it
STATUS_WORDS: dict[str, str] = {
    "trains": "computes weight gradients",
    "passes": "frozen, passes the gradient on",
    "skipped": "skipped by autograd",
    "none": "no backward",
}


def _flops(value: int) -> str:
    return si(value) if value else "—"


def _pct(a: float, b: float) -> str:
    return f"{100 * a / b:.1f}%" if b else "—"


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3g} ms"


def layer_table(cost: CostReport) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for title in ("Layer (type)", "Backward", "Forward", "Input grad", "Weight grad", "Skipped", "Other bwd"):
        table.add_column(title, justify="left" if title in ("Layer (type)", "Backward") else "right",
                         no_wrap=True)
    rows: list[LayerCost] = [lc for lc in cost.layers if lc.params or lc.ran or lc.ran_all or lc.flops_forward]
    for lc in rows:
        table.add_row(f"{lc.name} ({lc.type})", lc.status, _flops(lc.flops_forward),
                      _flops(lc.flops_backward_input), _flops(lc.flops_backward_weight),
                      _flops(lc.skipped_input + lc.skipped_weight), _flops(lc.flops_backward_other))
    return table


def totals_lines(cost: CostReport) -> list[str]:
    """Totals of the pattern against all-trainable, timing when measured, and the explanation."""
    lines = [
        f"Trainable: {count(cost.params_trainable)} of {count(cost.params_total)} parameters "
        f"({len(cost.trainable)} of {len(cost.trainable) + len(cost.frozen)} tensors)",
        f"Forward FLOPs: {si(cost.flops_forward, digits=4)}",
        f"Backward FLOPs: {si(cost.flops_backward, digits=4)} with this pattern, "
        f"{si(cost.flops_backward_all, digits=4)} with every parameter trainable: ratio {cost.ratio:.4f} "
        f"({_pct(cost.flops_backward, cost.flops_backward_all)})",
    ]
    if cost.flops_backward_other or cost.flops_backward_other_all:
        lines.append(f"  besides: {si(cost.flops_backward_other)} other backward work (elementwise, normalisation), "
                     f"{si(cost.flops_backward_other_all)} all-trainable; not in the FLOPs above")
    lines.append(f"Saved for backward: {nbytes(cost.saved_bytes)} of activations "
                 f"({nbytes(cost.saved_bytes_all)} all-trainable)")
    t = cost.timing
    if t is not None:
        p, a = t.patterns["pattern"], t.patterns["all"]
        threads = f"{t.threads} thread{'' if t.threads == 1 else 's'}"
        lines.append(f"Measured on {t.device} ({threads}), median of {t.repeats} after {t.warmup} warm-up:")
        lines.append(f"  backward {_ms(p.backward_s)} with this pattern, {_ms(a.backward_s)} all-trainable: "
                     f"time ratio {t.ratio():.3f} beside FLOP ratio {cost.ratio:.3f}")
        total_flops = cost.flops_forward + cost.flops_backward
        total_all = cost.flops_forward + cost.flops_backward_all
        lines.append(f"  forward + backward {_ms(p.total_s)} vs {_ms(a.total_s)}: time ratio "
                     f"{t.ratio(part='total'):.3f} beside FLOP ratio {total_flops / total_all if total_all else 0:.3f}")
    lines.append("FLOPs: multiply-add work, a multiply-add counts 2, the kernels autograd really runs "
                 "(= torch.utils.flop_counter.FlopCounterMode).")
    lines.extend(f"Note: {n}" for n in cost.notes)
    return lines


def render_cost_text(cost: CostReport, width: int = 140, color: bool = False) -> str:
    """The whole `aelab cost` text report."""
    console = capture(width=width, color=color, highlight=False, soft_wrap=False)
    inputs = ", ".join(shape(s) for s in cost.inputs)
    console.print(f"{cost.model}  ←  {inputs}", markup=False)
    console.print(layer_table(cost))
    legend = "; ".join(f"{k}: {v}" for k, v in STATUS_WORDS.items())
    console.print(f"Backward column: {legend}.", markup=False)
    console.print("Skipped: multiply-add work all-trainable does in that layer and this pattern does not.",
                  markup=False)
    for line in totals_lines(cost):
        console.print(line, markup=False)
    console.print("")
    console.print("Why:", markup=False)
    for sentence in cost.explanation:
        console.print(textwrap.fill(sentence, width=min(width, 110), initial_indent="  - ",
                                    subsequent_indent="    "), markup=False)
    return text(console)


def render_cost_json(cost: CostReport) -> str:
    return json.dumps(cost.to_dict(), indent=2)


# --- the explanation: why this pattern's backward costs what it costs -------------------------------------------------
def _flop(value: float) -> str:
    """'119.1 MFLOP': 4 significant digits, enough to tell 119.1 M from 119.8 M."""
    return si(value, "FLOP", 4)


def _amount(value: float, what: str = "") -> str:
    """' (1.2 MFLOP saved)', or nothing when no multiply-add work is involved."""
    return f" ({_flop(value)}{' ' + what if what else ''})" if value else ""


def _names(layers: Iterable[LayerCost], limit: int = 6) -> str:
    names = [lc.name for lc in layers]
    if len(names) > limit:
        return ", ".join(names[:limit - 1]) + f", ... ({len(names) - limit + 1} more), " + names[-1]
    return ", ".join(names)


def explain(cost: CostReport) -> list[str]:
    """Why this pattern's backward costs what it costs, in sentences built from the per-layer numbers."""
    weighted = [lc for lc in cost.layers if lc.params]
    trains = [lc for lc in weighted if lc.status == "trains"]
    passes = [lc for lc in weighted if lc.status == "passes"]
    skipped = [lc for lc in weighted if lc.status == "skipped"]
    if not trains:
        return ["No parameter trains under this pattern, so autograd runs no backward at all."]
    out = [f"{_names(trains)} {'computes its' if len(trains) == 1 else 'compute their'} weight gradients"
           f"{_amount(sum(lc.flops_backward_weight for lc in trains))}."]
    if passes:
        one = len(passes) == 1
        it, they = ("it", "its") if one else ("them", "their")
        out.append(f"{_names(passes)} {'is' if one else 'are'} frozen but still "
                   f"{'propagates' if one else 'propagate'} gradients to {they} "
                   f"input{'' if one else 's'}{_amount(sum(lc.flops_backward_input for lc in passes))}, because "
                   f"{trains[0].name} trains earlier in the net and its gradient can only arrive through {it}; "
                   f"{'it skips its' if one else 'they skip their'} own weight gradients"
                   f"{_amount(sum(lc.skipped_weight for lc in passes), 'saved')}.")
    if skipped:
        one = len(skipped) == 1
        it = "it" if one else "them"
        out.append(f"{_names(skipped)} {'is' if one else 'are'} skipped entirely"
                   f"{_amount(sum(lc.skipped_input + lc.skipped_weight for lc in skipped), 'saved')}: no trainable "
                   f"parameter comes at or before {it}, so no gradient has to pass through {it}.")
    edge = [lc for lc in trains if lc.skipped_input]
    if edge:
        one = len(edge) == 1
        out.append(f"{_names(edge)} {'skips its' if one else 'skip their'} input gradient"
                   f"{_amount(sum(lc.skipped_input for lc in edge), 'saved')}: no parameter before "
                   f"{'it' if one else 'them'} trains.")
    if cost.flops_backward_all:
        out.append(f"Backward: {_flop(cost.flops_backward)} against {_flop(cost.flops_backward_all)} with every "
                   f"parameter trainable ({100 * cost.ratio:.1f}%); the difference, "
                   f"{_flop(cost.flops_backward_all - cost.flops_backward)}, is exactly the gradient work autograd "
                   f"skipped.")
    if passes and not skipped and cost.ratio > 0.9:
        out.append("Freezing layers that come after the trainable ones saves little: the gradient still travels "
                   "back through all of them; only their weight gradients are skipped.")
    return out
