"""`aelab explain` as Python: a layer's output-size formulas with the numbers filled in, and their inverse.

`explain_layer("conv2d", (1, 28, 28), out_channels=16, kernel_size=5, padding=2)` and `explain_module(layer,
shape)` -> `LayerExplanation`; `solve_layer(kind, shape, want)`, `solve_padding`, `solve_output_padding` ->
`SizeSolution` (which padding gives a wanted size); `conv_size`, `conv_transpose_size`, `pool_size` one
dimension at a time (`aelab.shapes.formulas`). A documented public module: docs may import from it.
"""

from aelab.explain.inverse import PaddingOption, SizeSolution, solve_layer, solve_output_padding, solve_padding
from aelab.explain.layers import LAYER_KINDS, LayerExplanation, LayerKind, explain_layer, explain_module
from aelab.shapes.formulas import SizeDerivation, conv_size, conv_transpose_size, pool_size

__all__ = ["LAYER_KINDS", "LayerExplanation", "LayerKind", "PaddingOption", "SizeDerivation", "SizeSolution",
           "conv_size", "conv_transpose_size", "explain_layer", "explain_module", "pool_size", "solve_layer",
           "solve_output_padding", "solve_padding"]
