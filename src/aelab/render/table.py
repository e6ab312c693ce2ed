"""The inspection table (rich): a tree of layers with shapes, parameters and FLOPs, totals under it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich import box
from rich.table import Table

from aelab.render.console import capture, text
from aelab.render.units import count, nbytes, shape, shapes, si

if TYPE_CHECKING:
    from aelab.inspection.report import Report
    from aelab.inspection.summary import LayerRow


def tree_prefixes(rows: list[LayerRow], parents: dict[int, int | None]) -> list[str]:
    """'├─ ' / '└─ ' guides for rows listed in call order, given each row's parent call id."""
    visible = {r.cid for r in rows}

    def visible_parent(cid: int) -> int | None:
        p = parents.get(cid)
        while p is not None and p not in visible:
            p = parents.get(p)
        return p

    vparent = {r.cid: visible_parent(r.cid) for r in rows}
    last_child: dict[int | None, int] = {}
    for r in rows:
        last_child[vparent[r.cid]] = r.cid
    out = []
    for r in rows:
        chain = []
        p = vparent[r.cid]
        while p is not None:
            chain.append("   " if last_child.get(vparent[p]) == p else "│  ")
            p = vparent[p]
        guide = "└─ " if last_child.get(vparent[r.cid]) == r.cid else "├─ "
        out.append("".join(reversed(chain)) + guide)
    return out


def build_table(report: Report) -> Table:
    rows = report.rows
    parents = {c.cid: c.parent for c in report.trace.calls}
    table = Table(box=box.SIMPLE_HEAD, show_lines=False, pad_edge=False, expand=False)
    table.add_column("Layer (type)", no_wrap=True)
    table.add_column("Input shape", no_wrap=True)
    table.add_column("Output shape", no_wrap=True)
    table.add_column("Params", justify="right")
    table.add_column("FLOPs", justify="right")
    for prefix, row in zip(tree_prefixes(rows, parents), rows):
        label = row.name.rsplit(".", 1)[-1]
        kind = row.type if row.kind == "module" else f"[italic]{row.type}[/italic]"
        style = "bold red" if row.failed else None
        params = count(row.params) if row.kind == "module" and (row.params or row.is_leaf) else ""
        if row.tied:
            params += " (tied)"
        flops = si(row.flops) if row.flops else ("—" if row.flops_other == 0 else f"[dim]{si(row.flops_other)}*[/dim]")
        table.add_row(f"{prefix}{label} ({kind})", shapes(row.input_shapes), shapes(row.output_shapes), params, flops,
                      style=style)
    return table


def totals_lines(report: Report) -> list[str]:
    t = report.summary.totals
    trace = report.trace
    lines = [
        f"Params: {count(t.params)}  (trainable {count(t.trainable_params)}, frozen {count(t.frozen_params)}; "
        f"buffers {count(t.buffers)})  weights {nbytes(t.param_bytes)}",
    ]
    if t.tied_params:
        lines.append(f"Tied/shared: {count(t.tied_params)} parameters share storage with others and are counted once")
    other = ", ".join(f"{k} {si(v)}" for k, v in sorted(t.flops_forward_by_category.items(), key=lambda kv: -kv[1])
                      if k != "matmul" and v)
    lines.append(f"Forward FLOPs: {si(t.flops_forward)} multiply-add work (= {si(t.flops_forward / 2)} MACs)"
                 + (f"; besides: {si(t.flops_forward_other)} other ({other})" if t.flops_forward_other else ""))
    if trace.error is not None:
        lines.append("Backward FLOPs: not run (the forward failed)")
    elif t.flops_backward is None:
        lines.append("Backward FLOPs: not run (--no-backward)")
    elif t.backward_ran:
        lines.append(f"Backward FLOPs: {si(t.flops_backward)} multiply-add work"
                     + (f" + {si(t.flops_backward_other)} other" if t.flops_backward_other else "")
                     + f" (gradients of the {count(t.trainable_params)} trainable parameters)")
    else:
        lines.append("Backward FLOPs: 0 (no trainable parameter, or no differentiable output)")
    kept = "what autograd keeps is not recorded (--no-backward)" if t.saved_bytes is None else \
        f"autograd keeps {nbytes(t.saved_bytes)} for backward"
    lines.append(f"Activations: forward kernels write {nbytes(t.activation_bytes)}; {kept}")
    if t.not_counted:
        ops = ", ".join(f"{k} ×{v}" for k, v in sorted(t.not_counted.items()))
        lines.append(f"Not counted (no FLOP formula): {ops}")
    how = {"meta": "meta tensors", "fake": "fake tensors", "real": "a real batch-1 forward"}[trace.execution]
    lines.append(f"Traced on {how}; FLOPs: a multiply-add counts 2; * = elementwise/normalisation work only.")
    lines.extend(f"Note: {n}" for n in report.notes)
    return lines


def error_lines(report: Report) -> list[str]:
    err = report.trace.error
    if err is None:
        return []
    modules = [report.trace.calls[c] for c in err.call_stack if report.trace.calls[c].kind == "module"]
    where = modules[-1].name if modules else report.model
    first = err.message.strip().splitlines()[0] if err.message.strip() else err.exc_type
    return [f"Forward failed in {where or report.model}: {err.exc_type}: {first}",
            "Run `aelab doctor` on the same model and inputs for the fix."]


def explanation_lines(exp: Any) -> list[str]:
    """A formulas.LayerExplanation as lines: the equation, each size derivation, the weight shapes."""
    lines = [exp.equation] + [d.formula for d in exp.derivations]
    if exp.weight_shape:
        lines.append(f"W {tuple(exp.weight_shape)}" + (f", b {tuple(exp.bias_shape)}" if exp.bias_shape else ""))
    return lines


def formula_lines(report: Report) -> list[str]:
    """`--explain`: each conv/pool/linear/flatten layer's formulas with its numbers, under the table."""
    if not report.explanations:
        return []
    types = {r.name: r.type for r in report.summary.rows}
    lines = ["Formulas (--explain):"]
    for name, exp in report.explanations.items():
        formulas = explanation_lines(exp)
        lines.append(f"  {name} ({types.get(name, '')}): {formulas[0]}")
        lines.extend(f"      {f}" for f in formulas[1:])
    return lines


def bottleneck_lines(report: Report) -> list[str]:
    if report.bottleneck is None:
        return []
    from aelab.render.bottleneck_text import bottleneck_lines as lines

    return lines(report.bottleneck)


def render_text(report: Report, width: int = 140, color: bool = False) -> str:
    """The whole text report: header, table, totals, bottleneck section."""
    console = capture(width=width, color=color, highlight=False, soft_wrap=False)
    inputs = ", ".join(f"{shape(t.shape)} {t.dtype}" for t in report.trace.inputs)
    console.print(f"{report.model}  ←  {inputs}")
    console.print(build_table(report))
    for line in totals_lines(report) + error_lines(report):
        console.print(line, markup=False)
    for section in (formula_lines(report), bottleneck_lines(report)):
        if section:
            console.print("")
            for line in section:
                console.print(line, markup=False)
    return text(console)
