"""The base of aelab's dispatch modes: torch's, without the per-op `torch._disable_dynamo` wrapper.

`TorchDispatchMode.__init_subclass__` wraps every subclass's `__torch_dispatch__` in
`torch._disable_dynamo`, whose first call imports `torch._dynamo` (and sympy): 2-3 s of an
`aelab inspect` from a shell, more than the rest of the run, plus a frame-callback swap per op. The
wrapper only matters under `torch.compile`, which never runs inside a recording, so our modes opt out.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import torch
from torch.utils._python_dispatch import TorchDispatchMode, _disable_current_modes


class DispatchMode(TorchDispatchMode):
    """A `TorchDispatchMode` whose `__torch_dispatch__` is called as written."""

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        return False


@contextlib.contextmanager
def fake_kernel_log_off() -> Iterator[None]:
    """FakeTensorMode logs a traceback whenever a kernel raises; we report the error (or retry the op on the CPU
    kernel) ourselves. A handler that keeps records (pytest's) would also keep the failing kernel's frames, and
    their tensors, alive: a training step's storages died late and its predicted peak rose by half.
    (`disabled`, not `setLevel`: that clears the cache of every logger in the process, twice per run.)"""
    log = logging.getLogger("torch._subclasses.fake_tensor")
    was = log.disabled
    log.disabled = True
    try:
        yield
    finally:
        log.disabled = was


def saved_alias(t: torch.Tensor) -> torch.Tensor:
    """What a `saved_tensors_hooks` pack hook hands autograd to keep: `t` detached, an alias of its storage
    without its `grad_fn`. Returning `t` itself closes a cycle (its node keeps the packed tensor, which keeps
    its node) that Python's collector cannot see through: a subgraph no loss reaches (an encoder cut off by
    `.byte()`, AutoencoderTiny's latent quantisation) then kept its saved tensors for good, where a real run
    frees them when the forward returns. Made outside every mode: it is no op of the program's. A tensor without
    a `grad_fn` (an input, a parameter) closes no cycle and is handed on as it is (the alias costs ~6 µs)."""
    if t.grad_fn is None:
        return t
    with _disable_current_modes(), torch._C.DisableTorchFunction():
        return t.detach()
