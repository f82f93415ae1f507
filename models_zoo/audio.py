"""Decode audio into 16 kHz mono float32, with a clear per-file error for corrupt or overlong input."""

from __future__ import annotations

import io
from dataclasses import dataclass
from math import gcd
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile

from models_zoo.errors import InputError

TARGET_SAMPLE_RATE = 16_000


@dataclass(frozen=True)
class AudioClip:
    samples: np.ndarray  # float32, mono, TARGET_SAMPLE_RATE
    name: str = ""

    @property
    def duration(self) -> float:
        return len(self.samples) / TARGET_SAMPLE_RATE


def load_audio(source: str | Path | bytes | BinaryIO, *, name: str = "", max_seconds: float | None = None,
               min_seconds: float = 0.05) -> AudioClip:
    """Read any format libsndfile knows (WAV, FLAC, OGG, MP3), mix to mono and resample to 16 kHz."""
    label = name or (str(source) if isinstance(source, str | Path) else "audio")
    handle: str | Path | BinaryIO = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        info = soundfile.info(handle)
        if hasattr(handle, "seek"):
            handle.seek(0)
        if max_seconds is not None and info.duration > max_seconds:
            raise InputError(f"audio is {info.duration:.1f} s long; the limit is {max_seconds:g} s", item=label)
        data, rate = soundfile.read(handle, dtype="float32", always_2d=True)
    except InputError:
        raise
    except (soundfile.LibsndfileError, RuntimeError, ValueError, TypeError) as exc:
        raise InputError(f"cannot decode audio ({exc})", item=label) from exc
    except OSError as exc:
        raise InputError(f"cannot read audio file ({exc})", item=label) from exc
    samples = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    samples = resample(samples, rate, TARGET_SAMPLE_RATE)
    if len(samples) < min_seconds * TARGET_SAMPLE_RATE:
        raise InputError(f"audio is {len(samples) / TARGET_SAMPLE_RATE:.3f} s long; at least {min_seconds:g} s needed",
                         item=label)
    if not np.isfinite(samples).all():
        raise InputError("audio contains NaN or infinite samples", item=label)
    return AudioClip(np.ascontiguousarray(samples, dtype=np.float32), label)


def resample(samples: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    """Polyphase resampling with an anti-aliasing filter (scipy), exact for integer rates."""
    if rate == target_rate:
        return samples.astype(np.float32, copy=False)
    from scipy.signal import resample_poly

    divisor = gcd(int(rate), int(target_rate))
    return resample_poly(samples, target_rate // divisor, int(rate) // divisor).astype(np.float32)
