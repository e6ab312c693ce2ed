"""Parameter types for the numeric options: each refuses what is meaningless, naming the option (exit 2).

click.FloatRange lets NaN and inf through (every comparison with NaN is false), so floats go through
`Finite`; seeds are bounded so every RNG they reach (torch, numpy, Python) takes them.
"""

from __future__ import annotations

import math
from typing import Any

import click

#: seeds torch, numpy and Python all take
SEED_MAX = 2**32 - 1
SEED = click.IntRange(0, SEED_MAX)
#: a count that must be at least one (epochs, rows, samples, sizes)
POSITIVE = click.IntRange(min=1)
#: a count where 0 means "none" or "off"
COUNT = click.IntRange(min=0)
#: any integer torch can hold (a class label)
INT64 = click.IntRange(-(2**63), 2**63 - 1)


class Finite(click.FloatRange):
    """A finite float inside the range."""

    name = "finite float"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        rv = super().convert(value, param, ctx)
        if not math.isfinite(rv):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return rv


POSITIVE_FLOAT = Finite(min=0.0, min_open=True)
NON_NEGATIVE_FLOAT = Finite(min=0.0)
