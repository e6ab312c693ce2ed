"""The hourglass plot: how wide each representation along the data path is, the bottleneck at its waist.

The picture people draw by hand when they explain autoencoders, from the bottleneck analysis's
data path: one bar per representation, as tall as log10 of its values per sample (mirrored about
the axis, so the shape is an hourglass on a log scale), encoder and decoder in two colours, the
latent in red and named. When the input keeps its steps or pixels, the width per step/pixel is drawn
over it as a line. Consecutive representations of the same width and role (an activation after its
Linear, a transpose) share one bar, so AE(784, 10, 42) reads 784 → 42 → 10 → 42 → 784.

A documented public module: docs and user code may import from it.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib.figure import Figure
from matplotlib.patches import Polygon, Rectangle

from aelab.errors import UsageError

#: bar colours by role
COLORS: dict[str, str] = {"input": "#9e9e9e", "encoder": "#4a86c5", "latent": "#c0392b", "decoder": "#e58e3c",
                          "output": "#9e9e9e"}
FORMATS = ("png", "svg", "pdf")


@dataclass(frozen=True)
class Bar:
    """One bar: the first layer it stands for, how many more share it, its widths and role."""

    layer: str
    merged: int
    per_sample: int
    per_position: int | None
    role: str

    @property
    def label(self) -> str:
        return _plain(self.layer) + (f" (+{self.merged})" if self.merged else "")


def bars(bottleneck: Any) -> list[Bar]:
    """The bars of the plot: the data path with runs of equal width and role folded into one."""
    out: list[Bar] = []
    for rep in getattr(bottleneck, "path", None) or []:
        key = (rep.per_sample, rep.per_position, rep.role)
        if out and (out[-1].per_sample, out[-1].per_position, out[-1].role) == key:
            last = out[-1]
            out[-1] = Bar(last.layer, last.merged + 1, last.per_sample, last.per_position, last.role)
        else:
            out.append(Bar(rep.layer, 0, rep.per_sample, rep.per_position, rep.role))
    return out


def _plain(text: str) -> str:
    """User text for matplotlib: a `$` must not start mathtext."""
    return text.replace("$", r"\$")


def _h(width: int | None) -> float:
    return math.log10(max(int(width or 1), 1)) + 0.15  # a width of 1 still shows


def _figure(bottleneck: Any, title: str | None = None) -> Figure:
    data = bars(bottleneck)
    if getattr(bottleneck, "latent_source", None) == "none":
        raise UsageError(f"no hourglass to draw: {bottleneck.verdict}")
    if not data:
        raise UsageError("no data path from the input to the output was found, so there is no hourglass to draw")
    word = getattr(bottleneck, "position_word", "") or "position"
    n = len(data)
    fig = Figure(figsize=(max(6.0, 0.62 * n + 2.0), 5.2), dpi=100)
    ax = fig.add_subplot()
    top = max(_h(b.per_sample) for b in data)
    for i, b in enumerate(data):
        h = _h(b.per_sample)
        ax.add_patch(Rectangle((i - 0.3, -h), 0.6, 2 * h, color=COLORS.get(b.role, "#777777"), zorder=3,
                               label=b.role if b.role not in [d.role for d in data[:i]] else None))
        if i + 1 < n:
            h2 = _h(data[i + 1].per_sample)
            ax.add_patch(Polygon([(i + 0.3, h), (i + 0.7, h2), (i + 0.7, -h2), (i + 0.3, -h)], closed=True,
                                 color="#dddddd", zorder=1))
        ax.text(i, h + 0.12, f"{b.per_sample:,}", ha="center", va="bottom", fontsize=8, zorder=4,
                fontweight="bold" if b.role == "latent" else "normal", gid=f"width-{i}")
    positions = [(i, b.per_position) for i, b in enumerate(data) if b.per_position]
    if positions:
        xs = [i for i, _ in positions]
        ax.plot(xs, [_h(w) for _, w in positions], color="black", lw=1.2, ls="--", marker="o", ms=3, zorder=5,
                label=f"per {word}")
        ax.plot(xs, [-_h(w) for _, w in positions], color="black", lw=1.2, ls="--", marker="o", ms=3, zorder=5)
        for i, w in positions:
            ax.text(i + 0.33, _h(w), f"{w:,}", fontsize=7, va="center", zorder=6)
    waist = next((i for i, b in enumerate(data) if b.role == "latent"), None)
    if waist is not None:
        b = data[waist]
        h = _h(b.per_sample)
        per = f", {b.per_position:,} per {word}" if b.per_position else ""
        ax.annotate(f"bottleneck: {b.per_sample:,} per sample{per}", xy=(waist, -h), xytext=(waist, -top - 0.9),
                    ha="center", fontsize=9, color=COLORS["latent"], zorder=6, gid="waist",
                    arrowprops={"arrowstyle": "->", "color": COLORS["latent"]})
    low = 0 if min([b.per_sample for b in data] + [w for _, w in positions]) < 10 else 1
    decades = range(low, math.ceil(top) + 1)
    ticks = [_h(10**d) for d in decades]
    ax.set_yticks([-t for t in ticks[::-1]] + ticks)
    ax.set_yticklabels([f"{10**d:,}" for d in decades][::-1] + [f"{10**d:,}" for d in decades], fontsize=7)
    ax.set_ylabel("values per sample (log scale, mirrored)")
    ax.set_xticks(range(n))
    ax.set_xticklabels([b.label for b in data], rotation=40, ha="right", fontsize=7)
    ax.set_xlim(-0.7, n - 0.3)
    ax.set_ylim(-top - 1.3, top + 0.7)
    ax.axhline(0, color="#bbbbbb", lw=0.5, zorder=2)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), fontsize=7, frameon=False, ncol=6)
    ax.set_title(_plain(title) if title else "Hourglass: width of each representation along the data path",
                 fontsize=10, pad=22)
    fig.tight_layout()
    return fig


def _save(fig: Figure, target: Any, fmt: str) -> None:
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "aelab"}):
        meta = {"Date": None, "Creator": None, "Format": None, "Type": None} if fmt == "svg" else None
        fig.savefig(target, format=fmt, metadata=meta)


def hourglass_svg(bottleneck: Any, title: str | None = None) -> str:
    """The plot as inline SVG text (no XML prolog), for the HTML report."""
    buf = io.StringIO()
    _save(_figure(bottleneck, title), buf, "svg")
    text = buf.getvalue()
    return text[text.index("<svg"):]


def render_hourglass(bottleneck: Any, path: Path | str, fmt: str | None = None, title: str | None = None) -> Path:
    """Draw the hourglass of a `Bottleneck` to `path` (png/svg/pdf, from the suffix unless `fmt` says)."""
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".") or "png").lower()
    if fmt not in FORMATS:
        raise UsageError(f"cannot draw {path}: the hourglass format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if bottleneck is None:
        raise UsageError("no bottleneck was found, so there is no hourglass to draw")
    fig = _figure(bottleneck, title)
    try:
        with path.open("wb") as fh:
            _save(fig, fh, fmt)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return path
