"""`Distribution.rsample` / `sample` as calls of their own while recording: where a VAE draws its latent."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
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


_SAMPLERS: list[Any] = [(), []]  # [(the classes, their sizes)], [(class, sampler name)]: the last walk's


def _sizes(classes: tuple[type, ...]) -> tuple[int, ...]:
    """Per class, its subclasses and its own attributes, counted: a new subclass or method changes one."""
    return (*map(len, map(type.__subclasses__, classes)), *(len(vars(c)) for c in classes))


def _samplers() -> list[tuple[type, str]]:
    """(class, "rsample"/"sample") for every sampler a Distribution class defines itself. The walk is kept while
    no class of it gained a subclass or an attribute (a count per class, half a walk; it keeps the classes
    alive, so none can go)."""
    classes, sizes = _SAMPLERS[0] if _SAMPLERS[0] else ((), ())
    if not classes or _sizes(classes) != sizes:
        classes = tuple(distribution_classes())
        _SAMPLERS[0] = (classes, _sizes(classes))
        _SAMPLERS[1] = [(cls, meth) for cls in classes for meth in ("rsample", "sample") if meth in cls.__dict__]
    return list(_SAMPLERS[1])


@contextlib.contextmanager
def patched_distributions() -> Iterator[None]:
    patched: list[tuple[type, str, Any]] = []
    validate = torch.distributions.Distribution._validate_args
    # argument validation reads tensor values (`.all()` then `bool`), which fake tensors do not have
    torch.distributions.Distribution.set_default_validate_args(False)
    try:
        for cls, meth in _samplers():
            original = cls.__dict__.get(meth)
            if original is not None:  # (a sampler deleted since the walk: nothing to patch)
                patched.append((cls, meth, original))
                setattr(cls, meth, _wrap_sampler(original, meth))
        yield
    finally:
        for cls, meth, original in reversed(patched):
            setattr(cls, meth, original)
        torch.distributions.Distribution.set_default_validate_args(validate)
