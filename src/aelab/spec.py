"""Parse what the user typed: model specs ("file.py:Name", "pkg.mod:Name"), shapes, dtypes, kwargs.

Every parse error is a `UsageError` with one sentence that says what was wrong and what is expected.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import importlib.util
import inspect
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from aelab.errors import UsageError

#: dtype names accepted after a colon in a shape ("1x10:long").
DTYPES: dict[str, torch.dtype] = {
    "float": torch.float32, "float32": torch.float32, "f32": torch.float32,
    "double": torch.float64, "float64": torch.float64, "f64": torch.float64,
    "half": torch.float16, "float16": torch.float16, "f16": torch.float16,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
    "long": torch.int64, "int64": torch.int64, "int": torch.int32, "int32": torch.int32,
    "int16": torch.int16, "int8": torch.int8, "uint8": torch.uint8, "bool": torch.bool,
}


@dataclass(frozen=True)
class InputSpec:
    """One model input: its shape, dtype and, for keyword inputs, its name."""

    shape: tuple[int, ...]
    dtype: torch.dtype = torch.float32
    name: str | None = None

    def __str__(self) -> str:
        text = "x".join(str(d) for d in self.shape)
        if self.dtype != torch.float32:
            text += f":{str(self.dtype).removeprefix('torch.')}"
        return f"{self.name}={text}" if self.name else text


_SHAPE_RE = re.compile(r"^\s*\d+(\s*[x×,*]\s*\d+)*\s*$")


def parse_shape(text: str) -> InputSpec:
    """Parse `1x28x28`, `8,100,201`, `4x16:long` or `mask=4x16:bool` into an InputSpec."""
    raw = text
    name: str | None = None
    if "=" in text:
        name, text = text.split("=", 1)
        name = name.strip()
        if not name.isidentifier():
            raise UsageError(f"input {raw!r}: {name!r} is not a valid keyword name")
    dtype = torch.float32
    if ":" in text:
        text, dtype_name = text.rsplit(":", 1)
        key = dtype_name.strip().lower().removeprefix("torch.")
        if key not in DTYPES:
            known = ", ".join(sorted({"float", "double", "half", "bf16", "long", "int", "bool", "uint8"}))
            raise UsageError(f"input {raw!r}: unknown dtype {dtype_name!r} (known: {known})")
        dtype = DTYPES[key]
    if not _SHAPE_RE.match(text):
        raise UsageError(
            f"input {raw!r} is not a shape: write sizes joined by 'x' or ',', e.g. 1x28x28 or 8,100,201"
        )
    dims = tuple(int(d) for d in re.split(r"[x×,*]", text.replace(" ", "")))
    if any(d <= 0 for d in dims):
        raise UsageError(f"input {raw!r}: every size must be at least 1")
    return InputSpec(dims, dtype, name)


def parse_kwargs(items: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """Parse `k=v` pairs; v is a Python literal (`3`, `[64, 32]`, `'relu'`), else kept as a string."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise UsageError(f"argument {item!r} must look like name=value")
        key, value = item.split("=", 1)
        key = key.strip()
        if not key.isidentifier():
            raise UsageError(f"argument {item!r}: {key!r} is not a valid argument name")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


@dataclass(frozen=True)
class ModelSpec:
    """Where a model comes from: a module (file or dotted path) and a name in it."""

    source: str
    name: str

    def __str__(self) -> str:
        return f"{self.source}:{self.name}"


def parse_model_spec(text: str) -> ModelSpec:
    """Split `path/to/file.py:Name` or `pkg.mod:Name`; the name may be dotted (`Outer.Inner`)."""
    if ":" not in text:
        raise UsageError(f"model {text!r}: write FILE.py:NAME or package.module:NAME")
    source, name = text.rsplit(":", 1)
    if not source or not name:
        raise UsageError(f"model {text!r}: write FILE.py:NAME or package.module:NAME")
    return ModelSpec(source, name)


def _load_module(source: str) -> Any:
    if source.endswith(".py") or "/" in source or "\\" in source:
        path = Path(source)
        if not path.is_file():
            raise UsageError(f"no such file: {source}")
        mod_name = f"_aelab_user_{abs(hash(str(path.resolve())))}"
        if mod_name in sys.modules:
            return sys.modules[mod_name]
        spec = importlib.util.spec_from_file_location(mod_name, path)
        if spec is None or spec.loader is None:
            raise UsageError(f"cannot import {source}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[mod_name] = module
        sys.path.insert(0, str(path.parent.resolve()))
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[mod_name]
            raise UsageError(f"importing {source} failed: {type(exc).__name__}: {exc}") from exc
        finally:
            with contextlib.suppress(ValueError):
                sys.path.remove(str(path.parent.resolve()))
        return module
    try:
        return importlib.import_module(source)
    except ModuleNotFoundError as exc:
        raise UsageError(f"no module named {source!r} ({exc})") from exc
    except Exception as exc:
        raise UsageError(f"importing {source} failed: {type(exc).__name__}: {exc}") from exc


def resolve(spec: ModelSpec) -> Any:
    """The object a spec names (a class or a factory function)."""
    obj = _load_module(spec.source)
    for part in spec.name.split("."):
        if not hasattr(obj, part):
            raise UsageError(f"{spec.source} has no {spec.name!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise UsageError(f"{spec} is not a class or a function")
    return obj


@contextlib.contextmanager
def _maybe_device(device: str | None) -> Iterator[None]:
    if device is None:
        yield
    else:
        with torch.device(device):
            yield


def build_model(spec: ModelSpec, kwargs: dict[str, Any] | None = None, device: str | None = "meta") -> nn.Module:
    """Construct the named model, by default under `torch.device("meta")` so no weights are allocated."""
    factory = resolve(spec)
    kwargs = kwargs or {}
    try:
        inspect.signature(factory).bind(**kwargs)
    except TypeError as exc:
        raise UsageError(f"{spec}: {exc}") from exc
    except ValueError:
        pass  # builtins without a signature: let the call decide
    try:
        with _maybe_device(device):
            model = factory(**kwargs)
    except UsageError:
        raise
    except Exception as exc:
        raise UsageError(f"constructing {spec} raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(model, nn.Module):
        raise UsageError(f"{spec} returned {type(model).__name__}, not a torch.nn.Module")
    return model
