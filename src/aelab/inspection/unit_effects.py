"""What a unit does to the values it reads: activation, affine map, normalisation, dropout, pooling.

The identity notes (seed 000: "won't `Linear(512, 512)` just learn the identity?") read this: affine layers
compose, a ReLU passes non-negative values, a squashing activation maps into a bounded range.
"""

from __future__ import annotations

from dataclasses import dataclass

from aelab.inspection.dataflow import Unit


@dataclass(frozen=True)
class Act:
    """An activation: 'relu' (passes positive values unchanged), 'smooth' (close to x for large positive
    inputs, never equal), or 'squash' (maps every value into a bounded range)."""

    kind: str
    range: str
    nonneg: bool  # every output is >= 0


ACTIVATIONS: dict[str, Act] = {
    "relu": Act("relu", "[0, inf)", True),
    "leakyrelu": Act("relu", "(-inf, inf)", False),
    "leaky_relu": Act("relu", "(-inf, inf)", False),
    "prelu": Act("relu", "(-inf, inf)", False),
    "rrelu": Act("relu", "(-inf, inf)", False),
    "elu": Act("relu", "(-1, inf)", False),
    "celu": Act("relu", "(-1, inf)", False),
    "selu": Act("relu", "(-1.76, inf)", False),  # 1.0507 x for x > 0: a scale the next layer can undo
    "gelu": Act("smooth", "(-0.17, inf)", False),
    "silu": Act("smooth", "(-0.28, inf)", False),
    "mish": Act("smooth", "(-0.31, inf)", False),
    "softplus": Act("smooth", "(0, inf)", True),
    "hardswish": Act("smooth", "[-0.375, inf)", False),
    "sigmoid": Act("squash", "(0, 1)", True),
    "hardsigmoid": Act("squash", "[0, 1]", True),
    "tanh": Act("squash", "(-1, 1)", False),
    "hardtanh": Act("squash", "[-1, 1]", False),
    "softsign": Act("squash", "(-1, 1)", False),
    "relu6": Act("squash", "[0, 6]", True),
    "softmax": Act("squash", "(0, 1), summing to 1", True),
    "log_softmax": Act("squash", "(-inf, 0], log-probabilities", False),
    "logsoftmax": Act("squash", "(-inf, 0], log-probabilities", False),
    "logsigmoid": Act("squash", "(-inf, 0)", False),
    "lstm": Act("squash", "(-1, 1) (its output passes through tanh)", False),
    "gru": Act("squash", "(-1, 1) (its state passes through tanh)", False),
    "rnn": Act("squash", "(-1, 1) (its state passes through tanh)", False),
}
#: affine maps of their input (weights, padding, pooling by averaging)
AFFINE = frozenset({"linear", "conv1d", "conv2d", "conv3d", "convtranspose1d", "convtranspose2d", "convtranspose3d",
                    "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "pad", "constantpad1d",
                    "constantpad2d", "zeropad1d", "zeropad2d", "lazylinear", "identity", "add", "sub", "cat"})
#: affine once the statistics are fixed (eval mode); in training they use the batch's statistics
NORMS = frozenset({"batchnorm1d", "batchnorm2d", "batchnorm3d", "batch_norm", "layernorm", "layer_norm", "groupnorm",
                   "group_norm", "instancenorm1d", "instancenorm2d", "instancenorm3d", "instance_norm", "rmsnorm",
                   "rms_norm"})
#: the identity at inference; random zeros (scaled) in training
DROPOUTS = frozenset({"dropout", "dropout1d", "dropout2d", "dropout3d", "alphadropout", "featurealphadropout",
                      "alpha_dropout"})


#: keep the sign of what they read: a pool of non-negative values is non-negative
POOLS = frozenset({"maxpool1d", "maxpool2d", "maxpool3d", "avgpool1d", "avgpool2d", "avgpool3d", "max_pool1d",
                   "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d", "adaptiveavgpool1d",
                   "adaptiveavgpool2d", "adaptiveavgpool3d", "adaptivemaxpool1d", "adaptivemaxpool2d",
                   "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool2d"})


def classify(unit: Unit) -> Act | str:
    """An `Act`, or 'affine' | 'norm' | 'dropout' | 'move' | 'other'; custom modules by what they call."""
    names = (unit.base,) if unit.base in ACTIVATIONS or not unit.children else (unit.base, *unit.children)
    for name in names:
        if name in ACTIVATIONS:
            return ACTIVATIONS[name]
    if unit.base in NORMS:
        return "norm"
    if unit.base in DROPOUTS:
        return "dropout"
    if unit.is_move:
        return "move"
    if unit.base in AFFINE or (unit.children and all(c in AFFINE or c in NORMS for c in unit.children)):
        return "affine"
    return "other"
