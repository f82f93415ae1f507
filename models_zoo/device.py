"""Pick where models run: CUDA with half precision when present, else CPU. SENTIO_DEVICE overrides."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class DeviceChoice:
    device: str  # "cuda" or "cpu"
    half_precision: bool


def torch_device() -> DeviceChoice:
    forced = os.environ.get("SENTIO_DEVICE", "").strip().lower()
    if forced == "cpu":
        return DeviceChoice("cpu", False)
    if importlib.util.find_spec("torch") is None:
        return DeviceChoice("cpu", False)
    import torch

    if torch.cuda.is_available():
        return DeviceChoice("cuda", True)
    return DeviceChoice("cpu", False)


def ctranslate2_device() -> tuple[str, str]:
    """(device, compute_type) for faster-whisper: float16 on CUDA, int8 on CPU."""
    forced = os.environ.get("SENTIO_DEVICE", "").strip().lower()
    if forced != "cpu":
        import ctranslate2

        if ctranslate2.get_cuda_device_count() > 0:
            return "cuda", "float16"
    return "cpu", "int8"
