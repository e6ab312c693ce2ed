"""The builder over the kinds registry: `build(kind, input_shape, latent, **config)`.

Every module in `aelab/models/kinds/` is imported here, in name order, and registers its kind
(kind.py): a new kind is one new file there, nothing to list anywhere else.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from typing import Any

from aelab.errors import UsageError
from aelab.models import kinds as _kinds
from aelab.models.base import Autoencoder
from aelab.models.config import make_config
from aelab.models.kind import KINDS, Kind

for _module in sorted(m.name for m in pkgutil.iter_modules(_kinds.__path__)):
    importlib.import_module(f"{_kinds.__name__}.{_module}")
_found = sorted(KINDS.items())  # name order, whatever order the files import each other in
KINDS.clear()
KINDS.update(_found)

__all__ = ["KINDS", "Kind", "build", "from_config"]


def build(kind: str, input_shape: Any, latent: int, **config: Any) -> Autoencoder:
    """An autoencoder of `kind` for per-sample `input_shape` (no batch dim) with a `latent`-sized code.

    Raises UsageError (also a ValueError), one sentence saying what to change, for an unknown kind or option, a bad
    value, or a geometry the input cannot support.
    """
    if kind not in KINDS:
        raise UsageError(f"unknown kind {kind!r}; known kinds: {', '.join(KINDS)}")
    config_class, model_class = KINDS[kind]
    try:
        return model_class(make_config(config_class, kind, input_shape, latent, config))
    except UsageError:
        raise
    except ValueError as exc:  # the kinds say what to change in a ValueError: to the user it is bad input
        raise UsageError(str(exc)) from exc


def from_config(kind: str, config: Mapping[str, Any]) -> Autoencoder:
    """Rebuild exactly the model whose `config_dict()` is `config` (checkpoints store it as JSON)."""
    options = dict(config)
    stored = options.pop("kind", kind)
    if stored != kind:
        raise ValueError(f"config is for kind {stored!r}, not {kind!r}")
    missing = [key for key in ("input_shape", "latent") if key not in options]
    if missing:
        raise ValueError(f"config lacks {' and '.join(missing)}; pass a dict made by model.config_dict()")
    return build(kind, options.pop("input_shape"), options.pop("latent"), **options)
