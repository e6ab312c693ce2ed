"""The registry of shape-error explainers: `@explainer(name, doc, order=...)` beside each function.

Each explainer reads a `Context` (the trace of the failing forward, the modules' configurations, the
failing call) and returns the candidate findings for its kind, best first, or [] when the error is not
its kind. `order` is the order of precedence: a missing batch dimension explains a wrong Linear
downstream, so it is asked first; `other_error` takes whatever is left. The registry refuses a second
explainer of one name or one order, and a name that is not snake_case, when its module is imported.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aelab.errors import RegistryError

if TYPE_CHECKING:
    from aelab.doctor.records import Context, Finding

ExplainFn = Callable[["Context"], "list[Finding]"]
_NAME = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")


@dataclass(frozen=True)
class Explainer:
    """One kind of problem: its name, what it recognises and fixes, and the function that does it."""

    name: str
    doc: str
    explain: ExplainFn
    order: int
    on_error: bool = True  # False: asked when the forward ran (e.g. an autoencoder's output shape)
    whole_model: bool = False  # the problem belongs to the model, not one layer (for "is it still there?")


#: name -> explainer, in order of precedence (filled by `@explainer` as the explainer modules import)
EXPLAINERS: dict[str, Explainer] = {}


def explainer(name: str, doc: str, *, order: int, on_error: bool = True,
              whole_model: bool = False) -> Callable[[ExplainFn], ExplainFn]:
    """Register the decorated function as the explainer of the kind of problem `name` (its findings' kind)."""

    def register(fn: ExplainFn) -> ExplainFn:
        if not _NAME.fullmatch(name):
            raise RegistryError(f"explainer name {name!r} must be snake_case, e.g. 'linear_in_features'")
        if name in EXPLAINERS:
            raise RegistryError(f"explainer {name!r} is registered twice ({EXPLAINERS[name].explain.__qualname__} "
                                f"and {fn.__qualname__})")
        clash = next((e for e in EXPLAINERS.values() if e.order == order), None)
        if clash is not None:
            raise RegistryError(f"explainers {clash.name!r} and {name!r} both have order {order}")
        entries = [*EXPLAINERS.values(), Explainer(name, doc, fn, order, on_error, whole_model)]
        EXPLAINERS.clear()
        EXPLAINERS.update((e.name, e) for e in sorted(entries, key=lambda e: e.order))
        return fn

    return register


def get(name: str) -> Explainer:
    """The explainer of kind `name`; a RegistryError for a kind no explainer registered."""
    try:
        return EXPLAINERS[name]
    except KeyError:
        raise RegistryError(f"no explainer of kind {name!r} (known: {', '.join(EXPLAINERS)})") from None
