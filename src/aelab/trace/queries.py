"""Questions about a recorded `Trace` that several rooms ask, answered once."""

from __future__ import annotations

from aelab.trace.records import CallEvent, Trace


def has_module_children(trace: Trace, call: CallEvent) -> bool:
    """Whether `call` runs other modules: a container (Sequential, an encoder block), not a layer.

    A module call without module children is a layer, a table row the user can name; the functions it
    calls are its own work (F.linear inside Linear), not rows of their own.
    """
    return any(trace.calls[k].kind == "module" for k in call.children)
