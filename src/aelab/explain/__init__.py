"""A layer's output-size formulas with the numbers filled in (`aelab explain`); today over `aelab.shapes`."""

from aelab.shapes.formulas import (
           LAYER_KINDS,
           LayerExplanation,
           LayerKind,
           SizeDerivation,
           explain_layer,
           explain_module,
)
from aelab.shapes.inverse import SizeSolution, solve_layer

__all__ = ["LAYER_KINDS", "LayerExplanation", "LayerKind", "SizeDerivation", "SizeSolution", "explain_layer",
           "explain_module", "solve_layer"]
