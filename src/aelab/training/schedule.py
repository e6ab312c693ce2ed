"""The learning rate as a pure function of the optimizer step, so a resumed run needs no scheduler state."""

from __future__ import annotations

import math


def lr_at(step: int, total_steps: int, base: float, schedule: str, warmup_steps: int = 0) -> float:
    """Learning rate for 0-based `step` of `total_steps`.

    Linear warm-up from base/warmup to base over `warmup_steps`, then
    `constant`: base; `cosine`: base * (1 + cos(pi * p)) / 2 with p the fraction of the
    remaining steps done (base at the start, 0 at the end); `step`: base, ×0.1 from p = 1/2, ×0.01 from 3/4.
    """
    if step < warmup_steps:
        return base * (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    p = min(1.0, (step - warmup_steps) / span)
    if schedule == "cosine":
        return base * 0.5 * (1.0 + math.cos(math.pi * p))
    if schedule == "step":
        return base * (0.01 if p >= 0.75 else 0.1 if p >= 0.5 else 1.0)
    return base
