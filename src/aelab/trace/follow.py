"""Shadow values as a dispatch mode of their own, for a run outside the recorder (autograd's graph)."""

from __future__ import annotations

from typing import Any

from aelab.trace.modes import DispatchMode
from aelab.trace.probe import probed_or_raise
from aelab.trace.shadow import NOTHING, Shadow, _kind

_INDEXING = frozenset({"index", "index_put", "index_put_", "_index_put_impl_"})


class Follow(DispatchMode):
    """A `Shadow` as a dispatch mode of its own, for a run outside the recorder (autograd's graph for
    `aelab cost --graph`): reads of known values are answered, everything else runs as it would."""

    def __init__(self, known: Any = ()) -> None:
        super().__init__()
        self.shadow = Shadow()
        for t, value, taint in known:
            self.shadow.set(t, value, taint)

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if func.overloadpacket.__name__ in _INDEXING:
            args = self.shadow.masks_to_indices(args)
        if _kind(func)[0]:
            out = self.shadow.answer(func, args, kwargs, "")
            if out is not NOTHING:
                return out
        pre = self.shadow.before(func, args, kwargs)
        try:
            out = func(*args, **kwargs)
        except Exception as exc:  # a meta/fake kernel stricter than the CPU one: its output shapes (`trace.probe`)
            return probed_or_raise(self.shadow, func, args, kwargs, exc)
        self.shadow.after(func, args, kwargs, out, pre)
        return out

    def __enter__(self) -> Follow:
        self.shadow.writes.active = True
        return super().__enter__()

    def __exit__(self, *exc: object) -> None:
        try:
            super().__exit__(*exc)
        finally:
            self.shadow.writes.restore()
