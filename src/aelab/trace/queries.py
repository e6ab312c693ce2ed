"""Questions about a recorded `Trace` that several rooms ask, answered once."""

from __future__ import annotations

from aelab.trace.records import CallEvent, Trace

#: ops that copy a tensor without computing on it: a copy of a parameter is still the parameter
_COPIES = frozenset({"aten._to_copy", "aten.clone", "aten.contiguous", "aten.lift_fresh_copy", "aten.expand"})


def module_parents(trace: Trace) -> set[int]:
    """The cids of calls that run other modules: containers (Sequential, an encoder block), not layers.

    A module call without module children is a layer, a table row the user can name; the functions it
    calls are its own work (F.linear inside Linear), not rows of their own.
    """
    return {c.parent for c in trace.calls if c.kind == "module" and c.parent is not None}


def visible_calls(trace: Trace) -> list[CallEvent]:
    """Calls that are rows: every module call but the root; functions/samples called by non-leaf modules."""
    containers = module_parents(trace)  # asked per call, it was quadratic
    out = []
    for call in trace.calls:
        if call.parent is None:
            continue
        if call.kind == "module":
            out.append(call)
            continue
        parent = trace.calls[call.parent]
        if parent.parent is None or parent.cid in containers:
            out.append(call)
    return out


def call_layers(trace: Trace) -> list[int | None]:
    """Per call id, the layer it runs in: the outermost table row (`visible_calls`) without sub-modules;
    None for the root and the calls around the layers."""
    rows = {c.cid for c in visible_calls(trace)}
    containers = module_parents(trace)
    out: list[int | None] = []
    for call in trace.calls:
        out.append(next((c.cid for c in trace.path(call.cid)
                         if c.cid in rows and c.cid not in containers), None))
    return out


def parameter_tids(trace: Trace) -> set[int]:
    """Tensors that are parameters or buffers, or views/copies of them (e.g. `Wᵀ`, a detached saved `W`).

    A parameter is a tensor ops read that no op made and that is not a model input.
    """
    made = {t.tid for op in trace.ops for t in op.outputs}
    given = {t.tid for t in trace.inputs}
    out = {t.tid for op in trace.ops if op.phase == "forward" for t in op.inputs} - made - given
    for op in trace.ops:
        if (op.is_view or op.name in _COPIES) and any(t.tid in out for t in op.inputs):
            out.update(t.tid for t in op.outputs)
    return out
