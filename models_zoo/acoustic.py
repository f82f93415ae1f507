"""Acoustic features for speech emotion: pitch, energy, voicing, spectral shape and MFCC statistics.

Plain numpy, so a project can train a speech-emotion head on its own labelled clips in any language
without a pretrained speech model. The feature list is versioned: a head records the version it was
trained on and refuses features of another.
"""

from __future__ import annotations

import numpy as np

from models_zoo.audio import TARGET_SAMPLE_RATE, AudioClip

FEATURE_VERSION = "acoustic-v1"
FRAME = 400  # 25 ms at 16 kHz
HOP = 160  # 10 ms
N_FFT = 512
N_MELS = 26
N_MFCC = 13
F0_MIN, F0_MAX = 60.0, 400.0

_STATS = ("mean", "std", "p10", "p90")
FEATURE_NAMES: tuple[str, ...] = (
    *(f"log_energy_{s}" for s in _STATS),
    *(f"log_f0_{s}" for s in _STATS),
    "voiced_ratio", "f0_slope",
    *(f"zcr_{s}" for s in ("mean", "std")),
    *(f"centroid_{s}" for s in ("mean", "std")),
    *(f"rolloff_{s}" for s in ("mean", "std")),
    *(f"mfcc{i}_mean" for i in range(N_MFCC)),
    *(f"mfcc{i}_std" for i in range(N_MFCC)),
    *(f"delta_mfcc{i}_absmean" for i in range(N_MFCC)),
    "log_duration", "speech_rate_proxy",
)


def _mel_filterbank() -> np.ndarray:
    def hz_to_mel(hz: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + hz / 700.0)

    mel_points = np.linspace(hz_to_mel(np.array(0.0)), hz_to_mel(np.array(TARGET_SAMPLE_RATE / 2)), N_MELS + 2)
    hz_points = 700.0 * (10 ** (mel_points / 2595.0) - 1.0)
    bins = np.floor((N_FFT + 1) * hz_points / TARGET_SAMPLE_RATE).astype(int)
    bank = np.zeros((N_MELS, N_FFT // 2 + 1))
    for m in range(1, N_MELS + 1):
        left, centre, right = bins[m - 1], bins[m], bins[m + 1]
        for k in range(left, centre):
            bank[m - 1, k] = (k - left) / max(centre - left, 1)
        for k in range(centre, right):
            bank[m - 1, k] = (right - k) / max(right - centre, 1)
    return bank


_MEL_BANK = _mel_filterbank()
_DCT = np.cos(np.pi / N_MELS * (np.arange(N_MELS)[None, :] + 0.5) * np.arange(N_MFCC)[:, None])
_WINDOW = np.hanning(FRAME)


def _stats(values: np.ndarray) -> list[float]:
    if values.size == 0:
        return [0.0, 0.0, 0.0, 0.0]
    return [float(values.mean()), float(values.std()), float(np.percentile(values, 10)), float(np.percentile(values, 90))]


def acoustic_features(clip: AudioClip) -> np.ndarray:
    """One fixed-length vector (``FEATURE_NAMES``) per clip."""
    samples = clip.samples.astype(np.float64)
    if len(samples) < FRAME:
        samples = np.pad(samples, (0, FRAME - len(samples)))
    peak = np.abs(samples).max()
    if peak > 0:
        samples = samples / peak  # loudness of the recording is not an emotion
    frames = np.lib.stride_tricks.sliding_window_view(samples, FRAME)[::HOP]
    energy = np.sqrt((frames**2).mean(axis=1))
    log_energy = np.log(energy + 1e-8)
    active = energy > max(energy.max() * 0.05, 1e-4)

    windowed = frames * _WINDOW
    power = np.abs(np.fft.rfft(windowed, N_FFT)) ** 2
    freqs = np.fft.rfftfreq(N_FFT, 1 / TARGET_SAMPLE_RATE)
    total_power = power.sum(axis=1) + 1e-12
    centroid = (power * freqs).sum(axis=1) / total_power
    cumulative = np.cumsum(power, axis=1) / total_power[:, None]
    rolloff = freqs[np.argmax(cumulative >= 0.85, axis=1)]
    mfcc = np.log(power @ _MEL_BANK.T + 1e-10) @ _DCT.T
    delta = np.diff(mfcc, axis=0) if len(mfcc) > 1 else np.zeros_like(mfcc)

    zcr = (np.abs(np.diff(np.sign(frames), axis=1)) > 0).mean(axis=1)

    # Pitch: autocorrelation peak between F0_MAX and F0_MIN lags, kept where the frame is voiced.
    spectrum = np.fft.rfft(frames - frames.mean(axis=1, keepdims=True), 2 * FRAME)
    acf = np.fft.irfft(np.abs(spectrum) ** 2)[:, :FRAME]
    min_lag, max_lag = int(TARGET_SAMPLE_RATE / F0_MAX), int(TARGET_SAMPLE_RATE / F0_MIN)
    lag_window = acf[:, min_lag:max_lag]
    best = lag_window.argmax(axis=1)
    strength = lag_window[np.arange(len(acf)), best] / (acf[:, 0] + 1e-12)
    voiced = active & (strength > 0.45)
    f0 = TARGET_SAMPLE_RATE / (best + min_lag)
    log_f0 = np.log(f0[voiced])
    f0_slope = float(np.polyfit(np.arange(log_f0.size), log_f0, 1)[0]) * 100 if log_f0.size > 2 else 0.0

    on = active.astype(int)
    onsets = int(((on[1:] - on[:-1]) == 1).sum())
    duration = max(len(clip.samples) / TARGET_SAMPLE_RATE, 1e-3)

    act = active if active.any() else np.ones_like(active)
    vector = [
        *_stats(log_energy[act]),
        *_stats(log_f0),
        float(voiced.sum() / max(act.sum(), 1)), f0_slope,
        float(zcr[act].mean()), float(zcr[act].std()),
        float(centroid[act].mean() / 1000), float(centroid[act].std() / 1000),
        float(rolloff[act].mean() / 1000), float(rolloff[act].std() / 1000),
        *mfcc[act].mean(axis=0), *mfcc[act].std(axis=0),
        *np.abs(delta).mean(axis=0),
        float(np.log(duration)), onsets / duration,
    ]
    return np.asarray(vector, dtype=np.float32)


def acoustic_feature_matrix(clips: list[AudioClip]) -> np.ndarray:
    if not clips:
        return np.zeros((0, len(FEATURE_NAMES)), dtype=np.float32)
    return np.stack([acoustic_features(clip) for clip in clips])
