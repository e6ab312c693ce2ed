"""What every model verb does the same way: load the model and inputs it was given, write its output."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from aelab.errors import UsageError
from aelab.spec import InputSpec, ModelSpec, build_model, parse_kwargs, parse_model_spec, parse_shape
from aelab.train.checkpoint import atomic_write


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


def write_output(text: str, out: str | None) -> None:
    """Print, or write `out` atomically (the checkpoints' write-fsync-rename); one clear line if it cannot."""
    if not text.endswith("\n"):
        text += "\n"
    if out is None:
        sys.stdout.write(text)
        return
    try:
        atomic_write(Path(out), text.encode("utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc.strerror or exc}") from exc
