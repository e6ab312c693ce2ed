"""aelab: see PyTorch networks layer by layer; build, train and judge autoencoders.

The public API, each function with the record it returns:

- `inspect(model, *inputs)` -> `Report`: shapes, parameters, FLOPs, the bottleneck of any model
- `diagnose(model, *inputs)` -> `Diagnosis`: the shape doctor, the layer and the number a shape error needs
- `cost(model, *inputs, trainable=...)` -> `CostReport`: what backward costs for a trainable subset
- `memory(model, *inputs)` -> `MemoryReport`: the training step's memory footprint
- `explain_layer(kind, input_shape, ...)` -> `LayerExplanation`: a layer's size formulas with the numbers in
- `build(kind, input_shape, latent)` -> `Autoencoder`: an autoencoder for any input shape
- `train(model, data, **options)` -> `Run`: a built kind or your own nn.Module, trained (docs/train.md)
- `evaluate(run)` -> `Evaluation`; `detect(run, data)` -> `Detection`: judge a run (its folder or its `Run`)

Bad input raises `UsageError`, a wrong model `ModelError`; both are `AelabError`s. Names are imported
lazily: `import aelab` loads no torch-heavy room until one of them is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from aelab.errors import AelabError, ModelError, UsageError

__version__ = "0.1.0"

#: public name -> the module that defines it (imported on first use)
_LAZY: dict[str, str] = {
    "inspect": "aelab.inspection.report",
    "Report": "aelab.inspection.report",
    "diagnose": "aelab.doctor.diagnose",
    "Diagnosis": "aelab.doctor.records",
    "cost": "aelab.costing.cost",
    "CostReport": "aelab.costing.backward",
    "memory": "aelab.footprint.memory",
    "MemoryReport": "aelab.footprint.report",
    "explain_layer": "aelab.explain",
    "LayerExplanation": "aelab.explain",
    "build": "aelab.models",
    "Autoencoder": "aelab.models",
    "train": "aelab.training.api",
    "Run": "aelab.training.api",
    "TrainConfig": "aelab.training.config",
    "RunResult": "aelab.training.run",
    "evaluate": "aelab.evaluation.api",
    "Evaluation": "aelab.evaluation.report",
    "detect": "aelab.evaluation.api",
    "Detection": "aelab.evaluation.detect",
}

#: the functions first, each followed by the record it returns
__all__ = [
    "AelabError",
    "Autoencoder",
    "CostReport",
    "Detection",
    "Diagnosis",
    "Evaluation",
    "LayerExplanation",
    "MemoryReport",
    "ModelError",
    "Report",
    "Run",
    "RunResult",
    "TrainConfig",
    "UsageError",
    "__version__",
    "build",
    "cost",
    "detect",
    "diagnose",
    "evaluate",
    "explain_layer",
    "inspect",
    "memory",
    "train",
]

if TYPE_CHECKING:
    from aelab.costing.backward import CostReport
    from aelab.costing.cost import cost
    from aelab.doctor.diagnose import diagnose
    from aelab.doctor.records import Diagnosis
    from aelab.evaluation.api import detect, evaluate
    from aelab.evaluation.detect import Detection
    from aelab.evaluation.report import Evaluation
    from aelab.explain import LayerExplanation, explain_layer
    from aelab.footprint.memory import memory
    from aelab.footprint.report import MemoryReport
    from aelab.inspection.report import Report, inspect
    from aelab.models import Autoencoder, build
    from aelab.training.api import Run, train
    from aelab.training.config import TrainConfig
    from aelab.training.run import RunResult


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'aelab' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next access is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
