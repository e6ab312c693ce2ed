"""Cyclic garbage collection paused while a trace is recorded and analysed.

A run allocates records by the thousand (an op, its tensors, a call) and the analyses as many again;
each generation-2 pass of the collector walks all of them, which cost 20-30% of an `inspect` of a
large model and made its time jump between runs. Reference counting still frees everything; the
collector runs again afterwards.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic GC inside the block (nested blocks are fine); the previous state afterwards."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
