"""A storage's real values, looked up only when a meta/fake run first reads it (`Shadow.defer`).

A buffer's value costs something to get (a copy of a real buffer, a meta buffer's recovery in
`aelab.trace.materialize`), and most runs never read one, so the shadow asks for it only at the first read of
any tensor on its storage. Then every stand-in deferred on that storage is looked up into one real copy of
the storage, the mirror: their values alias each other as the stand-ins do, and a tensor made outside the
run on the same storage (a view kept as an attribute) is answered from it when the values cover it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


class Deferred:
    """One storage's deferred values: the stand-ins on it not looked up yet, then a real copy of the storage
    (`mirror`, with the elements a value covers marked) that their values and any view of them alias."""

    def __init__(self) -> None:
        self.stand_ins: list[tuple[torch.Tensor, Callable[[], tuple[torch.Tensor, int] | None]]] = []
        self.mirror: torch.Tensor | None = None
        self.covered: torch.Tensor | None = None
        self.taint = 0
        self.unmirrored = False  # a stand-in's dtype or size kept it out: no view is answered
        # in-place ops of scalars on a stand-in before the first read (BatchNorm's `num_batches_tracked += 1`):
        # replayed on its value when it is read, never run when it is not
        self.later: list[tuple[torch.Tensor, Any, tuple[Any, ...], dict[str, Any]]] = []

    def postpone(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        """Keep `func(*args, **kwargs)` for later if it writes one of the stand-ins not looked up yet, in place,
        from scalars only; False (run it now) otherwise."""
        target = args[0] if args else None
        if not isinstance(target, torch.Tensor) or not any(stand is target for stand, _ in self.stand_ins):
            return False
        if any(isinstance(a, torch.Tensor) for a in (*args[1:], *kwargs.values())):
            return False
        self.later.append((target, func, tuple(args[1:]), dict(kwargs)))
        return True

    def replay(self, value_of: Callable[[torch.Tensor], tuple[torch.Tensor, int] | None]) -> bool:
        """Run the postponed writes on the stand-ins' values (`value_of`: (value, taint), None if unknown), in
        order; False when the CPU kernel refuses one (the value is then not known after all)."""
        later, self.later = self.later, []
        for stand, func, rest, kw in later:
            got = value_of(stand)
            if got is None:
                continue
            try:
                func(got[0], *rest, **kw)
            except Exception:
                return False
        return True

    def hold(self, stand: torch.Tensor, value: torch.Tensor, taint: int, max_numel: int) -> torch.Tensor:
        """`value` as stand-in `stand`'s geometry in the mirror (made on first use), or itself if it cannot be."""
        self.taint |= taint
        if self.mirror is None and not self.unmirrored:
            n = stand.untyped_storage().nbytes() // max(stand.element_size(), 1)
            if n <= max_numel:
                self.mirror = torch.zeros(n, dtype=stand.dtype)
                self.covered = torch.zeros(n, dtype=torch.bool)
        if self.mirror is None or self.covered is None or stand.dtype != self.mirror.dtype \
                or tuple(value.shape) != tuple(stand.shape):
            self.unmirrored = True
            return value
        geometry = (tuple(stand.shape), tuple(stand.stride()), stand.storage_offset())
        try:
            place = self.mirror.as_strided(*geometry)
            place.copy_(value)
            self.covered.as_strided(*geometry).fill_(True)
        except RuntimeError:  # outside the storage as the mirror counts it
            self.unmirrored = True
            return value
        return place

    def view(self, t: torch.Tensor) -> tuple[torch.Tensor, int] | None:
        """Another tensor on the storage: its elements of the mirror, if every one of them is known."""
        if self.mirror is None or self.covered is None or self.unmirrored or t.dtype != self.mirror.dtype:
            return None
        geometry = (tuple(t.shape), tuple(t.stride()), t.storage_offset())
        try:
            if not bool(self.covered.as_strided(*geometry).all()):
                return None
            return self.mirror.as_strided(*geometry), self.taint
        except RuntimeError:  # outside the storage as the mirror counts it
            return None
