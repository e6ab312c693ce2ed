"""Shape-error explainers, one module per family (`layers`, `flow`); each function registers itself with
`@explainer` (registry.py). Importing this package imports every module in it, so `EXPLAINERS` is complete:
a new kind of problem is one decorated function (in a new module here, or an existing one) and its test."""

from __future__ import annotations

import importlib
import pkgutil

from aelab.doctor.explainers.registry import EXPLAINERS, Explainer, explainer, get

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _module != "registry":
        importlib.import_module(f"{__name__}.{_module}")

__all__ = ["EXPLAINERS", "Explainer", "explainer", "get"]
