"""Data: embedded real sets, user files, normalisation, and batches served from the device."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aelab.data.batches import DeviceBatches, resident_rows
from aelab.data.embedded import SOURCES, Source
from aelab.data.files import load_file
from aelab.data.normalize import fit_normalizer
from aelab.data.records import NO_NORMALIZER, Dataset, Normalizer
from aelab.errors import UsageError

__all__ = ["NO_NORMALIZER", "SOURCES", "Dataset", "DeviceBatches", "Normalizer", "Source",
           "fit_normalizer", "load", "resident_rows"]


def load(name: str, options: dict[str, Any] | None = None, skip_bad: bool = False) -> Dataset:
    """An embedded set by name (`fashion-mnist`, ...) or a user file or folder by path."""
    if name in SOURCES:  # embedded sets are clean: skip_bad only matters for user files
        return SOURCES[name].load(options)
    path = Path(name).expanduser()
    if not path.exists():
        raise UsageError(f"unknown data {name!r}: not an embedded set ({', '.join(SOURCES)}) "
                         f"nor an existing file or folder")
    return load_file(path, options or {}, skip_bad)
