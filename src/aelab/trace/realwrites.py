"""The real tensors a meta/fake run writes in place: written once, and put back when the run ends.

A meta or fake run still meets real tensors the program holds outside the model: a module-level counter
(`STEPS.add_(1)`), a CPU cache, a legacy `torch.Tensor` made under the meta device. An in-place op on
them may run for real (every argument real: the CPU kernel runs, even under FakeTensorMode), or on a fake
copy. `Shadow.after` must not apply the op a second time where the kernel already wrote the tensor (the
counter would count 2 per forward, and the shapes it steers would be wrong), so `Shadow.before` keeps a
copy of their storage and `written` compares the bytes: version counters cannot tell, they are bumped
only after the dispatch mode returns. (An op that left the bytes as they were is idempotent on them:
applying it again changes nothing.) And an analysis is not the user's forward: `aelab cost` runs the forward twice, and
each run must start from the state the user left, so the storages written are saved before the first
write and restored at the end (`RealWrites.restore`), as the model's own tensors are.
"""

from __future__ import annotations

import torch
from torch.utils._python_dispatch import _disable_current_modes


def storage_key(t: torch.Tensor) -> int:
    """One key per storage: views and `.data` of a tensor share it."""
    try:
        return int(t.untyped_storage()._cdata)
    except Exception:  # a tensor without storage (sparse, nested): only itself
        return id(t)


def snapshot(t: torch.Tensor) -> torch.UntypedStorage | None:
    """A copy of `t`'s whole storage (a write through a view lands there too); None without one."""
    with _disable_current_modes(), torch._C.DisableTorchFunction(), torch.no_grad():
        try:
            return t.untyped_storage().clone()
        except Exception:
            return None


def written(t: torch.Tensor, before: torch.UntypedStorage) -> bool:
    """Whether `t`'s storage holds other bytes than `before` (a NaN compares equal to itself here)."""
    with _disable_current_modes(), torch._C.DisableTorchFunction(), torch.no_grad():
        now = t.untyped_storage()
        if now.nbytes() != before.nbytes():
            return True
        return not torch.equal(_bytes(now), _bytes(before))


def _bytes(s: torch.UntypedStorage) -> torch.Tensor:
    return torch.empty(0, dtype=torch.uint8, device=s.device).set_(s)


class RealWrites:
    """The storages of real tensors a run writes in place, as they were before its first write to each.

    Only when `active` (a meta/fake run: a real run writes what the user's forward would, and saving every
    activation an in-place ReLU writes would double its memory). Storages the run made itself (`made`)
    are not saved: nobody outside the run holds them.
    """

    def __init__(self) -> None:
        self.active = False
        self._saved: dict[int, tuple[torch.Tensor, torch.UntypedStorage]] = {}
        self._made: set[int] = set()

    def made(self, t: torch.Tensor) -> None:
        """`t` is a new real tensor an op of this run returned (not a view, not an in-place result)."""
        if self.active:
            self._made.add(storage_key(t))

    def save(self, t: torch.Tensor, contents: torch.UntypedStorage | None = None) -> None:
        """`t` is about to be written in place: its storage's contents (`contents`, else a `snapshot` now)
        are kept, once per storage."""
        if self.active:
            key = storage_key(t)
            if key not in self._saved and key not in self._made:
                contents = contents if contents is not None else snapshot(t)
                if contents is not None:
                    self._saved[key] = (t, contents)

    def restore(self) -> None:
        """Put back every storage saved; the run's own tensors are no longer wanted."""
        self._made.clear()
        if not self._saved:
            return
        saved, self._saved = self._saved, {}
        with _disable_current_modes(), torch._C.DisableTorchFunction(), torch.no_grad():
            for t, contents in saved.values():
                t.untyped_storage().copy_(contents)
