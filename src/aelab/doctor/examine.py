"""The doctor's pure step: the first problem of a recorded trace, asked of every explainer in order."""

from __future__ import annotations

from aelab.doctor.explainers import EXPLAINERS, get
from aelab.doctor.records import Finding, ModuleConfig, make_context
from aelab.trace.records import Trace


def examine(trace: Trace, modules: dict[str, ModuleConfig]) -> list[Finding]:
    """The first problem in `trace` as one or more candidate findings (best first), or [] when the
    model ran and nothing is wrong. Asks each explainer of the registry in turn."""
    ctx = make_context(trace, modules)
    for explainer in EXPLAINERS.values():
        if explainer.on_error != (trace.error is not None):
            continue
        found = explainer.explain(ctx)
        if found:
            return found
    return []


def same_problem(a: Finding, b: Finding) -> bool:
    """Did a fix leave its problem in place? Whole-model kinds compare by kind alone."""
    return a.kind == b.kind and (get(a.kind).whole_model or a.layer == b.layer)
