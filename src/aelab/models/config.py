"""Typed configs for the autoencoder kinds and the checks that turn user options into them.

A config is a frozen dataclass; each option is a field declared with `option(default, check, help)`.
`make_config` rejects unknown options (naming the known ones), runs each field's check (which also
normalises, e.g. a single int to a one-element tuple) and returns the config. Every problem is a
`ValueError` with one sentence that says what to change.
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

import numpy as np

from aelab.models.blocks import ACTIVATIONS
from aelab.models.likelihood import LIKELIHOODS

Check = Callable[[str, Any], Any]
C = TypeVar("C", bound="AEConfig")


def option(default: Any, check: Check, help: str) -> Any:
    """Declare a config option: its default, the check that validates/normalises it, one line of help."""
    return field(default=default, metadata={"check": check, "help": help})


def _is_int(value: Any) -> bool:
    """Python and NumPy integers; not bools (True is not a size)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)


def positive_int(name: str, value: Any) -> int:
    if not _is_int(value) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def non_negative_float(name: str, value: Any) -> float:
    is_number = isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)
    if not is_number or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a number >= 0, got {value!r}")
    return float(value)


def int_list(min_len: int) -> Check:
    """A list of positive ints (a single int is a one-element list), at least `min_len` long."""

    def check(name: str, value: Any) -> tuple[int, ...]:
        items = [value] if _is_int(value) else value
        if not isinstance(items, list | tuple) or not all(_is_int(v) and v > 0 for v in items):
            raise ValueError(f"{name} must be a list of positive integers, e.g. {name}=[64, 32]; got {value!r}")
        if len(items) < min_len:
            raise ValueError(f"{name} needs at least {min_len} entr{'y' if min_len == 1 else 'ies'}, got {value!r}")
        return tuple(int(v) for v in items)

    return check


def int_or_int_list(name: str, value: Any) -> int | tuple[int, ...]:
    """One positive int for every stage, or a list with one per stage."""
    if _is_int(value):
        return positive_int(name, value)
    return int_list(1)(name, value)


def choice(registry: Mapping[str, Any]) -> Check:
    """A name that must be a key of `registry`."""

    def check(name: str, value: Any) -> str:
        if not isinstance(value, str) or value not in registry:
            raise ValueError(f"{name} must be one of {', '.join(sorted(registry))}; got {value!r}")
        return value

    return check


def dilation_check(name: str, value: Any) -> int | str:
    """A positive int used by every layer, or 'exponential' for 1, 2, 4, ... layer by layer."""
    if value == "exponential":
        return "exponential"
    if not _is_int(value) or value <= 0:
        raise ValueError(f"{name} must be a positive integer or 'exponential', got {value!r}")
    return int(value)


def shape_check(name: str, value: Any) -> tuple[int, ...]:
    items = (value,) if _is_int(value) else value
    if not isinstance(items, list | tuple) or not items or not all(_is_int(v) and v > 0 for v in items):
        raise ValueError(f"{name} must be a non-empty list of positive sizes without the batch dimension, "
                         f"e.g. (1, 28, 28); got {value!r}")
    return tuple(int(v) for v in items)


ACTIVATION = choice(ACTIVATIONS)
LIKELIHOOD = choice(LIKELIHOODS)


@dataclass(frozen=True)
class AEConfig:
    """Options every kind accepts: the input shape, the latent size, denoising and sparsity."""

    input_shape: tuple[int, ...] = option((), shape_check, "per-sample input shape, without the batch dim")
    latent: int = option(0, positive_int, "size of the code z (per time step for seqvae)")
    noise: float = option(0.0, non_negative_float, "denoising: std of Gaussian noise added to inputs in training")
    sparsity: float = option(0.0, non_negative_float, "sparse AE: weight of the L1 penalty on the latent")

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable (tuples become lists); input_shape and latent first, then the options."""
        names = ["input_shape", "latent", *(f.name for f in fields(self) if f.name not in ("input_shape", "latent"))]
        return {name: _jsonable(getattr(self, name)) for name in names}


@dataclass(frozen=True)
class VAEOptions:
    """Mixed into VAE configs: the KL weight (beta-VAE when != 1)."""

    beta: float = option(1.0, non_negative_float, "weight of the KL term (beta-VAE); 1 gives the ELBO")


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def option_names(cls: type[AEConfig]) -> list[str]:
    """The options a user may set (everything but input_shape and latent), sorted."""
    return sorted(f.name for f in fields(cls) if f.name not in ("input_shape", "latent"))


def option_help(cls: type[AEConfig]) -> dict[str, tuple[Any, str]]:
    """option name -> (default, help line), for --help and the docs."""
    return {f.name: (f.default, f.metadata.get("help", "")) for f in fields(cls)
            if f.name not in ("input_shape", "latent")}


def make_config(cls: type[C], kind: str, input_shape: Any, latent: Any, options: Mapping[str, Any]) -> C:
    """Validate and normalise everything the user gave for `kind` into its config class."""
    known = option_names(cls)
    for key in options:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown option {key!r} for kind {kind!r}{hint}; known options: {', '.join(known)}")
    values: dict[str, Any] = {"input_shape": input_shape, "latent": latent, **options}
    checked: dict[str, Any] = {}
    for f in fields(cls):
        if f.name in values:
            check: Check = f.metadata["check"]
            checked[f.name] = check(f.name, values[f.name])
    return cls(**checked)
