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


@contextlib.contextmanager
def patched_distributions() -> Iterator[None]:
    patched: list[tuple[type, str, Any]] = []
    validate = torch.distributions.Distribution._validate_args
    # argument validation reads tensor values (`.all()` then `bool`), which fake tensors do not have
    torch.distributions.Distribution.set_default_validate_args(False)
    try:
        for cls in distribution_classes():
            for meth in ("rsample", "sample"):
                if meth in cls.__dict__:
                    original = cls.__dict__[meth]
                    patched.append((cls, meth, original))
                    setattr(cls, meth, _wrap_sampler(original, meth))
        yield
    finally:
        for cls, meth, original in reversed(patched):
            setattr(cls, meth, original)
        torch.distributions.Distribution.set_default_validate_args(validate)
