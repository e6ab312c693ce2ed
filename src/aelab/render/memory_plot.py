"""The memory timeline: live bytes over the steady-state step's ops, the phases shaded, the peak marked."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

from matplotlib.figure import Figure
from matplotlib.patches import Patch

from aelab.errors import UsageError

if TYPE_CHECKING:
    from aelab.footprint.report import MemoryReport

PHASE_COLORS: dict[str, str] = {"forward": "#dbe8f6", "loss": "#f6efd9", "backward": "#f6dede",
                                "optimizer": "#e2f2df", "zero_grad": "#eeeeee", "setup": "#ffffff"}
FORMATS = ("png", "svg", "pdf")


def _plain(text: str) -> str:
    return text.replace("$", r"\$")


def timeline_figure(r: MemoryReport) -> Figure:
    fig = Figure(figsize=(10, 3.6), dpi=110)
    ax = fig.add_subplot()
    values = [v / 2**20 for v in r.timeline]
    xs = list(range(len(values)))
    start = 0
    for i in range(1, len(values) + 1):
        if i == len(values) or r.timeline_phases[i] != r.timeline_phases[start]:
            phase = r.timeline_phases[start]
            ax.axvspan(start - 0.5, i - 0.5, color=PHASE_COLORS.get(phase, "#ffffff"), lw=0)
            start = i
    ax.step(xs, values, where="post", color="#2c3e50", lw=1.2)
    if values:
        k = max(range(len(values)), key=values.__getitem__)
        ax.plot([k], [values[k]], "o", color="#c0392b")
        ax.annotate(f"peak {values[k]:,.1f} MiB", (k, values[k]), textcoords="offset points", xytext=(6, -12),
                    color="#c0392b", fontsize=9)
    handles = [Patch(color=PHASE_COLORS.get(ph, "#ffffff"), label=ph) for ph in dict.fromkeys(r.timeline_phases)]
    ax.legend(handles=handles, loc="upper right", fontsize=8, frameon=False, ncol=5)
    ax.set_xlabel("ops of the steady-state step that allocate or free")
    ax.set_ylabel("live tensor memory (MiB)")
    ax.set_title(_plain(f"{r.model}: {r.optimizer}, amp {r.amp}"), fontsize=10)
    ax.set_xlim(-0.5, max(len(values), 1) - 0.5)
    ax.set_ylim(0, max(values or [1]) * 1.12)
    fig.tight_layout()
    return fig


def check_target(path: Path) -> str:
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise UsageError(f"--timeline {path}: write .png, .svg or .pdf")
    return fmt


def save_timeline(r: MemoryReport, path: Path) -> None:
    fmt = check_target(path)
    try:
        timeline_figure(r).savefig(path, format=fmt)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc


def timeline_svg(r: MemoryReport) -> str:
    buf = io.StringIO()
    timeline_figure(r).savefig(buf, format="svg")
    text = buf.getvalue()
    return text[text.index("<svg"):]
