"""User data: `.npy` (memory-mapped), `.npz`, `.csv`, a folder of images, a folder of `.wav`.

Shapes are inferred. Problems (NaN/inf rows, empty files, mixed shapes) are counted with their
locations; the load fails with that count unless the caller asked to skip them (`skip_bad`).
Folders whose files sit in sub-folders take the sub-folder names as class labels.
"""

from __future__ import annotations

import csv
import gzip
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aelab.data.embedded import fixed_split, speech_dataset
from aelab.data.records import CHUNK_ROWS, Dataset
from aelab.errors import UsageError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".pgm", ".ppm", ".tif", ".tiff", ".webp"}
LABEL_NAMES = ("label", "labels", "class", "target", "y", "anomaly", "outlier")


@dataclass
class Problem:
    """One kind of bad input found in a file: how many, and where the first few are."""

    what: str
    count: int
    where: list[str]

    def sentence(self) -> str:
        shown = ", ".join(self.where[:5]) + (", ..." if self.count > 5 else "")
        return f"{self.count} {self.what} ({shown})"


def _check(path: Path, problems: list[Problem], skip_bad: bool, notes: list[str]) -> None:
    problems = [p for p in problems if p.count]
    if not problems:
        return
    text = "; ".join(p.sentence() for p in problems)
    if not skip_bad:
        raise UsageError(f"{path}: {text}; pass --skip-bad to leave them out")
    notes.append(f"skipped {text}")


def load_file(path: Path, options: dict[str, Any], skip_bad: bool = False) -> Dataset:
    """Read a user file or folder into a Dataset (the kind follows the suffix or the folder's files)."""
    if not path.exists():
        raise UsageError(f"no such file or folder: {path}")
    opts = dict(options)
    if path.is_dir():
        ds = _folder(path, opts, skip_bad)
    else:
        if path.stat().st_size == 0:
            raise UsageError(f"{path}: the file is empty")
        suffixes = "".join(path.suffixes[-2:]).lower()
        if path.suffix.lower() == ".npy":
            ds = _npy(path, opts, skip_bad)
        elif path.suffix.lower() == ".npz":
            ds = _npz(path, opts, skip_bad)
        elif suffixes.endswith((".csv", ".csv.gz", ".tsv", ".tsv.gz")):
            ds = _csv(path, opts, skip_bad)
        else:
            raise UsageError(f"{path}: unknown data file type (use .npy, .npz, .csv, a folder of images or .wav)")
    if opts:
        raise UsageError(f"{path}: unknown data option(s) {', '.join(sorted(opts))}")
    return ds


def _finite_rows(x: np.ndarray) -> np.ndarray:
    """Boolean mask of rows whose values are all finite, scanned in chunks so a memmap stays on disk."""
    ok = np.ones(len(x), dtype=bool)
    if not np.issubdtype(x.dtype, np.floating):
        return ok
    for start in range(0, len(x), CHUNK_ROWS):
        chunk = np.asarray(x[start:start + CHUNK_ROWS]).reshape(min(CHUNK_ROWS, len(x) - start), -1)
        ok[start:start + len(chunk)] = np.isfinite(chunk).all(axis=1)
    return ok


def _from_array(path: Path, name: str, x: np.ndarray, y: np.ndarray | None, skip_bad: bool,
                row_word: str = "row") -> Dataset:
    if x.ndim == 0 or len(x) == 0:
        raise UsageError(f"{path}: no rows (array shape {tuple(x.shape)})")
    if x.ndim == 1:
        x = x.reshape(-1, 1)
    if x[0].size == 0:
        raise UsageError(f"{path}: rows of shape {tuple(x.shape[1:])} hold no values (array shape {tuple(x.shape)})")
    if not x.dtype.isnative:
        x = x.astype(x.dtype.newbyteorder("="))
    if x.dtype.kind not in "fiub":
        raise UsageError(f"{path}: array dtype {x.dtype} is not numeric")
    ok = _finite_rows(x)
    bad = np.flatnonzero(~ok)
    notes: list[str] = []
    _check(path, [Problem("rows contain NaN or inf", len(bad), [f"{row_word} {i}" for i in bad[:5]])],
           skip_bad, notes)
    labels = None
    if y is not None:
        if len(y) != len(x):
            raise UsageError(f"{path}: {len(y)} labels for {len(x)} rows")
        labels = torch.from_numpy(_integer_labels(path, np.asarray(y)))
    valid = np.flatnonzero(ok)
    split = fixed_split(len(valid))
    parts = {k: torch.from_numpy(valid)[v] for k, v in split.items()}
    tensor = torch.from_numpy(x)
    kind = "image" if x.ndim == 4 or (x.ndim == 3 and x.dtype == np.uint8) else "table"
    unit = _in_unit_interval(x, valid)
    return Dataset(name, tensor, labels, parts, kind, unit, notes=notes)


def _in_unit_interval(x: np.ndarray, rows: np.ndarray) -> bool:
    if x.dtype.kind != "f":
        return False
    lo, hi = np.inf, -np.inf
    for start in range(0, len(rows), CHUNK_ROWS):
        chunk = np.asarray(x[rows[start:start + CHUNK_ROWS]])
        lo, hi = min(lo, float(chunk.min())), max(hi, float(chunk.max()))
    return lo >= 0.0 and hi <= 1.0


def _npy(path: Path, opts: dict[str, Any], skip_bad: bool) -> Dataset:
    try:
        x = np.load(path, mmap_mode="c", allow_pickle=False)  # copy-on-write: writable, read lazily
    except (ValueError, OSError) as exc:
        raise UsageError(f"{path}: not a readable .npy file ({exc})") from exc
    y = _labels_file(opts.pop("labels", None))
    return _from_array(path, path.name, x, y, skip_bad)


def _integer_labels(path: Path, y: np.ndarray) -> np.ndarray:
    """Labels as int64; whole numbers stored as floats are fine, anything else is refused, not truncated."""
    if y.dtype.kind in "iub":
        return y.astype(np.int64)
    flat = y.reshape(-1)
    if y.dtype.kind != "f":
        raise UsageError(f"{path}: labels must be integers (class numbers), not {y.dtype}")
    whole = np.isfinite(flat) & (flat == np.round(flat)) & (np.abs(flat) < 2**62)
    if not bool(whole.all()):
        raise UsageError(f"{path}: labels must be integers (class numbers); found {flat[~whole][0]}")
    return y.astype(np.int64)


def _labels_file(value: Any) -> np.ndarray | None:
    if value is None:
        return None
    p = Path(str(value))
    if not p.is_file():
        raise UsageError(f"labels file not found: {p}")
    try:
        if p.suffix == ".npy":
            y = np.asarray(np.load(p, allow_pickle=False)).reshape(-1)
        else:
            y = np.loadtxt(p, delimiter=",", ndmin=1)
    except (ValueError, OSError, UnicodeDecodeError, EOFError) as exc:
        raise UsageError(f"{p}: not a labels file (give a .npy array or a text file with one number per "
                         f"line): {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from exc
    return _integer_labels(p, y)


def _npz(path: Path, opts: dict[str, Any], skip_bad: bool) -> Dataset:
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise UsageError(f"{path}: not a readable .npz file ({exc})") from exc
    keys = list(archive.keys())
    key = opts.pop("key", None) or next((k for k in ("x", "X", "data", "arr_0") if k in keys), None)
    if key is None and len(keys) == 1:
        key = keys[0]
    if key not in keys:
        raise UsageError(f"{path}: pick the array with --data-opt key=NAME (arrays: {', '.join(keys)})")
    label_key = opts.pop("label_key", None) or next((k for k in ("y", "labels", "target") if k in keys), None)
    y = archive[label_key] if label_key in keys and label_key != key else None
    return _from_array(path, path.name, archive[key], y, skip_bad)


def _open_text(path: Path) -> Iterable[str]:
    if path.suffix.lower() == ".gz":
        return gzip.open(path, "rt", newline="")
    return open(path, newline="")


def _number(cell: str) -> float:
    try:
        return float(cell)
    except ValueError:
        return float("nan")


def _csv(path: Path, opts: dict[str, Any], skip_bad: bool) -> Dataset:
    delimiter = "\t" if ".tsv" in path.name.lower() else ","
    with _open_text(path) as f:  # type: ignore[attr-defined]
        rows = [r for r in csv.reader(f, delimiter=delimiter) if r and any(c.strip() for c in r)]
    if not rows:
        raise UsageError(f"{path}: no rows")
    header = None
    if any(np.isnan(_number(c)) for c in rows[0]):
        header, rows = [c.strip() for c in rows[0]], rows[1:]
    first_line = 2 if header else 1
    if not rows:
        raise UsageError(f"{path}: a header but no rows")
    label_name = opts.pop("label", None)
    label_col = None
    if label_name is not None:
        if header is None or label_name not in header:
            raise UsageError(f"{path}: no column named {label_name!r}")
        label_col = header.index(label_name)
    elif header is not None:
        label_col = next((header.index(n) for n in LABEL_NAMES if n in header), None)
    width = Counter(len(r) for r in rows).most_common(1)[0][0]
    ragged = [i for i, r in enumerate(rows) if len(r) != width]
    notes: list[str] = []
    _check(path, [Problem(f"rows do not have {width} columns", len(ragged),
                          [f"line {i + first_line}" for i in ragged[:5]])], skip_bad, notes)
    keep = [i for i, r in enumerate(rows) if len(r) == width]
    table = np.array([[_number(c) for c in rows[i]] for i in keep], dtype=np.float32)
    y = None
    if label_col is not None:
        y_raw = table[:, label_col]
        table = np.delete(table, label_col, axis=1)
        if not np.isfinite(y_raw).all():
            bad = [keep[i] + first_line for i in np.flatnonzero(~np.isfinite(y_raw))[:5]]
            raise UsageError(f"{path}: the label column has empty or non-numeric cells (lines {bad})")
        y = _integer_labels(path, y_raw)
    ok = np.isfinite(table).all(axis=1)
    bad_lines = [f"line {keep[i] + first_line}" for i in np.flatnonzero(~ok)[:5]]
    _check(path, [Problem("rows contain NaN, inf or non-numbers", int((~ok).sum()), bad_lines)], skip_bad, notes)
    table, y = table[ok], (y[ok] if y is not None else None)
    ds = _from_array(path, path.name, table, y, skip_bad=False)
    ds.notes = notes + ds.notes
    if header is not None:
        ds.meta["columns"] = [h for j, h in enumerate(header) if j != label_col]
    if label_col is not None and header is not None:
        ds.meta["label_column"] = header[label_col]
    return ds


def _folder(path: Path, opts: dict[str, Any], skip_bad: bool) -> Dataset:
    files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
    images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    wavs = [p for p in files if p.suffix.lower() == ".wav"]
    if images and wavs:
        raise UsageError(f"{path}: holds both images ({len(images)}) and .wav files ({len(wavs)}); split them")
    chosen = images or wavs
    if not chosen:
        raise UsageError(f"{path}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) or .wav files in the folder")
    notes: list[str] = []
    empty = [p for p in chosen if p.stat().st_size == 0]
    _check(path, [Problem("empty files", len(empty), [str(p) for p in empty])], skip_bad, notes)
    chosen = [p for p in chosen if p.stat().st_size > 0]
    if not chosen:
        raise UsageError(f"{path}: every file is empty")
    labelled = all(p.parent != path for p in chosen)
    classes = sorted({p.parent.relative_to(path).parts[0] for p in chosen}) if labelled else []
    if images:
        ds = _images(path, chosen, classes, skip_bad, notes)
    else:
        frames, stride = int(opts.pop("frames", 32)), int(opts.pop("stride", 4))
        ds = speech_dataset(path.name, chosen, frames, stride, labelled=False)
        if labelled:
            ds.meta["classes"] = classes
        ds.notes = notes
    return ds


def _images(root: Path, files: list[Path], classes: list[str], skip_bad: bool, notes: list[str]) -> Dataset:
    from PIL import Image, UnidentifiedImageError

    pictures: list[tuple[Path, np.ndarray]] = []
    unreadable: list[Path] = []
    for p in files:
        try:
            with Image.open(p) as im:
                pictures.append((p, np.asarray(im.convert("RGB" if im.mode not in ("L", "1", "I;16") else "L"))))
        except (UnidentifiedImageError, OSError):
            unreadable.append(p)
    colour = any(a.ndim == 3 for _, a in pictures)
    arrays = [(p, _to_chw(a, colour)) for p, a in pictures]
    shapes = Counter(a.shape for _, a in arrays)
    if not shapes:
        raise UsageError(f"{root}: no readable image")
    common = shapes.most_common(1)[0][0]
    odd = [(p, a.shape) for p, a in arrays if a.shape != common]
    _check(root, [Problem("unreadable images", len(unreadable), [str(p) for p in unreadable]),
                  Problem(f"images not of the common shape {'x'.join(map(str, common))}", len(odd),
                          [f"{p} is {'x'.join(map(str, s))}" for p, s in odd])], skip_bad, notes)
    kept = [(p, a) for p, a in arrays if a.shape == common]
    x = torch.from_numpy(np.stack([a for _, a in kept]).astype(np.float32) / 255.0)
    y = None
    if classes:
        y = torch.tensor([classes.index(p.parent.relative_to(root).parts[0]) for p, _ in kept])
    return Dataset(root.name, x, y, fixed_split(len(x)), "image", True, tuple(classes) or None,
                   meta={"files": [str(p) for p, _ in kept]}, notes=notes)


def _to_chw(a: np.ndarray, colour: bool) -> np.ndarray:
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2) if colour else a[:, :, None]
    return np.ascontiguousarray(a.transpose(2, 0, 1))
