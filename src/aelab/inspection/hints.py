"""What a model's own structure says about its encoder and decoder, read from the object without running it.

The inspector, which holds the model, gathers these hints and hands them to the pure bottleneck
analysis, which checks them against the data path of the trace.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from torch import nn

#: child names that mark an encoder / a decoder: `encoder`, `enc`, `encoder_conv`, `enc1`, `Encoder`, ...
ENCODER_NAME = re.compile(r"^(encoder|enc)(\d+|_\w*)?$", re.IGNORECASE)
DECODER_NAME = re.compile(r"^(decoder|dec)(\d+|_\w*)?$", re.IGNORECASE)


@dataclass(frozen=True)
class ModelHints:
    """Module paths named like an encoder/decoder (shallowest matches), and whether encode()/decode() exist."""

    encoder_modules: tuple[str, ...] = ()
    decoder_modules: tuple[str, ...] = ()
    has_encode: bool = False
    has_decode: bool = False


def _named(model: nn.Module, pattern: re.Pattern[str]) -> tuple[str, ...]:
    """Paths of submodules whose own name matches, at the shallowest depth where any does (not inside a match)."""
    found: list[str] = []
    todo: list[tuple[str, nn.Module]] = [("", model)]
    while todo and not found:
        nxt: list[tuple[str, nn.Module]] = []
        for prefix, module in todo:
            for name, child in module.named_children():
                path = f"{prefix}.{name}" if prefix else name
                if pattern.match(name):
                    found.append(path)
                else:
                    nxt.append((path, child))
        todo = nxt
    return tuple(found)


def _has_method(model: nn.Module, name: str) -> bool:
    return callable(getattr(type(model), name, None))


def collect_hints(model: nn.Module) -> ModelHints:
    """Encoder/decoder child modules and encode/decode methods of `model`; reads attributes only, no forward."""
    return ModelHints(encoder_modules=_named(model, ENCODER_NAME), decoder_modules=_named(model, DECODER_NAME),
                      has_encode=_has_method(model, "encode"), has_decode=_has_method(model, "decode"))
