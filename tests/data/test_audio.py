"""`audio.resample` (scipy's polyphase `resample_poly`) against the hand-written windowed-sinc resampler it
replaced, kept here as the reference: on test tones the two agree to within 4e-3 of a unit sine
(−48 dB), and each is within that of the true 16 kHz samples. `audio.read_wav` (scipy.io.wavfile) against
the PCM scaling written out."""

from __future__ import annotations

import math
import wave
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor

from aelab.data import audio
from aelab.errors import UsageError

TONE_BOUND = 4e-3  # measured: 3.4e-3 (3 kHz from 8 kHz), 1.5e-3 (6 kHz from 48 kHz), ≤ 1.2e-3 at 1 kHz


def windowed_sinc(signal: Tensor, rate: int, target: int, half_width: int = 16) -> Tensor:
    """The resampler aelab had before scipy's: Hann-windowed sinc, cut-off at the lower Nyquist, output n
    at input time n·rate/target, one strided conv1d per fractional offset."""
    g = math.gcd(rate, target)
    up, down = target // g, rate // g
    n_out = len(signal) * target // rate
    cutoff = min(1.0, target / rate)
    span = math.ceil(half_width / cutoff)
    offsets = torch.arange(-span + 1, span + 1, dtype=torch.float64)
    padded = torch.nn.functional.pad(signal.to(torch.float64), (span, span + 2 * span + down))
    out = torch.empty(n_out, dtype=torch.float64)
    for phase in range(min(up, n_out)):
        base = phase * down // up
        dist = (phase * down / up - base) - offsets
        window = torch.where(dist.abs() < span, 0.5 + 0.5 * torch.cos(math.pi * dist / span), 0.0)
        kernel = cutoff * torch.sinc(cutoff * dist) * window
        count = len(range(phase, n_out, up))
        y = torch.nn.functional.conv1d(padded[base + 1:].view(1, 1, -1), kernel.view(1, 1, -1), stride=down)
        out[phase::up] = y.view(-1)[:count]
    return out.to(torch.float32)


def tone(freq: float, rate: int, seconds: float = 1.0) -> Tensor:
    t = torch.arange(int(rate * seconds), dtype=torch.float64) / rate
    return torch.sin(2 * math.pi * freq * t).float()


@pytest.mark.parametrize("rate, freq", [(48_000, 100), (48_000, 1000), (48_000, 6000), (44_100, 1000),
                                        (44_100, 6000), (22_050, 1000), (8_000, 1000), (8_000, 3000)])
def test_resample_poly_agrees_with_the_windowed_sinc_it_replaced(rate: int, freq: int) -> None:
    """Tones the new rate can hold (up to 0.75 of its Nyquist), away from the first/last 200 samples."""
    x = tone(freq, rate)
    new, old = audio.resample(x, rate, 16_000), windowed_sinc(x, rate, 16_000)
    assert new.dtype == torch.float32 and new.shape == old.shape == (16_000,)
    truth = torch.sin(2 * math.pi * freq * torch.arange(16_000, dtype=torch.float64) / 16_000)
    inside = slice(200, -200)
    assert float((new[inside] - old[inside]).abs().max()) < TONE_BOUND
    assert float((new[inside].double() - truth[inside]).abs().max()) < TONE_BOUND
    assert float((old[inside].double() - truth[inside]).abs().max()) < TONE_BOUND


@pytest.mark.parametrize("n", [1, 2, 3, 47_999, 48_001, 44_099])
def test_resample_length_is_the_samples_inside_the_input(n: int) -> None:
    for rate in (48_000, 44_100, 8_000):
        assert len(audio.resample(torch.zeros(n), rate, 16_000)) == n * 16_000 // rate == len(
            windowed_sinc(torch.zeros(n), rate, 16_000))


def test_resample_at_the_target_rate_is_the_identity() -> None:
    x = tone(440, 16_000)
    assert audio.resample(x, 16_000) is x


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_read_wav_scales_pcm_as_the_format_says(width: int, tmp_path: Path) -> None:
    """Integer PCM of b bits is scaled by 2^(b-1) (8-bit: unsigned, offset 128); stereo is averaged."""
    bits = 8 * width
    lo, hi = (0, 255) if width == 1 else (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    values = np.array([[lo, hi], [hi, hi], [0, lo]], dtype=np.int64)
    offset = 128 if width == 1 else 0
    raw = b"".join(int(v).to_bytes(width, "little", signed=width > 1) for v in values.ravel())
    with wave.open(str(tmp_path / "x.wav"), "wb") as f:
        f.setnchannels(2)
        f.setsampwidth(width)
        f.setframerate(8000)
        f.writeframes(raw)
    samples, rate = audio.read_wav(tmp_path / "x.wav")
    want = ((values - offset) / float(1 << (bits - 1))).mean(axis=1)
    assert rate == 8000 and samples.dtype == torch.float32
    assert np.allclose(samples.numpy(), want, atol=1e-7)


def test_read_wav_reads_float_wavs_and_refuses_what_is_not_one(tmp_path: Path) -> None:
    from scipy.io import wavfile

    x = np.array([0.5, -0.25, 1.0], dtype=np.float32)
    wavfile.write(tmp_path / "f.wav", 16_000, x)
    samples, rate = audio.read_wav(tmp_path / "f.wav")
    assert rate == 16_000 and torch.equal(samples, torch.from_numpy(x))
    (tmp_path / "bad.wav").write_bytes(b"RIFF\x04\x00\x00\x00WAVEjunk")
    with pytest.raises(UsageError, match=r"bad\.wav: not a readable \.wav file"):
        audio.read_wav(tmp_path / "bad.wav")


def test_read_wav_refuses_a_truncated_file(tmp_path: Path) -> None:
    from scipy.io import wavfile

    wavfile.write(tmp_path / "x.wav", 8000, np.zeros(1000, dtype=np.int16))
    (tmp_path / "cut.wav").write_bytes((tmp_path / "x.wav").read_bytes()[:500])
    with pytest.raises(UsageError, match=r"cut\.wav: the file is truncated"):
        audio.read_wav(tmp_path / "cut.wav")
