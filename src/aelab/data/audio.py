"""Audio to spectrogram frames: read PCM `.wav`, resample, log-magnitude `torch.stft`, fixed-length segments.

The frames match the seed causal-conv VAE's input: 16 kHz audio, n_fft=400 (25 ms), hop 160 (10 ms),
so each frame has 400 // 2 + 1 = 201 frequency bins. Log magnitudes are mapped to [0, 1] between a
ceiling (the largest value seen) and a floor `DYNAMIC_RANGE_DB` below it, so a sigmoid decoder fits.
"""

from __future__ import annotations

import math
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from aelab.errors import UsageError

SAMPLE_RATE = 16_000
N_FFT = 400
HOP = 160
BINS = N_FFT // 2 + 1
DYNAMIC_RANGE_DB = 80.0
_EPS = 1e-10


def read_wav(path: Path) -> tuple[Tensor, int]:
    """Samples in [-1, 1] (channels averaged to mono) and the sample rate of a PCM `.wav` file."""
    try:
        with wave.open(str(path), "rb") as f:
            channels, width, rate, n = f.getnchannels(), f.getsampwidth(), f.getframerate(), f.getnframes()
            raw = f.readframes(n)
    except (wave.Error, EOFError, OSError) as exc:
        raise UsageError(f"{path}: not a readable PCM .wav file ({exc})") from exc
    if width == 1:
        data = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 2:
        data = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    elif width == 3:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        data = (np.where(v >= 1 << 23, v - (1 << 24), v)).astype(np.float32) / float(1 << 23)
    elif width == 4:
        data = np.frombuffer(raw, dtype="<i4").astype(np.float32) / float(1 << 31)
    else:
        raise UsageError(f"{path}: {8 * width}-bit samples are not supported (8, 16, 24 or 32-bit PCM)")
    if channels > 1:
        data = data[: len(data) // channels * channels].reshape(-1, channels).mean(axis=1)
    return torch.from_numpy(np.ascontiguousarray(data)), rate


def resample(signal: Tensor, rate: int, target: int = SAMPLE_RATE) -> Tensor:
    """Band-limited resampling to `target` Hz with `scipy.signal.resample_poly` (polyphase FIR, Kaiser window).

    With rate/target = M/L in lowest terms, output n sits at input time n·M/L (scipy compensates the
    filter's delay); the length is ⌊len · target / rate⌋, the samples that lie inside the input.
    """
    if rate == target:
        return signal
    from scipy.signal import resample_poly

    g = math.gcd(rate, target)
    n_out = len(signal) * target // rate
    out = resample_poly(signal.detach().cpu().numpy().astype(np.float64), target // g, rate // g)
    return torch.from_numpy(np.ascontiguousarray(out[:n_out], dtype=np.float32))


def log_magnitude(signal: Tensor, rate: int) -> Tensor:
    """Frames × 201 natural-log magnitudes of the 16 kHz short-time Fourier transform."""
    audio = resample(signal, rate)
    if len(audio) < N_FFT:
        audio = torch.nn.functional.pad(audio, (0, N_FFT - len(audio)))
    spec = torch.stft(audio, n_fft=N_FFT, hop_length=HOP, window=torch.hann_window(N_FFT),
                      center=True, return_complex=True)
    return torch.log(spec.abs() + _EPS).T.contiguous()


@dataclass(frozen=True)
class LogScale:
    """Maps natural-log magnitudes to [0, 1]: `ceiling` ↦ 1, `ceiling - range` ↦ 0 (clamped)."""

    ceiling: float
    span: float = DYNAMIC_RANGE_DB / 20.0 * math.log(10.0)  # 80 dB of magnitude, in nats

    def forward(self, logmag: Tensor) -> Tensor:
        return ((logmag - (self.ceiling - self.span)) / self.span).clamp(0.0, 1.0)

    def inverse(self, unit: Tensor) -> Tensor:
        return unit * self.span + (self.ceiling - self.span)


def segments(frames: Tensor, length: int, stride: int) -> Tensor:
    """Windows of `length` consecutive frames, every `stride` frames: (count, length, bins)."""
    if len(frames) < length:
        return frames.new_zeros((0, length, frames.shape[1]))
    return frames.unfold(0, length, stride).permute(0, 2, 1).contiguous()
