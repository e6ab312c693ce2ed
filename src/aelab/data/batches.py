"""Batches served from a tensor already on the training device: one gather per batch, no collate.

A tutorial `DataLoader` builds every batch from single samples in Python; here the rows are moved
to the device once and each batch is `x[perm[i:i + B]]`. Shuffling draws from a dedicated CPU
`torch.Generator`, so the order is the same on every device and its state can be checkpointed.
When the rows do not fit the device (a memory-mapped file larger than memory), batches are read
from the file in sorted row order and moved over one at a time instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor

from aelab.data.records import CHUNK_ROWS, NO_NORMALIZER, Dataset, Normalizer


def available_bytes(device: torch.device) -> int:
    """Memory free for data on `device`: free GPU memory, or available RAM on the CPU."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 1 << 62


def resident_rows(ds: Dataset, rows: Tensor, normalizer: Normalizer, device: torch.device,
                  budget_fraction: float = 0.5) -> Tensor | None:
    """`ds.x[rows]` normalised, float32, on `device`; None when it would take over half the free memory."""
    need = len(rows) * int(np.prod(ds.sample_shape, dtype=np.int64)) * 4
    if need > budget_fraction * available_bytes(device):
        return None
    if len(rows) == len(ds.x) and bool((rows == torch.arange(len(ds.x))).all()):
        picked = ds.x
    else:
        picked = torch.cat([ds.x[rows[s:s + CHUNK_ROWS]] for s in range(0, len(rows), CHUNK_ROWS)])
    return normalizer.apply(picked.to(device)).contiguous()


class DeviceBatches:
    """Iterate over shuffled batches of rows; each rank of a distributed run gets its slice of each batch.

    `stream=True` reads every batch from `ds.x` (the path taken automatically when the rows do not fit).
    """

    def __init__(self, ds: Dataset, rows: Tensor, batch_size: int, device: torch.device,
                 normalizer: Normalizer = NO_NORMALIZER, generator: torch.Generator | None = None,
                 rank: int = 0, world: int = 1, stream: bool = False):
        self.ds, self.rows, self.batch_size = ds, rows, batch_size
        self.device, self.normalizer, self.generator = device, normalizer, generator
        self.rank, self.world = rank, world
        self.data = None if stream else resident_rows(ds, rows, normalizer, device)

    @property
    def streaming(self) -> bool:
        """True when batches are read from (memory-mapped) storage rather than a device tensor."""
        return self.data is None

    def __len__(self) -> int:
        n = len(self.rows)
        full, rest = divmod(n, self.batch_size)
        return full + (1 if rest >= self.world else 0)

    def order(self) -> Tensor:
        """Positions 0..n-1 in this epoch's order (draws from the generator when shuffling)."""
        n = len(self.rows)
        if self.generator is None:
            return torch.arange(n)
        return torch.randperm(n, generator=self.generator)

    def __iter__(self) -> Iterator[Tensor]:
        order = self.order()
        if self.data is not None:
            order = order.to(self.device, non_blocking=True)
        for b in range(len(self)):
            pos = order[b * self.batch_size:(b + 1) * self.batch_size]
            if self.world > 1:
                pos = pos.tensor_split(self.world)[self.rank]
            yield self._gather(pos)

    def _gather(self, pos: Tensor) -> Tensor:
        if self.data is not None:
            return self.data[pos]
        rows = self.rows[pos].sort().values  # sorted reads are sequential on a memory-mapped file
        batch = self.normalizer.apply(self.ds.x[rows])
        return batch.pin_memory().to(self.device, non_blocking=True) if self.device.type == "cuda" else batch
