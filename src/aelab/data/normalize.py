"""Fit the per-feature normalisation a run applies to its data (from training rows only)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from aelab.data.records import CHUNK_ROWS, NO_NORMALIZER, Dataset, Normalizer
from aelab.errors import UsageError

MODES = ("auto", "none", "zscore", "minmax")


def fit_normalizer(ds: Dataset, rows: Tensor, mode: str = "auto") -> Normalizer:
    """`auto` is z-scores for tables not already in [0, 1], nothing otherwise.

    Tables (one axis per sample) get one shift and scale per column; other shapes one for all values.
    A constant column gets scale 1 so it maps to 0 rather than to NaN.
    """
    if mode not in MODES:
        raise UsageError(f"unknown normalisation {mode!r} (use {', '.join(MODES)})")
    if mode == "auto":
        mode = "zscore" if ds.kind == "table" and not ds.unit_interval else "none"
    if mode == "none":
        return NO_NORMALIZER
    per_column = len(ds.sample_shape) == 1
    width = ds.sample_shape[0] if per_column else 1
    count, total, total_sq = 0, np.zeros(width), np.zeros(width)
    lo, hi = np.full(width, np.inf), np.full(width, -np.inf)
    for start in range(0, len(rows), CHUNK_ROWS):
        chunk = ds.x[rows[start:start + CHUNK_ROWS]].to(torch.float64).numpy().reshape(-1, width)
        count += len(chunk)
        total += chunk.sum(axis=0)
        total_sq += (chunk**2).sum(axis=0)
        lo, hi = np.minimum(lo, chunk.min(axis=0)), np.maximum(hi, chunk.max(axis=0))
    if count == 0:
        raise UsageError("no rows to fit the normalisation on")
    if mode == "zscore":
        mean = total / count
        std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
        shift, scale = mean, np.where(std > 1e-12, std, 1.0)
    else:
        shift, scale = lo, np.where(hi - lo > 1e-12, hi - lo, 1.0)
    return Normalizer(mode, tuple(float(v) for v in shift), tuple(float(v) for v in scale))
