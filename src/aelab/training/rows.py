"""Which rows a run trains, validates and tests on: deterministic in the config's seed."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from aelab.data.records import Dataset
from aelab.errors import UsageError
from aelab.training.config import TrainConfig


@dataclass(frozen=True)
class Rows:
    """Row indices into the dataset for each stage (sorted)."""

    train: Tensor
    val: Tensor
    test: Tensor


def split_rows(ds: Dataset, config: TrainConfig) -> Rows:
    """The data set's train part, narrowed to `normal_class` and `limit`, minus a validation share."""
    train = ds.parts["train"]
    if config.normal_class is not None:
        if ds.y is None:
            raise UsageError(f"--normal-class needs labels, and data '{config.data}' has none")
        train = train[ds.y[train] == config.normal_class]
        if len(train) == 0:
            known = sorted(set(ds.y.tolist()))
            raise UsageError(f"no training rows have label {config.normal_class} (labels: {known})")
    gen = torch.Generator().manual_seed(config.seed)
    if config.limit is not None and config.limit < len(train):
        train = train[torch.randperm(len(train), generator=gen)[: config.limit]].sort().values
    n_val = round(len(train) * config.val_fraction)
    if config.val_fraction > 0 and n_val == 0 and len(train) > 1:
        n_val = 1
    perm = torch.randperm(len(train), generator=gen)
    val, kept = train[perm[:n_val]].sort().values, train[perm[n_val:]].sort().values
    if len(kept) == 0:
        raise UsageError(f"no training rows left (data '{config.data}' has {len(train)} after the filters)")
    return Rows(kept, val, ds.parts["test"])
