"""The inspection report as a Markdown table (for READMEs, issues, notebooks)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aelab.render.table import bottleneck_lines, error_lines, formula_lines, totals_lines
from aelab.render.units import count, shape, shapes, si

if TYPE_CHECKING:
    from aelab.inspection.report import Report


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def render_markdown(report: Report) -> str:
    inputs = ", ".join(f"{shape(t.shape)} {t.dtype}" for t in report.trace.inputs)
    lines = [f"### {_cell(report.model)} ← {inputs}", "",
             "| Layer | Type | Input shape | Output shape | Params | FLOPs | Other FLOPs |",
             "|---|---|---|---|---:|---:|---:|"]
    for row in report.rows:
        indent = "&nbsp;&nbsp;" * (row.depth - 1)
        params = count(row.params) if row.kind == "module" else ""
        lines.append(f"| {indent}{_cell(row.name)} | {_cell(row.type)} | {shapes(row.input_shapes)} | "
                     f"{shapes(row.output_shapes)} | {params} | {si(row.flops) if row.flops else '—'} | "
                     f"{si(row.flops_other) if row.flops_other else '—'} |")
    lines.append("")
    lines.extend(f"- {_cell(line)}" for line in totals_lines(report) + error_lines(report))
    formulas = formula_lines(report)
    if formulas:
        lines += ["", "```", *formulas, "```"]
    section = bottleneck_lines(report)
    if section:
        lines += ["", "```", *section, "```"]
    return "\n".join(lines) + "\n"
