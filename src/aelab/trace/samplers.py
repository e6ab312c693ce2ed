"""`Distribution.rsample` / `sample` as calls of their own while recording: where a VAE draws its latent."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any

import torch

from aelab.trace.state import active


def distribution_classes() -> list[type]:
    """Distribution and every subclass defined so far (samplers are patched on each one that has its own)."""
    todo: list[type] = [torch.distributions.Distribution]
    seen: dict[type, None] = {}
    while todo:
        cls = todo.pop()
        seen[cls] = None
        subclasses: list[type] = cls.__subclasses__()
        todo.extend(sub for sub in subclasses if sub not in seen)
    return list(seen)


@functools.lru_cache(maxsize=1024)
def _wrap_sampler(method: Any, method_name: str) -> Any:
    """The recording wrapper of one sampler (made once per function: a run patches ~40 of them)."""
    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        st = active()
        if st is None or st.phase != "forward" or st.suppress_functions:
            return method(self, *args, **kwargs)
        type_ = f"{type(self).__name__}.{method_name}"
        return st.record_call("sample", method_name, type_, self, method, (self, *args), kwargs, opaque=True)

    return wrapper


_WALK: tuple[tuple[type, ...], tuple[int, ...], tuple[tuple[type, str], ...]] | None = None  # the last walk's


def _sizes(classes: tuple[type, ...]) -> tuple[int, ...]:
    """Per class, its subclasses and its own attributes, counted: a new subclass or method changes one."""
    return (*map(len, map(type.__subclasses__, classes)), *(len(vars(c)) for c in classes))


def _samplers() -> tuple[tuple[type, str], ...]:
    """(class, "rsample"/"sample") for every sampler a Distribution class defines itself. The walk is kept while
    no class of it gained a subclass or an attribute (a count per class, half a walk; it keeps the classes
    alive, so none can go)."""
    global _WALK
    if _WALK is None or _sizes(_WALK[0]) != _WALK[1]:
        classes = tuple(distribution_classes())
        _WALK = (classes, _sizes(classes),
                 tuple((cls, meth) for cls in classes for meth in ("rsample", "sample") if meth in cls.__dict__))
    return _WALK[2]


@contextlib.contextmanager
def patched_samplers(wrap: Callable[[Any, str], Any]) -> Iterator[None]:
    """Within the block, every Distribution sampler is `wrap(original, "rsample"/"sample")`; put back on exit.
    The recorder's samples and `trace.capture`'s both patch here."""
    patched: list[tuple[type, str, Any]] = []
    try:
        for cls, meth in _samplers():
            original = cls.__dict__.get(meth)
            if original is not None:  # (a sampler deleted since the walk: nothing to patch)
                patched.append((cls, meth, original))
                setattr(cls, meth, wrap(original, meth))
        yield
    finally:
        for cls, meth, original in reversed(patched):
            setattr(cls, meth, original)


@contextlib.contextmanager
def patched_distributions() -> Iterator[None]:
    validate = torch.distributions.Distribution._validate_args
    # argument validation reads tensor values (`.all()` then `bool`), which fake tensors do not have
    torch.distributions.Distribution.set_default_validate_args(False)
    try:
        with patched_samplers(_wrap_sampler):
            yield
    finally:
        torch.distributions.Distribution.set_default_validate_args(validate)
