"""`aelab memory --format html`: the memory section (peaks, breakdown, timeline, layers) as a page."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aelab.render.html import CSS, _e
from aelab.render.memory_text import LABELS, LAYER_ROWS, _pct, mib, summary_lines, tail_lines

if TYPE_CHECKING:
    from aelab.footprint.report import MemoryReport


def render_memory_section(r: MemoryReport) -> str:
    """The memory section: one `<section>`, usable inside another aelab page."""
    from aelab.render.memory_plot import timeline_svg

    rows = "".join(f"<tr><td>{_e(label)}</td><td class=n>{mib(r.breakdown.get(k, 0))}</td>"
                   f"<td class=n>{_pct(r.breakdown.get(k, 0), r.peak_bytes)}</td>"
                   f"<td class=n>{mib(r.first_step_breakdown.get(k, 0))}</td></tr>"
                   for k, label in LABELS.items() if r.breakdown.get(k) or r.first_step_breakdown.get(k))
    layers = "".join(f"<tr><td class=mono>{_e(x.name)}</td><td class=n>{mib(x.saved_bytes)}</td>"
                     f"<td class=n>{mib(x.saved_at_peak_bytes)}</td><td class=n>{mib(x.output_bytes)}</td></tr>"
                     for x in [x for x in r.layers if x.saved_bytes][:LAYER_ROWS])
    head = summary_lines(r)
    return "\n".join([
        '<section id="memory">', f"<h2>Memory of one training step</h2><p class=sub>{_e(head[0])}</p>",
        "<ul>" + "".join(f"<li>{_e(x)}</li>" for x in head[1:]) + "</ul>",
        f'<div class="pic" id="memory-timeline">{timeline_svg(r)}</div>',
        "<h2>Live at the steady-state peak</h2><table><tr><th>What</th><th>Bytes</th><th>Share</th>"
        f"<th>First step</th></tr>{rows}<tr><td><b>total</b></td><td class=n><b>{mib(r.peak_bytes)}</b></td>"
        f"<td class=n>100%</td><td class=n>{mib(r.first_step_peak_bytes)}</td></tr></table>",
        ("<h2>Saved for backward, per layer</h2><table><tr><th>Layer</th><th>Saved</th><th>Live at peak</th>"
         f"<th>Output</th></tr>{layers}</table>") if layers else "",
        "<ul>" + "".join(f"<li>{_e(x.strip())}</li>" for x in tail_lines(r)) + "</ul>",
        "</section>"])


def render_memory_html(r: MemoryReport) -> str:
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'; '
        "img-src data:\">", f"<title>aelab memory: {_e(r.model)}</title></head><body>",
        f'<div class="aelab-report"><style>{CSS}</style><h1>{_e(r.model)}</h1>', render_memory_section(r),
        "</div></body></html>", ""])
