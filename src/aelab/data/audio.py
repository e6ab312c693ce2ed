"""Audio to spectrogram frames: read `.wav` (scipy.io.wavfile), resample (scipy.signal.resample_poly),
log-magnitude `torch.stft`, fixed-length segments.

The frames match the seed causal-conv VAE's input: 16 kHz audio, n_fft=400 (25 ms), hop 160 (10 ms),
so each frame has 400 // 2 + 1 = 201 frequency bins. Log magnitudes are mapped to [0, 1] between a
ceiling (the largest value seen) and a floor `DYNAMIC_RANGE_DB` below it, so a sigmoid decoder fits.
"""

from __future__ import annotations

import math
import warnings
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
    """Samples in [-1, 1] (channels averaged to mono) and the sample rate of a `.wav` file, read by
    `scipy.io.wavfile`: 8/16/24/32-bit PCM (integers scaled by 2^(bits-1), 8-bit offset by 128) and
    32/64-bit float, plain or WAVE_FORMAT_EXTENSIBLE headers."""
    from scipy.io import wavfile

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", wavfile.WavFileWarning)
            rate, data = wavfile.read(path)
    except Exception as exc:  # scipy's parser raises ValueError, struct.error, ZeroDivisionError, ... on bad bytes
        raise UsageError(f"{path}: not a readable .wav file ({type(exc).__name__}: {exc})") from exc
    truncated = [str(w.message) for w in caught if "EOF" in str(w.message)]
    if truncated:  # other warnings are chunks it skips (LIST, cue): harmless
        raise UsageError(f"{path}: the file is truncated ({truncated[0]})")
    if data.dtype == np.uint8:
        samples = (data.astype(np.float32) - 128.0) / 128.0
    elif data.dtype.kind == "i":  # 24-bit PCM comes as int32 with the samples in the top 24 bits
        samples = data.astype(np.float32) / float(-np.iinfo(data.dtype).min)
    elif data.dtype.kind == "f":
        samples = data.astype(np.float32)
    else:
        raise UsageError(f"{path}: {data.dtype} samples are not supported (PCM or float .wav)")
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    return torch.from_numpy(np.ascontiguousarray(samples)), int(rate)


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
