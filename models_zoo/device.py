"""Pick where models run: CUDA with half precision when present, else CPU. SENTIO_DEVICE overrides.

Batch sizes follow the device: a CPU gains little from batches beyond a few dozen items (and pays in latency
and memory), a GPU keeps its many cores busy only with large batches, and how large depends on its memory.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from functools import lru_cache

GIB = 1 << 30
REFERENCE_GPU_GIB = 16.0  # GPU batch defaults are sized for a 16 GiB card and grow with memory (up to 8x)


@dataclass(frozen=True)
class DeviceChoice:
    device: str  # "cuda" or "cpu"
    half_precision: bool
    memory_gib: float = 0.0  # total memory of the GPU; 0 on CPU

    def batch_items(self, *, cpu: int, gpu: int, cap: int = 4096) -> int:
        """``cpu`` items on a CPU; on a GPU ``gpu`` items per 16 GiB of its memory (at least ``gpu``, at most 8x)."""
        if self.device != "cuda":
            return cpu
        scale = min(max(self.memory_gib / REFERENCE_GPU_GIB, 1.0), 8.0)
        return min(cap, int(gpu * scale))


def _forced_cpu() -> bool:
    return os.environ.get("SENTIO_DEVICE", "").strip().lower() == "cpu"


def torch_device() -> DeviceChoice:
    if _forced_cpu() or importlib.util.find_spec("torch") is None:
        return DeviceChoice("cpu", False)
    import torch

    if torch.cuda.is_available():
        return DeviceChoice("cuda", True, torch.cuda.get_device_properties(0).total_memory / GIB)
    return DeviceChoice("cpu", False)


@lru_cache(maxsize=1)
def _ctranslate2_cuda_devices() -> int:
    import ctranslate2

    return int(ctranslate2.get_cuda_device_count())


def ctranslate2_device() -> DeviceChoice:
    """Where faster-whisper runs: float16 on CUDA, int8 on CPU (``half_precision`` means float16 here)."""
    if not _forced_cpu() and _ctranslate2_cuda_devices() > 0:
        memory = 0.0
        if importlib.util.find_spec("torch") is not None:
            import torch

            if torch.cuda.is_available():
                memory = torch.cuda.get_device_properties(0).total_memory / GIB
        return DeviceChoice("cuda", True, memory)
    return DeviceChoice("cpu", False)
