"""The inspection report as one self-contained HTML page: inline CSS, inline SVG, a few lines of inline script.

Sections: the verdict (bottleneck), doctor findings, the hourglass, the data-flow graph, the layer
table (collapsible by depth), totals and per-layer formulas. Nothing is fetched: a Content-Security-
Policy forbids every network request, and the pictures are inline SVG. Every string that comes from
the user's model is escaped here (`_e`) or by the SVG writers (Graphviz, matplotlib), so a module
called `<script>` stays text. The same page is `Report._repr_html_()` in Jupyter; its CSS is scoped to
`.aelab-report` so it does not restyle the notebook.
"""

from __future__ import annotations

import html
import itertools
import re
from typing import TYPE_CHECKING, Any

from aelab.errors import UsageError
from aelab.render.table import error_lines, explanation_lines, totals_lines
from aelab.render.units import count, shape, shapes, si

if TYPE_CHECKING:
    from aelab.inspection.report import Report
    from aelab.inspection.summary import LayerRow

_IDS = itertools.count(1)

#: the equation of a layer type, with its weight shapes filled in by `_formula`: one entry per family
EQUATIONS: dict[str, str] = {
    "Linear": "y = x Wᵀ + b",
    "Bilinear": "y = x₁ᵀ W x₂ + b",
    "Conv1d": "y = W ⋆ x + b (cross-correlation over L)",
    "Conv2d": "y = W ⋆ x + b (cross-correlation over H, W)",
    "Conv3d": "y = W ⋆ x + b (cross-correlation over D, H, W)",
    "ConvTranspose1d": "y = Wᵀ ⋆ x + b (transposed convolution)",
    "ConvTranspose2d": "y = Wᵀ ⋆ x + b (transposed convolution)",
    "ConvTranspose3d": "y = Wᵀ ⋆ x + b (transposed convolution)",
    "BatchNorm1d": "y = (x − E[x]) / √(Var[x] + ε) · γ + β, statistics per channel",
    "BatchNorm2d": "y = (x − E[x]) / √(Var[x] + ε) · γ + β, statistics per channel",
    "LayerNorm": "y = (x − E[x]) / √(Var[x] + ε) · γ + β, statistics per sample",
    "Embedding": "y = W[x] (a row lookup)",
    "ReLU": "y = max(0, x)",
    "Tanh": "y = tanh(x)",
    "Sigmoid": "y = 1 / (1 + e^−x)",
    "GELU": "y = x · Φ(x)",
    "Softmax": "y_i = e^{x_i} / Σ_j e^{x_j}",
}

CSS = """
.aelab-report{font:14px/1.45 system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;color:#222;
  max-width:1200px;margin:0 auto;padding:12px}
.aelab-report h1{font-size:22px;margin:4px 0}.aelab-report h2{font-size:17px;margin:22px 0 6px;
  border-bottom:1px solid #ddd;padding-bottom:3px}
.aelab-report .sub{color:#666}.aelab-report .verdict{background:#f5f8fc;border-left:4px solid #4a86c5;
  padding:8px 12px}.aelab-report .problem{background:#fdf2f0;border-left:4px solid #c0392b;padding:8px 12px;
  margin:6px 0}.aelab-report code,.aelab-report .mono{font-family:ui-monospace,Menlo,Consolas,monospace;
  font-size:12.5px}
.aelab-report table{border-collapse:collapse;width:100%}.aelab-report th,.aelab-report td{padding:3px 8px;
  border-bottom:1px solid #eee;text-align:left;white-space:nowrap}.aelab-report td.n{text-align:right}
.aelab-report tr.failed td{color:#c0392b;font-weight:bold}.aelab-report tr.hidden{display:none}
.aelab-report button{font:inherit;font-size:12px;margin-right:4px;cursor:pointer}
.aelab-report .tog{border:none;background:none;padding:0 4px 0 0;width:1.3em}
.aelab-report .pic{overflow:auto;max-height:900px;border:1px solid #eee;padding:6px}
.aelab-report .pic svg{max-width:100%;height:auto}.aelab-report .scroll{overflow-x:auto}
.aelab-report ul{margin:4px 0 4px 18px;padding:0}
"""

SCRIPT = """
(function(){var root=document.getElementById('%(uid)s');if(!root)return;
var rows=Array.prototype.slice.call(root.querySelectorAll('tr[data-cid]'));
function kids(cid){return rows.filter(function(r){return r.getAttribute('data-parent')===cid;});}
function hide(cid){kids(cid).forEach(function(r){r.classList.add('hidden');hide(r.getAttribute('data-cid'));});}
function setTog(r,open){var b=r.querySelector('.tog');if(b&&b.textContent){b.textContent=open?'▾':'▸';}}
rows.forEach(function(r){var b=r.querySelector('.tog');if(!b)return;b.addEventListener('click',function(){
 var cid=r.getAttribute('data-cid');var open=b.textContent==='▾';
 if(open){hide(cid);}else{kids(cid).forEach(function(k){k.classList.remove('hidden');setTog(k,false);});}
 setTog(r,!open);});});
function depth(d){rows.forEach(function(r){var k=+r.getAttribute('data-depth');
 r.classList.toggle('hidden',k>d);setTog(r,k<d);});}
Array.prototype.forEach.call(root.querySelectorAll('button[data-depth]'),function(b){
 b.addEventListener('click',function(){depth(+b.getAttribute('data-depth'));});});
depth(+root.getAttribute('data-initial-depth'));})();
"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _visible_parents(report: Report, rows: list[LayerRow]) -> dict[int, int | None]:
    parents = {c.cid: c.parent for c in report.trace.calls}
    visible = {r.cid for r in rows}
    out: dict[int, int | None] = {}
    for r in rows:
        p = parents.get(r.cid)
        while p is not None and p not in visible:
            p = parents.get(p)
        out[r.cid] = p
    return out


def _table(report: Report) -> tuple[str, int]:
    rows = report.summary.rows
    parent = _visible_parents(report, rows)
    has_kids = {p for p in parent.values() if p is not None}
    max_depth = max((r.depth for r in rows), default=1)
    initial = report.depth or (max_depth if len(rows) <= 60 else min(2, max_depth))  # `--depth` opens that deep
    out = ['<div class="depth">Show depth: ' + "".join(f'<button type="button" data-depth="{d}">{d}</button>'
                                                       for d in range(1, max_depth + 1)) + "</div>",
           '<div class="scroll"><table id="layers"><thead><tr><th>Layer</th><th>Type</th><th>Input shape</th>'
           '<th>Output shape</th>'
           '<th class="n">Params</th><th class="n">FLOPs</th><th class="n">Other FLOPs</th>'
           '<th class="n">Backward FLOPs</th></tr></thead><tbody>']
    for r in rows:
        label = r.name.rsplit(".", 1)[-1] if r.kind == "module" else r.name
        tog = '<button type="button" class="tog">▾</button>' if r.cid in has_kids else \
            '<button type="button" class="tog" disabled></button>'
        pad = 1.1 * (r.depth - 1)
        params = count(r.params) if r.kind == "module" and (r.params or r.is_leaf) else ""
        out.append(
            f'<tr data-cid="{r.cid}" data-parent="{parent[r.cid] if parent[r.cid] is not None else ""}" '
            f'data-depth="{r.depth}"{" class=failed" if r.failed else ""}>'
            f'<td style="padding-left:{pad:.1f}em" title="{_e(r.name)}">{tog}{_e(label)}</td>'
            f"<td>{'<i>' + _e(r.type) + '</i>' if r.kind != 'module' else _e(r.type)}</td>"
            f'<td class="mono">{_e(shapes(r.input_shapes))}</td><td class="mono">{_e(shapes(r.output_shapes))}</td>'
            f'<td class="n">{params}{" (tied)" if r.tied else ""}</td>'
            f'<td class="n">{si(r.flops) if r.flops else "—"}</td>'
            f'<td class="n">{si(r.flops_other) if r.flops_other else "—"}</td>'
            f'<td class="n">{si(r.flops_backward) if r.flops_backward else "—"}</td></tr>')
    out.append("</tbody></table></div>")
    return "\n".join(out), initial


def _verdict(report: Report) -> str:
    b = report.bottleneck
    if b is None:
        return '<p class="verdict" id="verdict">No data path from the inputs to the outputs was found, so there is ' \
               "no bottleneck to mark.</p>"
    parts = [f'<div class="verdict" id="verdict"><p><b>{_e(b.verdict)}</b></p><ul>']
    if b.layer:  # "" when the model has no bottleneck (sequence-to-sequence, never narrower than its input)
        parts += [f"<li>Latent: <code>{_e(b.layer)}</code> ({_e(b.type)}), shape <code>{_e(shape(b.shape))}</code>, "
                  f"{count(b.per_sample)} values per sample"
                  + (f", {count(b.per_position)} per {_e(b.position_word or 'position')}" if b.per_position else "")
                  + "</li>"]
    if b.encoder or b.decoder:
        parts.append(f"<li>Encoder: {len(b.encoder)} layers, <code>{_e(b.encoder[0] if b.encoder else '—')}</code> … "
                     f"<code>{_e(b.encoder[-1] if b.encoder else '—')}</code>; decoder: {len(b.decoder)} layers, "
                     f"<code>{_e(b.decoder[0] if b.decoder else '—')}</code> … "
                     f"<code>{_e(b.decoder[-1] if b.decoder else '—')}</code></li>")
    parts.extend(f"<li>{_e(n)}</li>" for n in getattr(b, "notes", []) or [])
    parts.append("</ul></div>")
    return "".join(parts)


def _doctor(report: Report, diagnosis: Any) -> str:
    diagnosis = diagnosis if diagnosis is not None else report.diagnosis
    if diagnosis is not None and getattr(diagnosis, "findings", None):
        items = []
        for f in diagnosis.findings:
            lines = [f"<b>{_e(f.layer or report.model)}</b> ({_e(f.layer_type)}): {_e(f.problem)}",
                     f"got <code>{_e(f.got)}</code>, expected <code>{_e(f.expected)}</code>"]
            if f.fix:
                lines.append(f"fix: <code>{_e(f.fix)}</code>")
            if f.derivation:
                lines.append(f"why: {_e(f.derivation)}")
            items.append('<div class="problem">' + "<br>".join(lines) + "</div>")
        return "".join(items)
    failed = error_lines(report)  # the same words (and failing layer) as the text table
    if failed:
        return '<div class="problem">' + "<br>".join(re.sub(r"`([^`]*)`", r"<code>\1</code>", _e(line))
                                                     for line in failed) + "</div>"
    return "<p>The forward ran on these inputs: no shape problem to report.</p>"


def _formula(report: Report, row: LayerRow) -> str | None:
    equation = EQUATIONS.get(row.type)
    if equation is None and row.kind == "module":
        base = next((k for k in EQUATIONS if row.type.endswith(k)), None)  # CausalConv1d -> Conv1d
        equation = EQUATIONS.get(base) if base else None
    if equation is None:
        return None
    owned = [p for p in report.trace.params if p.module == row.name]
    weights = ", ".join(f"{p.name.rsplit('.', 1)[-1]} {shape(p.shape)}" for p in owned)
    io_ = f"{shapes(row.input_shapes, 1)} → {shapes(row.output_shapes, 1)}"
    return (f"<li><code>{_e(row.name)}</code> ({_e(row.type)}): <code>{_e(equation)}</code>"
            f"{'; ' + _e(weights) if weights else ''}; {_e(io_)}</li>")


def _formulas(report: Report) -> str:
    items = []
    for row in report.summary.rows:
        if not row.is_leaf:
            continue
        exp = report.explanations.get(row.name)  # the size formulas with their numbers, when --explain/html filled them
        if exp is not None:
            equation, *rest = explanation_lines(exp)
            line: str | None = f"<li><code>{_e(row.name)}</code> ({_e(row.type)}): <code>{_e(equation)}</code>" \
                + "".join(f"; {_e(r)}" for r in rest) + "</li>"
        else:
            line = _formula(report, row)
        if line:
            items.append(line)
    return "<ul>" + "".join(items) + "</ul>" if items else "<p>No layer with a known equation.</p>"


def _hourglass(report: Report) -> str:
    if report.bottleneck is None or not getattr(report.bottleneck, "path", None):
        return "<p>No data path, so no hourglass.</p>"
    from aelab.render.hourglass import hourglass_svg

    return f'<div class="pic" id="hourglass">{hourglass_svg(report.bottleneck, report.model)}</div>'


def _graph(report: Report) -> str:
    from aelab.render.graph import data_flow, svg_text

    try:
        svg = svg_text(data_flow(report.trace, report.bottleneck, report.model))
    except UsageError as exc:
        return f'<p class="problem" id="graph-missing">{_e(exc)}</p>'
    return f'<div class="pic" id="graph">{svg}</div>'


def render_html_fragment(report: Report, diagnosis: Any = None) -> str:
    """The report as one `<div class="aelab-report">` with its own scoped style and script (for Jupyter)."""
    uid = f"aelab-report-{next(_IDS)}"
    table, initial = _table(report)
    inputs = ", ".join(f"{shape(t.shape)} {t.dtype}" for t in report.trace.inputs)
    how = {"meta": "meta tensors", "fake": "fake tensors", "real": "a real batch-1 forward"}.get(
        report.trace.execution, report.trace.execution)
    notes = "".join(f"<li>{_e(n)}</li>" for n in report.notes)
    return "\n".join([
        f'<div class="aelab-report" id="{uid}" data-initial-depth="{initial}"><style>{CSS}</style>',
        f"<h1>{_e(report.model)}</h1><p class=\"sub\">input {_e(inputs)} · traced on {how}; FLOPs count a "
        "multiply-add as 2, as torch.utils.flop_counter does</p>",
        "<h2>Verdict</h2>", _verdict(report),
        "<h2>Doctor</h2>", _doctor(report, diagnosis),
        "<h2>Hourglass</h2>", _hourglass(report),
        "<h2>Data flow</h2>", _graph(report),
        "<h2>Layers</h2>", table,
        "<h2>Totals</h2><ul>" + "".join(f"<li>{_e(line)}</li>" for line in totals_lines(report)) + "</ul>",
        "<h2>Formulas</h2>", _formulas(report),
        f"<h2>Notes</h2><ul>{notes}</ul>" if notes else "",
        f"<script>{SCRIPT % {'uid': uid}}</script></div>",
    ])


def render_html(report: Report, diagnosis: Any = None) -> str:
    """The whole page (`aelab inspect --format html`); `diagnosis` (from `aelab.doctor.diagnose.diagnose`) adds its
    findings, else the report's own `diagnosis` attribute is used when it has one."""
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'; '
        "script-src 'unsafe-inline'; img-src data:\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>aelab: {_e(report.model)}</title></head><body>",
        render_html_fragment(report, diagnosis), "</body></html>", ""])
