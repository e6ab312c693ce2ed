"""`aelab memory` as text, markdown and JSON: the peaks, where they are, the breakdown, layers, what-ifs."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from rich import box
from rich.table import Table

from aelab.render.console import capture, text
from aelab.render.units import count

if TYPE_CHECKING:
    from aelab.footprint.report import MemoryReport

#: breakdown key -> what the report calls it
LABELS: dict[str, str] = {
    "parameters": "parameters", "gradients": "gradients", "optimizer_state": "optimizer state",
    "activations": "activations saved for backward", "temporaries": "temporaries (in flight)",
    "buffers": "buffers", "inputs": "inputs", "amp_copies": "autocast copies of weights",
}
LAYER_ROWS = 15


def mib(value: int) -> str:
    """Bytes in MiB (or GiB above 10 GiB), the units GPU tools print."""
    if abs(value) >= 10 * 2**30:
        return f"{value / 2**30:,.2f} GiB"
    return f"{value / 2**20:,.2f} MiB"


def _pct(a: int, b: int) -> str:
    return f"{100 * a / b:.1f}%" if b else "—"


def summary_lines(r: MemoryReport) -> list[str]:
    amp = "fp32" if r.amp == "off" else f"{r.amp} autocast"
    rounding = "rounded up to CUDA's 512-byte blocks" if r.device == "cuda" else "exact bytes (CPU)"
    inputs = ", ".join("x".join(map(str, x)) for x in r.inputs)
    lines = [
        f"{r.model}  ←  {inputs}   optimizer {r.optimizer}, {amp}; sizes {rounding}",
        f"Trainable: {count(r.trainable_params)} of {count(r.total_params)} parameters",
        f"Peak (steady state): {mib(r.peak_bytes)}  {r.peak_at}",
        f"Peak (first step):   {mib(r.first_step_peak_bytes)}  {r.first_step_peak_at}",
    ]
    return lines


def breakdown_table(r: MemoryReport) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, title="Live at the steady-state peak", title_justify="left")
    for title in ("What", "Bytes", "Share", "First step"):
        table.add_column(title, justify="left" if title == "What" else "right", no_wrap=True)
    for key, label in LABELS.items():
        value, first = r.breakdown.get(key, 0), r.first_step_breakdown.get(key, 0)
        if value or first:
            table.add_row(label, mib(value), _pct(value, r.peak_bytes), mib(first))
    table.add_row("total", mib(r.peak_bytes), "100%", mib(r.first_step_peak_bytes))
    return table


def layer_table(r: MemoryReport) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, title="Saved for backward, per layer (largest first)",
                  title_justify="left")
    for title in ("Layer", "Saved", "Saved, live at peak", "Output"):
        table.add_column(title, justify="left" if title == "Layer" else "right", no_wrap=True)
    for row in [x for x in r.layers if x.saved_bytes][:LAYER_ROWS]:
        table.add_row(row.name, mib(row.saved_bytes), mib(row.saved_at_peak_bytes), mib(row.output_bytes))
    return table


def tail_lines(r: MemoryReport) -> list[str]:
    lines = []
    if r.what_if:
        lines.append("What if:")
        for w in r.what_if:
            delta = w.peak_bytes - r.peak_bytes
            lines.append(f"  {w.description}: peak {mib(w.peak_bytes)} ({'+' if delta >= 0 else '−'}"
                         f"{mib(abs(delta))}), first step {mib(w.first_step_peak_bytes)}; {w.peak_at}")
    if r.max_batch is not None:
        m = r.max_batch
        if m.batch:
            lines.append(f"Fits {mib(m.budget_bytes)}: batch {m.batch} at most (peak {mib(m.peak_bytes)}; batch "
                         f"{m.batch + 1} needs {mib(m.next_peak_bytes)}), found in {m.predictions} predictions")
        else:
            lines.append(f"Fits {mib(m.budget_bytes)}: not even batch 1 (it needs {mib(m.next_peak_bytes)})")
    lines.extend(f"Corrected: {c}" for c in r.corrections)
    lines.append("Not modelled: " + "; ".join(f"{n['what']} ({n['typical']})" for n in r.not_modelled))
    lines.extend(f"Note: {n}" for n in r.notes)
    return lines


def render_memory_text(r: MemoryReport, width: int = 140, color: bool = False) -> str:
    """The whole `aelab memory` text report."""
    console = capture(width=width, color=color, highlight=False, soft_wrap=False)
    for line in summary_lines(r):
        console.print(line, markup=False)
    console.print(breakdown_table(r))
    if any(x.saved_bytes for x in r.layers):
        console.print(layer_table(r))
    for line in tail_lines(r):
        console.print(line, markup=False)
    return text(console)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_memory_markdown(r: MemoryReport) -> str:
    out = [f"# {r.model}: one training step", ""]
    out.extend(f"- {line}" for line in summary_lines(r)[1:])
    out += ["", "| What | Bytes | Share | First step |", "|---|---:|---:|---:|"]
    for key, label in LABELS.items():
        value, first = r.breakdown.get(key, 0), r.first_step_breakdown.get(key, 0)
        if value or first:
            out.append(f"| {label} | {mib(value)} | {_pct(value, r.peak_bytes)} | {mib(first)} |")
    out.append(f"| **total** | **{mib(r.peak_bytes)}** | 100% | {mib(r.first_step_peak_bytes)} |")
    rows = [x for x in r.layers if x.saved_bytes][:LAYER_ROWS]
    if rows:
        out += ["", "| Layer | Saved | Saved, live at peak | Output |", "|---|---:|---:|---:|"]
        out.extend(f"| `{_cell(x.name)}` | {mib(x.saved_bytes)} | {mib(x.saved_at_peak_bytes)} | "
                   f"{mib(x.output_bytes)} |" for x in rows)
    out += [""] + [f"- {line.strip()}" for line in tail_lines(r)]
    return "\n".join(out) + "\n"


def render_memory_json(r: MemoryReport) -> str:
    return json.dumps(r.to_dict(), indent=2)
