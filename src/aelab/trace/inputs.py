"""What a model is fed: an input's shape, dtype and keyword name, and the text form `1x28x28:long` users type.

Every parse error is a `UsageError` with one sentence that says what was wrong and what is expected.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch

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
    if math.prod(dims) > 2**63 - 1:  # torch counts elements in int64
        raise UsageError(f"input {raw!r}: {math.prod(dims):,} elements do not fit in int64; give smaller sizes")
    return InputSpec(dims, dtype, name)


def synthetic_input(shape: tuple[int, ...], dtype: torch.dtype, name: str | None, index: int) -> torch.Tensor:
    """The values an input given only as a shape stands for, on CPU, the same in every mode.

    Integers are 0 (valid ids, token types, labels); a keyword input whose name says mask, and booleans, are
    1 (attend everywhere: no padding); floats are a seeded standard normal draw. The global RNG is untouched.
    """
    if dtype == torch.bool or (name is not None and "mask" in name.lower()):
        return torch.ones(shape, dtype=dtype)
    if dtype.is_floating_point or dtype.is_complex:
        gen = torch.Generator().manual_seed(1234 + index)
        return torch.randn(shape, generator=gen).to(dtype)
    return torch.zeros(shape, dtype=dtype)
