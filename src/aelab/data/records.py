"""The records passed between data loading, training and evaluation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

CHUNK_ROWS = 65_536  # rows read at a time from a (memory-mapped) array, so it is never copied whole


@dataclass
class Dataset:
    """Rows of one data set, in memory or memory-mapped, with labels and a train/test split.

    `x` holds every row, shape (N, *sample_shape); it may be a memory-mapped tensor of any dtype
    (then `Normalizer` and the batcher turn batches into float32). `parts` maps "train" and
    "test" to row indices into `x`; rows left out (bad rows skipped by the user) are in neither.
    """

    name: str
    x: Tensor
    y: Tensor | None
    parts: dict[str, Tensor]
    kind: str  # "image", "table" or "spectrogram"
    unit_interval: bool  # every value lies in [0, 1]: BCE and a bernoulli likelihood make sense
    class_names: tuple[str, ...] | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    def rows(self, part: str) -> Tensor:
        """Row indices of a part ("train", "test" or "all")."""
        if part == "all":
            return torch.cat([self.parts["train"], self.parts["test"]]).sort().values
        return self.parts[part]


@dataclass(frozen=True)
class Normalizer:
    """An affine map applied per feature before the model sees the data: (x - shift) / scale."""

    mode: str  # "none", "zscore" or "minmax"
    shift: tuple[float, ...] = ()
    scale: tuple[float, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "shift": list(self.shift), "scale": list(self.scale)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Normalizer:
        return cls(str(d["mode"]), tuple(float(v) for v in d["shift"]), tuple(float(v) for v in d["scale"]))

    @property
    def identity(self) -> bool:
        return self.mode == "none"

    def apply(self, batch: Tensor) -> Tensor:
        """Float32 copy of `batch` (N, *shape), normalised over its last feature axis."""
        out = batch.to(torch.float32)
        if self.identity:
            return out
        shift = torch.tensor(self.shift, dtype=torch.float32, device=out.device)
        scale = torch.tensor(self.scale, dtype=torch.float32, device=out.device)
        return (out - shift) / scale


NO_NORMALIZER = Normalizer("none")
