"""Graphviz drawings: the data flow of a traced model, and autograd's backward graph of a `requires_grad` pattern.

Data flow (`render_graph`): one box per layer (the rows without sub-modules), modules as nested
clusters, each edge labelled with the shape of the tensor it carries; when the bottleneck analysis
ran, encoder and decoder layers get two colours and the latent is outlined. Backward
(`render_backward_graph`): autograd's nodes as torchviz draws them (`AddmmBackward0`, a box per
parameter), the ones the pattern runs in black and the ones autograd skips greyed and dashed.

Every name from the user's model goes through `_label`, so `<script>` or a backslash stays text.

A documented public module: docs and user code may import from it.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import graphviz

from aelab.errors import UsageError
from aelab.shapes.notation import compact_shape
from aelab.trace.queries import call_layers, parameter_tids
from aelab.trace.records import Trace

if TYPE_CHECKING:
    from aelab.trace.autograd_graph import GradGraph

NO_DOT = "Graphviz's dot is not installed: apt-get install graphviz"
FORMATS = ("svg", "png", "pdf")
#: colours of the drawings: encoder, decoder, latent, skipped
ENCODER_FILL, DECODER_FILL, LATENT_COLOR, SKIPPED = "#d6e6f5", "#fbe0c8", "#c0392b", "#a0a0a0"


def _label(*lines: str) -> str:
    r"""A DOT label from lines of user text: backslashes and `<...>` lose their DOT meaning, lines join with \n."""
    return graphviz.nohtml("\\n".join(line.replace("\\", "\\\\") for line in lines if line))


def _fmt(path: Path, fmt: str | None) -> str:
    fmt = (fmt or path.suffix.lstrip(".") or "svg").lower()
    if fmt not in FORMATS:
        raise UsageError(f"cannot draw {path}: the graph format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    return fmt


def require_dot() -> None:
    """A UsageError naming the package when Graphviz's `dot` is not on PATH."""
    if shutil.which("dot") is None:
        raise UsageError(NO_DOT)


def check_target(path: Path, fmt: str | None = None) -> str:
    """Fail early, before any slow work: `dot` missing, or a format it cannot write. Returns the format."""
    fmt = _fmt(path, fmt)
    require_dot()
    return fmt


def pipe(digraph: graphviz.Digraph, fmt: str) -> bytes:
    """The drawing in `fmt`, made by `dot`."""
    require_dot()
    try:
        data: bytes = digraph.pipe(format=fmt)
    except graphviz.ExecutableNotFound as exc:
        raise UsageError(NO_DOT) from exc
    except graphviz.CalledProcessError as exc:
        raise UsageError(f"dot failed to draw the graph: {str(exc.stderr or exc).strip().splitlines()[-1]}") from exc
    return data


def svg_text(digraph: graphviz.Digraph) -> str:
    """Inline SVG (no XML prolog or doctype), for the HTML report."""
    text = pipe(digraph, "svg").decode("utf-8")
    return text[text.index("<svg"):] if "<svg" in text else text


def write(digraph: graphviz.Digraph, path: Path | str, fmt: str | None = None) -> Path:
    """Draw to `path` in `fmt` (default: from the suffix); one clear UsageError if it cannot be written."""
    path = Path(path)
    data = pipe(digraph, _fmt(path, fmt))
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return path


def _parent_path(path: str) -> str:
    return path.rsplit(".", 1)[0] if "." in path else ""


def _nest(parent: Any, paths: dict[str, list[str]], titles: dict[str, str], prefix: str) -> None:
    """Add clusters for module paths under `prefix`, each holding its own nodes and its children's clusters."""
    order = sorted(paths)
    for path in (p for p in order if p and _parent_path(p) == prefix):
        with parent.subgraph(name=f"cluster_{order.index(path)}") as sub:
            sub.attr(label=_label(titles.get(path, path)), style="rounded", color="#999999", fontsize="10",
                     labeljust="l")
            for node in paths[path]:
                sub.node(node)
            _nest(sub, paths, titles, path)


def _module_paths(names: Iterable[str]) -> set[str]:
    out: set[str] = set()
    for name in names:
        parts = name.split(".")
        out.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return out


# --- data flow ----------------------------------------------------------------------------------------
def _roles(bottleneck: Any) -> tuple[set[str], set[str], str | None]:
    if bottleneck is None:
        return set(), set(), None
    encoder = {str(n) for n in getattr(bottleneck, "encoder", None) or []}
    decoder = {str(n) for n in getattr(bottleneck, "decoder", None) or []}
    layer = getattr(bottleneck, "layer", None)
    return encoder, decoder, str(layer) if layer else None


def _role(name: str, encoder: set[str], decoder: set[str]) -> str | None:
    owners = [name] + [name.rsplit(".", i)[0] for i in range(1, name.count(".") + 1)]
    if any(o in encoder for o in owners):
        return "encoder"
    if any(o in decoder for o in owners):
        return "decoder"
    return None


def data_flow(trace: Trace, bottleneck: Any = None, title: str | None = None) -> graphviz.Digraph:
    """The data flow of a trace as a DOT graph (see the module docstring)."""
    layers = sorted({c for c in call_layers(trace) if c is not None})
    params = parameter_tids(trace)
    encoder, decoder, latent = _roles(bottleneck)
    dot = graphviz.Digraph("dataflow", graph_attr={"rankdir": "TB", "fontname": "Helvetica", "fontsize": "11",
                                                    "label": _label(title or trace.model_type), "labelloc": "t"},
                           node_attr={"shape": "box", "style": "rounded,filled", "fillcolor": "white",
                                      "fontname": "Helvetica", "fontsize": "10"},
                           edge_attr={"fontname": "Helvetica", "fontsize": "9", "color": "#555555"})
    latest: dict[int, str] = {}
    for i, t in enumerate(trace.inputs):
        name = trace.input_names[i] if i < len(trace.input_names) else f"arg{i}"
        dot.node(f"in{i}", _label(f"input {name}", compact_shape(t.shape)), shape="ellipse", fillcolor="#eeeeee")
        latest[t.tid] = f"in{i}"
    clusters: dict[str, list[str]] = {}
    titles: dict[str, str] = {}
    edges: set[tuple[str, str, int]] = set()
    for cid in layers:
        call = trace.calls[cid]
        node = f"L{cid}"
        role = _role(call.name, encoder, decoder)
        is_latent = latent is not None and call.name == latent
        attrs = {"fillcolor": ENCODER_FILL if role == "encoder" else DECODER_FILL if role == "decoder" else "white"}
        if is_latent:
            attrs.update(color=LATENT_COLOR, penwidth="3")
        dot.node(node, _label(call.name.rsplit(".", 1)[-1] if call.kind == "module" else call.name,
                              call.type, "latent (bottleneck)" if is_latent else ""), **attrs)
        clusters.setdefault(_parent_path(call.module) if call.kind == "module" else call.module, []).append(node)
        for t in call.inputs:
            src = latest.get(t.tid)
            if src is None or src == node or t.tid in params:
                continue
            if (src, node, t.tid) not in edges:
                edges.add((src, node, t.tid))
                dot.edge(src, node, label=_label(compact_shape(t.shape)))
        for t in call.outputs:
            latest[t.tid] = node
    for path in _module_paths(clusters):
        titles[path] = f"{path} ({trace.module_types.get(path, '?')})"
    for i, t in enumerate(trace.outputs):
        dot.node(f"out{i}", _label("output", compact_shape(t.shape)), shape="ellipse", fillcolor="#eeeeee")
        if t.tid in latest:
            dot.edge(latest[t.tid], f"out{i}", label=_label(compact_shape(t.shape)))
    for node in clusters.get("", []):
        dot.node(node)
    for path in _module_paths(clusters):
        clusters.setdefault(path, [])
    _nest(dot, clusters, titles, "")
    if encoder or decoder:
        dot.node("legend", _label("encoder: blue", "decoder: orange", "latent: red outline"), shape="note",
                 fillcolor="white", fontsize="9")
    return dot


def render_graph(report_or_trace: Any, path: Path | str, fmt: str | None = None) -> Path:
    """Draw the data flow of a `Report` (its bottleneck marked when it has one) or a bare `Trace` to `path`
    (svg/png/pdf, from the suffix unless `fmt` says). Raises UsageError when `dot` is missing."""
    require_dot()
    if isinstance(report_or_trace, Trace):
        trace, bottleneck, title = report_or_trace, None, None
    else:
        trace = report_or_trace.trace
        bottleneck = getattr(report_or_trace, "bottleneck", None)
        title = getattr(report_or_trace, "model", None)
    return write(data_flow(trace, bottleneck, title), path, fmt)


# --- autograd's backward graph ------------------------------------------------------------------------
def backward(graph: GradGraph, title: str | None = None) -> graphviz.Digraph:
    """Autograd's graph as DOT: nodes the pattern runs solid, skipped nodes and gradients grey and dashed."""
    dot = graphviz.Digraph("backward", graph_attr={"rankdir": "TB", "fontname": "Helvetica", "fontsize": "11",
                                                    "label": _label(title or "backward graph"), "labelloc": "t"},
                           node_attr={"shape": "box", "style": "filled", "fillcolor": "white",
                                      "fontname": "Helvetica", "fontsize": "10"},
                           edge_attr={"color": "#333333"})
    clusters: dict[str, list[str]] = {}
    for node in graph.nodes:
        nid = f"n{node.nid}"
        if node.param is not None:
            label = _label(node.param, compact_shape(node.shape or ()), "" if node.runs else "frozen: no gradient")
            attrs = {"fillcolor": "#cfe8fc" if node.runs else "#f2f2f2"}
        else:
            done = sum(node.next_runs) if node.next_runs else len(node.next)
            partial = f"computes {done} of {len(node.next)} gradients" if node.runs and done < len(node.next) else ""
            label = _label(node.label, "skipped" if not node.runs else partial)
            attrs = {"fillcolor": "white" if node.runs else "#f2f2f2"}
        if not node.runs:
            attrs.update(color=SKIPPED, fontcolor=SKIPPED, style="filled,dashed")
        dot.node(nid, label, **attrs)
        clusters.setdefault(node.module, []).append(nid)
        for nxt, runs in zip(node.next, node.next_runs or [True] * len(node.next)):
            dot.edge(nid, f"n{nxt}", **({} if runs else {"color": SKIPPED, "style": "dashed"}))
    for path in _module_paths(clusters):
        clusters.setdefault(path, [])
    _nest(dot, clusters, {p: p for p in clusters}, "")
    for nid in clusters.get("", []):
        dot.node(nid)
    dot.node("legend", _label("black: autograd runs it", "grey, dashed: skipped for this pattern",
                              "blue: a parameter that gets a gradient"), shape="note", fontsize="9")
    return dot


def render_backward_graph(graph: GradGraph, path: Path | str, fmt: str | None = None,
                          title: str | None = None) -> Path:
    """Draw autograd's backward graph with the skipped nodes greyed (`aelab cost --graph`)."""
    require_dot()
    return write(backward(graph, title), path, fmt)
