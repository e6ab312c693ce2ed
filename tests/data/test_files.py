"""User files: shapes inferred, bad rows counted with their locations, memory mapping, batches, normalisation."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest
import torch

from aelab.data import DeviceBatches, fit_normalizer, load
from aelab.errors import UsageError


def _rss_anon_kb() -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def test_npy_shape_inferred_and_memory_mapped(tmp_path: Path) -> None:
    """A 256 MB .npy is read through a memory map: loading and streaming batches add little anonymous memory."""
    path = tmp_path / "big.npy"
    rows = 16_384
    arr = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, 64, 64))
    arr[::1000] = 0.5
    del arr
    before = _rss_anon_kb()
    ds = load(str(path))
    assert ds.sample_shape == (64, 64) and len(ds.x) == rows and ds.unit_interval
    batches = DeviceBatches(ds, ds.rows("all"), 512, torch.device("cpu"), stream=True)
    assert batches.streaming
    seen = 0
    for xb in batches:
        seen += len(xb)
    assert seen == rows
    after = _rss_anon_kb()
    if before is not None and after is not None:
        assert after - before < 100_000, "the file was copied into memory"


def test_nan_rows_are_counted_located_and_skipped_on_request(tmp_path: Path) -> None:
    x = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
    x[7, 1] = np.nan
    x[31, 0] = np.inf
    np.save(tmp_path / "x.npy", x)
    with pytest.raises(UsageError, match=r"2 rows contain NaN or inf \(row 7, row 31\); pass --skip-bad"):
        load(str(tmp_path / "x.npy"))
    ds = load(str(tmp_path / "x.npy"), skip_bad=True)
    kept = ds.rows("all").tolist()
    assert len(kept) == 48 and 7 not in kept and 31 not in kept
    assert ds.notes and "2 rows contain NaN or inf" in ds.notes[0]


def test_csv_header_labels_bad_cells_and_ragged_lines(tmp_path: Path) -> None:
    lines = ["a,b,label", "1,2,0", "3,x,1", "5,6,0", "7,8", "9,10,1"] + [f"{i},{i},0" for i in range(20)]
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(UsageError, match=r"1 rows do not have 3 columns \(line 5\)"):
        load(str(tmp_path / "t.csv"))
    (tmp_path / "u.csv").write_text("\n".join(lines[:4] + lines[5:]) + "\n")
    with pytest.raises(UsageError, match=r"1 rows contain NaN, inf or non-numbers \(line 3\)"):
        load(str(tmp_path / "u.csv"))
    ds = load(str(tmp_path / "t.csv"), skip_bad=True)
    assert ds.sample_shape == (2,) and ds.y is not None and ds.meta["label_column"] == "label"
    assert len(ds.x) == 23  # 25 data lines minus the ragged one and the one with 'x'
    assert any("line 3" in note for note in ds.notes) and any("line 5" in note for note in ds.notes)
    assert ds.x[0].tolist() == [1.0, 2.0] and ds.y[:2].tolist() == [0, 0]


def test_empty_file_and_unknown_suffix(tmp_path: Path) -> None:
    (tmp_path / "e.csv").write_text("")
    with pytest.raises(UsageError, match="empty"):
        load(str(tmp_path / "e.csv"))
    (tmp_path / "d.bin").write_bytes(b"123")
    with pytest.raises(UsageError, match="unknown data file type"):
        load(str(tmp_path / "d.bin"))


def test_npz_picks_x_and_y(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", x=np.zeros((10, 4), np.float32), y=np.arange(10) % 2)
    ds = load(str(tmp_path / "d.npz"))
    assert ds.sample_shape == (4,) and ds.y is not None and ds.y.tolist() == [0, 1] * 5


def test_image_folder_classes_mixed_sizes_and_empty_files(tmp_path: Path) -> None:
    from PIL import Image

    for cls in ("cats", "dogs"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.fromarray(np.full((6, 5), 40 * i, np.uint8)).save(tmp_path / cls / f"{i}.png")
    Image.fromarray(np.zeros((9, 9), np.uint8)).save(tmp_path / "dogs" / "odd.png")
    (tmp_path / "dogs" / "empty.png").write_bytes(b"")
    with pytest.raises(UsageError, match="1 empty files"):
        load(str(tmp_path))
    ds = load(str(tmp_path), skip_bad=True)
    (tmp_path / "dogs" / "empty.png").unlink()
    with pytest.raises(UsageError, match=r"1 images not of the common shape 1x6x5 \(.*odd.png is 1x9x9\)"):
        load(str(tmp_path))
    assert ds.sample_shape == (1, 6, 5) and len(ds.x) == 6
    assert ds.class_names == ("cats", "dogs") and ds.y is not None and ds.y.tolist() == [0, 0, 0, 1, 1, 1]
    assert abs(float(ds.x[1].max()) - 40 / 255) < 1e-6


def test_wav_folder_becomes_spectrogram_segments(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for name, rate in (("a.wav", 16_000), ("b.wav", 22_050)):
        with wave.open(str(tmp_path / name), "wb") as f:
            f.setnchannels(2)
            f.setsampwidth(2)
            f.setframerate(rate)
            f.writeframes((rng.normal(size=(rate, 2)) * 3000).astype("<i2").tobytes())
    ds = load(str(tmp_path), {"frames": 20, "stride": 5})
    assert ds.sample_shape == (20, 201) and ds.kind == "spectrogram" and ds.y is None
    assert len(ds.x) > 10 and float(ds.x.max()) <= 1.0


def test_device_batches_cover_each_row_once_and_slice_per_rank() -> None:
    ds = load("digits")
    rows = ds.parts["train"]
    gen = torch.Generator().manual_seed(3)
    batches = DeviceBatches(ds, rows, 100, torch.device("cpu"), generator=gen)
    seen = torch.cat(list(batches))
    assert len(seen) == len(rows)
    # every training row exactly once: compare sorted flattened rows with the data set's own
    want = ds.x[rows].flatten(1)
    assert torch.equal(torch.unique(seen.flatten(1), dim=0), torch.unique(want, dim=0))
    # two ranks, same generator state: their slices of each batch make up the one-process batch
    state = torch.Generator().manual_seed(9).get_state()
    one, r0, r1 = (torch.Generator(), torch.Generator(), torch.Generator())
    for g in (one, r0, r1):
        g.set_state(state)
    full = list(DeviceBatches(ds, rows, 64, torch.device("cpu"), generator=one))
    part0 = list(DeviceBatches(ds, rows, 64, torch.device("cpu"), generator=r0, rank=0, world=2))
    part1 = list(DeviceBatches(ds, rows, 64, torch.device("cpu"), generator=r1, rank=1, world=2))
    assert len(full) == len(part0) == len(part1)
    for f, a, b in zip(full, part0, part1):
        assert torch.equal(f, torch.cat([a, b]))


def test_streamed_batches_equal_resident_batches() -> None:
    ds = load("shuttle")
    norm = fit_normalizer(ds, ds.parts["train"])
    rows = ds.parts["test"][:1000]
    a = list(DeviceBatches(ds, rows, 128, torch.device("cpu"), norm, torch.Generator().manual_seed(1)))
    b = list(DeviceBatches(ds, rows, 128, torch.device("cpu"), norm, torch.Generator().manual_seed(1), stream=True))
    assert len(a) == len(b) == 8  # 7 full batches and one of 104 rows
    for xa, xb in zip(a, b):  # streaming reads each batch in sorted row order
        assert torch.allclose(torch.sort(xa, dim=0).values, torch.sort(xb, dim=0).values)


def test_normalizers_match_scikit_learn_scalers() -> None:
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    ds = load("shuttle")
    train = ds.parts["train"]
    raw = ds.x[train].double().numpy()
    z = fit_normalizer(ds, train, "zscore")
    assert z.mode == "zscore" and fit_normalizer(ds, train).mode == "zscore"  # auto on a table
    assert np.allclose(z.apply(ds.x[train[:500]]).numpy(), StandardScaler().fit(raw).transform(raw[:500]),
                       atol=1e-4)
    m = fit_normalizer(ds, train, "minmax")
    assert np.allclose(m.apply(ds.x[train[:500]]).numpy(), MinMaxScaler().fit(raw).transform(raw[:500]),
                       atol=1e-5)
    digits = load("digits")
    assert fit_normalizer(digits, digits.parts["train"]).identity  # images in [0, 1]: no normalisation


def test_float64_npy_stays_mapped_and_batches_are_float32(tmp_path: Path) -> None:
    np.save(tmp_path / "d.npy", np.random.default_rng(1).normal(size=(40, 5)))
    ds = load(str(tmp_path / "d.npy"))
    assert ds.x.dtype == torch.float64  # not copied into a float32 array in memory
    for stream in (False, True):
        batch = next(iter(DeviceBatches(ds, ds.rows("all"), 8, torch.device("cpu"), stream=stream)))
        assert batch.dtype == torch.float32 and batch.shape == (8, 5)
