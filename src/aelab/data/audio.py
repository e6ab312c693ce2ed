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


def resample(signal: Tensor, rate: int, target: int = SAMPLE_RATE, half_width: int = 16) -> Tensor:
    """Band-limited resampling by windowed-sinc interpolation (Hann window, cut-off at the lower Nyquist).

    Output n sits at input time n·rate/target. With rate/target = M/L in lowest terms there are only
    L distinct fractional offsets, so the outputs of each offset are one strided conv1d.
    """
    if rate == target:
        return signal
    g = math.gcd(rate, target)
    up, down = target // g, rate // g
    n_out = len(signal) * target // rate
    cutoff = min(1.0, target / rate)  # fraction of the input Nyquist kept
    span = math.ceil(half_width / cutoff)
    offsets = torch.arange(-span + 1, span + 1, dtype=torch.float64)
    padded = torch.nn.functional.pad(signal.to(torch.float64), (span, span + 2 * span + down))
    out = torch.empty(n_out, dtype=torch.float64)
    for phase in range(min(up, n_out)):
        base = phase * down // up
        dist = (phase * down / up - base) - offsets  # output time minus each tap's input time
        window = torch.where(dist.abs() < span, 0.5 + 0.5 * torch.cos(math.pi * dist / span), 0.0)
        kernel = cutoff * torch.sinc(cutoff * dist) * window
        count = len(range(phase, n_out, up))
        seg = padded[base + 1:]
        y = torch.nn.functional.conv1d(seg.view(1, 1, -1), kernel.view(1, 1, -1), stride=down)
        out[phase::up] = y.view(-1)[:count]
    return out.to(torch.float32)


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
