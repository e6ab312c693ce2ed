"""aelab: see PyTorch networks layer by layer; build, train and judge autoencoders.

The public API is small: `inspect` (shapes, params, FLOPs, bottleneck of any model),
`diagnose` (the shape doctor) and `build` (an autoencoder for any input shape). Everything else is reached through those
records or through the `aelab` command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["__version__", "build", "diagnose", "inspect", "memory"]

if TYPE_CHECKING:
    from aelab.doctor.diagnose import diagnose
    from aelab.footprint.memory import memory
    from aelab.inspection.report import inspect
    from aelab.models import build


def __getattr__(name: str) -> Any:
    # Lazy: `import aelab` must not import torch-heavy rooms it does not need.
    if name == "inspect":
        from aelab.inspection.report import inspect

        return inspect
    if name == "diagnose":
        from aelab.doctor.diagnose import diagnose

        return diagnose
    if name == "build":
        from aelab.models import build

        return build
    if name == "memory":
        from aelab.footprint.memory import memory

        return memory
    raise AttributeError(f"module 'aelab' has no attribute {name!r}")
