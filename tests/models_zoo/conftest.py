"""Speech fixtures made on the spot with espeak-ng (installed by scripts/test), in several languages."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

Speak = Callable[..., Path]


@pytest.fixture(scope="session")
def speak(tmp_path_factory: pytest.TempPathFactory) -> Speak:
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed: run ./scripts/test, or apt-get install espeak-ng")
    folder = tmp_path_factory.mktemp("speech")
    counter = iter(range(1_000_000))

    def make(text: str, voice: str = "en", *, pitch: int = 50, speed: int = 160, amplitude: int = 100) -> Path:
        path = folder / f"{voice}-{next(counter)}.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-p", str(pitch), "-s", str(speed), "-a", str(amplitude),
                        "-w", str(path), text], check=True, capture_output=True)
        return path

    return make
