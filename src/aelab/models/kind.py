"""The model-kind contract: what a kind declares, and the strict registry it joins.

A kind is one file in `aelab/models/kinds/` whose model class is decorated with
`@register("name", ConfigClass)`. The registry refuses a second kind of the same name, a name that
does not match its file (`conv-vae` lives in `kinds/conv_vae.py`), a malformed name, and classes
that are not an `AEConfig` / `Autoencoder`. What a kind can do beyond encode/decode/loss it states
as `capabilities` (see `Capability`); nothing else in aelab asks what kind a model is.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple, TypeVar

from aelab.errors import RegistryError
from aelab.models.capability import Capability

if TYPE_CHECKING:
    from aelab.models.base import Autoencoder
    from aelab.models.config import AEConfig


class Kind(NamedTuple):
    """A kind: its typed config and its nn.Module (unpacks as `config_class, model_class`)."""

    config: type[AEConfig]
    model: type[Autoencoder]


#: kind name (as used in the API and the CLI) -> Kind, in the order the kind files were found.
KINDS: dict[str, Kind] = {}

_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
__all__ = ["KINDS", "Capability", "Kind", "register"]

M = TypeVar("M", bound="type[Autoencoder]")


def register(name: str, config: type[AEConfig]) -> Callable[[M], M]:
    """Class decorator: add the model class to KINDS under `name` (sets its `kind`)."""
    from aelab.models.base import Autoencoder
    from aelab.models.config import AEConfig

    def add(model: M) -> M:
        if not _NAME.match(name):
            raise RegistryError(f"kind name {name!r} must be lower-case words joined by '-', e.g. 'conv-vae'")
        if name in KINDS:
            raise RegistryError(f"kind {name!r} is registered twice ({KINDS[name].model.__qualname__} and "
                             f"{model.__qualname__})")
        module = sys.modules[model.__module__].__name__.rsplit(".", 1)[-1]
        if module != name.replace("-", "_"):
            raise RegistryError(f"kind {name!r} must live in models/kinds/{name.replace('-', '_')}.py, "
                             f"not in {module}.py")
        if not (isinstance(config, type) and issubclass(config, AEConfig)):
            raise RegistryError(f"kind {name!r}: its config must be an AEConfig dataclass")
        if not issubclass(model, Autoencoder):
            raise RegistryError(f"kind {name!r}: its model must subclass aelab.models.Autoencoder")
        model.kind = name
        KINDS[name] = Kind(config, model)
        return model

    return add
