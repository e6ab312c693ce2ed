"""Load what the user named: model specs ("file.py:Name", "pkg.mod:Name"), their kwargs and --input shapes.

Every parse error is a `UsageError` with one sentence that says what was wrong and what is expected.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import importlib.util
import inspect
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from aelab.errors import AelabError, UsageError
from aelab.io import user_code
from aelab.trace.build import construct
from aelab.trace.inputs import InputSpec, parse_shape


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
            with user_code("imported"):
                spec.loader.exec_module(module)
        except AelabError:
            del sys.modules[mod_name]
            raise
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
        with user_code("constructed"):
            model = construct(factory, kwargs, device)  # on meta: buffer values kept; refusing meta: CPU
    except AelabError:
        raise
    except Exception as exc:
        raise UsageError(f"constructing {spec} raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(model, nn.Module):
        raise UsageError(f"{spec} returned {type(model).__name__}, not a torch.nn.Module")
    return model


@dataclass
class LoadedModel:
    """A model built from SPEC and --arg, and its --input shapes split into positional and keyword."""

    model: nn.Module
    name: str
    positional: list[InputSpec]
    keyword: dict[str, InputSpec] = field(default_factory=dict)
    spec: ModelSpec | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)

    def rebuild(self, device: str) -> nn.Module:
        """The same model constructed again on `device` (e.g. real weights for timing)."""
        assert self.spec is not None
        return build_model(self.spec, self.kwargs, device=device)


def load_model(spec: str, inputs: tuple[str, ...], args: tuple[str, ...], device: str = "meta") -> LoadedModel:
    """Parse inputs first (cheap, and their errors are the commonest), then build the model on `device`."""
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available here (use meta or cpu)")
    specs = [parse_shape(s) for s in inputs]
    model_spec = parse_model_spec(spec)
    kwargs = parse_kwargs(args)
    model = build_model(model_spec, kwargs, device=device)
    return LoadedModel(model, model_spec.name, [s for s in specs if s.name is None],
                       {str(s.name): s for s in specs if s.name is not None}, model_spec, kwargs)
