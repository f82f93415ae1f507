"""Speech recognition with Whisper through faster-whisper (CTranslate2): int8 on CPU, float16 on CUDA."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from models_zoo.audio import AudioClip
from models_zoo.backends.base import Backend
from models_zoo.cards import Availability, ModelCard, Task
from models_zoo.device import ctranslate2_device
from models_zoo.errors import InputError
from models_zoo.outputs import Transcript, TranscriptSegment


class FasterWhisperBackend(Backend[AudioClip, Transcript]):
    """Options: ``language`` (fixed, e.g. "en" for .en models; else detected per clip), ``beam_size``,
    ``max_seconds`` (longer clips are refused as per-item errors), ``threads`` (CPU), ``temperatures``
    (the fallback schedule), ``tokens_per_second`` (caps decoding so a hallucinating loop ends early)."""

    tasks: ClassVar = frozenset({Task.ASR})
    requires: ClassVar = ("faster_whisper", "ctranslate2")

    @classmethod
    def check_files(cls, path: Path, card: ModelCard) -> Availability:
        # PACKAGE_PARTS models are assembled on first load; the parts were checked when locating them.
        if path.exists():
            missing = [name for name in ("model.bin", "config.json") if not (path / name).is_file()]
            if missing:
                return Availability(False, f"{path} is not a CTranslate2 Whisper folder (missing {', '.join(missing)})")
        return Availability(True)

    def _load(self, path: Path) -> None:
        from faster_whisper import WhisperModel

        device, compute_type = ctranslate2_device()
        self._model: Any = WhisperModel(str(path), device=device, compute_type=compute_type,
                                        cpu_threads=int(self.card.options.get("threads", 0)), local_files_only=True)
        self.device = device

    def transcribe(self, clip: AudioClip, *, language: str | None = None) -> Transcript:
        self.load()
        max_seconds = self.card.options.get("max_seconds")
        if max_seconds is not None and clip.duration > float(max_seconds):
            raise InputError(f"audio is {clip.duration:.1f} s long; this model takes at most {max_seconds} s",
                             item=clip.name)
        fixed = self.card.options.get("language")
        if fixed and language and language.split("-")[0] != fixed:
            raise InputError(f"model {self.card.id!r} only transcribes {fixed!r}, not {language!r}", item=clip.name)
        # Whisper's 30 s windows: cap tokens by the speech they can hold (Devanagari needs several per letter).
        window_seconds = min(clip.duration, 30.0)
        max_new_tokens = min(440, int(20 + float(self.card.options.get("tokens_per_second", 25)) * window_seconds))
        segments_iter, info = self._model.transcribe(
            clip.samples, language=fixed or language, beam_size=int(self.card.options.get("beam_size", 1)),
            temperature=list(self.card.options.get("temperatures", (0.0, 0.4, 0.8))),
            max_new_tokens=max_new_tokens, condition_on_previous_text=False, vad_filter=False)
        segments = list(segments_iter)
        weighted = sum(s.avg_logprob * max(len(s.tokens), 1) for s in segments)
        tokens = sum(max(len(s.tokens), 1) for s in segments)
        confidence = math.exp(weighted / tokens) if tokens else 0.0
        return Transcript(
            text=" ".join(s.text.strip() for s in segments).strip(),
            language=str(info.language),
            language_probability=float(info.language_probability),
            confidence=float(confidence),
            duration=clip.duration,
            model_version=self.version,
            segments=tuple(TranscriptSegment(float(s.start), float(s.end), s.text.strip(), float(s.avg_logprob),
                                             float(s.no_speech_prob)) for s in segments),
        )

    def _predict(self, items: Sequence[AudioClip]) -> list[Transcript]:
        return [self.transcribe(clip) for clip in items]
