"""Speech recognition with Whisper through faster-whisper (CTranslate2): int8 on CPU, float16 on CUDA.

Clips are transcribed in batches with faster-whisper's ``BatchedInferencePipeline``: voice activity detection
(Silero VAD) cuts each clip into speech windows of at most 30 s, and the windows of many clips go through the
encoder and decoder together, so short utterances no longer take one padded 30-s window each, one at a time.
Each clip is decoded in its own language: the utterance's language tag when Whisper knows it, else the language
Whisper detects in that clip. Word timings and word probabilities are kept.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from models_zoo.audio import TARGET_SAMPLE_RATE, AudioClip
from models_zoo.backends.base import Backend
from models_zoo.cards import Availability, ModelCard, Task
from models_zoo.device import DeviceChoice, ctranslate2_device
from models_zoo.errors import InputError, PermanentModelError
from models_zoo.outputs import Transcript, TranscriptSegment, TranscriptWord

WINDOW_SECONDS = 30.0  # Whisper's input window
VAD_MIN_SILENCE_MS = 160  # what faster-whisper's batched pipeline uses: split at short pauses too


@dataclass(frozen=True)
class _Window:
    clip: int  # index of the clip in the batch
    start: int  # samples, in the clip
    end: int


def whisper_language(tag: str | None) -> str | None:
    """The Whisper language code for a BCP-47 tag ("de-AT" -> "de"), or None when Whisper does not know it."""
    if not tag:
        return None
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    base = tag.replace("_", "-").split("-")[0].lower()
    return base if base in _LANGUAGE_CODES else None


def speech_windows(samples: np.ndarray, *, vad: bool = True) -> list[tuple[int, int]]:
    """Spans (in samples) of at most 30 s that hold the clip's speech, cut at pauses; the whole clip in 30-s
    pieces when VAD hears nothing (synthetic or noisy speech can fool it, and a missed clip is worse)."""
    limit = int(WINDOW_SECONDS * TARGET_SAMPLE_RATE)
    spans: list[tuple[int, int]] = []
    if vad:
        from faster_whisper.vad import VadOptions, get_speech_timestamps

        speech = get_speech_timestamps(samples, VadOptions(max_speech_duration_s=WINDOW_SECONDS,
                                                           min_silence_duration_ms=VAD_MIN_SILENCE_MS))
        for part in speech:
            start, end = int(part["start"]), int(part["end"])
            if spans and end - spans[-1][0] <= limit:
                spans[-1] = (spans[-1][0], end)  # keep the pause inside the window: Whisper wants context
            else:
                spans.append((start, min(end, start + limit)))
    if not spans:
        spans = [(start, min(start + limit, len(samples))) for start in range(0, len(samples), limit)]
    return spans


class FasterWhisperBackend(Backend[AudioClip, Transcript]):
    """Options: ``language`` (fixed, e.g. "en" for .en models), ``beam_size``, ``max_seconds`` (longer clips are
    refused as per-item errors), ``threads`` (CPU), ``batch_size`` (windows per encoder call; default from the
    device), ``tokens_per_second`` (caps decoding so a hallucinating loop ends early), ``vad`` (default on)."""

    tasks: ClassVar = frozenset({Task.ASR})
    requires: ClassVar = ("faster_whisper", "ctranslate2")
    device: str = "cpu"
    _choice: DeviceChoice = DeviceChoice("cpu", False)

    @classmethod
    def check_files(cls, path: Path, card: ModelCard) -> Availability:
        # PACKAGE_PARTS models are assembled on first load; the parts were checked when locating them.
        if path.exists():
            missing = [name for name in ("model.bin", "config.json") if not (path / name).is_file()]
            if missing:
                return Availability(False, f"{path} is not a CTranslate2 Whisper folder (missing {', '.join(missing)})")
        return Availability(True)

    def _load(self, path: Path) -> None:
        from faster_whisper import BatchedInferencePipeline, WhisperModel

        # The batched pipeline logs every call at INFO ("Processing audio with duration ..."): not worker-log news.
        logging.getLogger("faster_whisper").setLevel(logging.WARNING)
        choice = ctranslate2_device()
        self._choice = choice
        self.device = choice.device
        self._model: Any = WhisperModel(str(path), device=choice.device,
                                        compute_type="float16" if choice.half_precision else "int8",
                                        cpu_threads=int(self.card.options.get("threads", 0)), local_files_only=True)
        self._pipeline: Any = BatchedInferencePipeline(self._model)

    @property
    def batch_items(self) -> int:
        self.load()
        return int(self.card.options.get("batch_size") or self._choice.batch_items(cpu=8, gpu=16, cap=128))

    def transcribe(self, clip: AudioClip, *, language: str | None = None) -> Transcript:
        result = self.transcribe_batch([clip], [language])[0]
        if isinstance(result, InputError):
            raise result
        return result

    def transcribe_batch(self, clips: Sequence[AudioClip],
                         languages: Sequence[str | None] | None = None) -> list[Transcript | InputError]:
        """One transcript (or the reason it cannot be made) per clip, in order. ``languages``: the clips'
        language tags (BCP-47); a tag Whisper does not know, or None, means the language is detected."""
        self.load()
        tags = list(languages) if languages is not None else [None] * len(clips)
        if len(tags) != len(clips):
            raise PermanentModelError(f"{len(tags)} language tags for {len(clips)} clips")
        results: list[Transcript | InputError | None] = [None] * len(clips)
        by_language: dict[tuple[str, str], list[int]] = defaultdict(list)
        language_probability: dict[int, float] = {}
        for index, (clip, tag) in enumerate(zip(clips, tags)):
            refused = self._refusal(clip, tag)
            if refused is not None:
                results[index] = refused
                continue
            fixed = self.card.options.get("language")
            known = whisper_language(tag)
            if fixed:
                by_language[(str(fixed), "fixed")].append(index)
            elif known:
                by_language[(known, "tag")].append(index)
            else:
                detected, probability, _ = self._model.detect_language(audio=clip.samples)
                language_probability[index] = float(probability)
                by_language[(str(detected), "detected")].append(index)
        vad = bool(self.card.options.get("vad", True))
        per_call = 4 * self.batch_items  # windows per pipeline call: bounded audio in memory, several batches
        for (language, source), indices in by_language.items():
            pending: list[_Window] = []
            for position, index in enumerate(indices):
                pending += [_Window(index, start, end) for start, end in speech_windows(clips[index].samples, vad=vad)]
                if len(pending) >= per_call or position == len(indices) - 1:
                    for clip_index, transcript in self._decode(clips, pending, language, source,
                                                               language_probability).items():
                        results[clip_index] = transcript
                    pending = []
        return [r if r is not None else InputError("no transcript was produced", item=clips[i].name)
                for i, r in enumerate(results)]

    def _refusal(self, clip: AudioClip, tag: str | None) -> InputError | None:
        max_seconds = self.card.options.get("max_seconds")
        if max_seconds is not None and clip.duration > float(max_seconds):
            return InputError(f"audio is {clip.duration:.1f} s long; this model takes at most {max_seconds} s",
                              item=clip.name)
        fixed = self.card.options.get("language")
        if fixed and tag and tag.replace("_", "-").split("-")[0].lower() not in (fixed, "und", "mul", "zxx"):
            return InputError(f"model {self.card.id!r} only transcribes {fixed!r}, not {tag!r}", item=clip.name)
        return None

    def _decode(self, clips: Sequence[AudioClip], windows: list[_Window], language: str, source: str,
                detected_probability: dict[int, float]) -> dict[int, Transcript]:
        """Decode all windows of several clips in one batched call; return each clip's transcript."""
        pieces = [clips[w.clip].samples[w.start:w.end] for w in windows]
        offsets = np.cumsum([0] + [len(p) for p in pieces])
        audio = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
        longest = max((w.end - w.start) / TARGET_SAMPLE_RATE for w in windows)
        # Whisper's 30-s windows: cap tokens by the speech they can hold (Devanagari needs several per letter).
        max_new_tokens = min(440, int(20 + float(self.card.options.get("tokens_per_second", 25)) * longest))
        segments, _info = self._pipeline.transcribe(
            audio, language=language, clip_timestamps=[
                {"start": offsets[i] / TARGET_SAMPLE_RATE, "end": offsets[i + 1] / TARGET_SAMPLE_RATE}
                for i in range(len(windows))],
            batch_size=self.batch_items, beam_size=int(self.card.options.get("beam_size", 1)),
            temperature=float(self.card.options.get("temperature", 0.0)), max_new_tokens=max_new_tokens,
            word_timestamps=True, without_timestamps=True, log_progress=False)
        per_clip: dict[int, list[tuple[_Window, float, Any]]] = defaultdict(list)
        starts = offsets[:-1] / TARGET_SAMPLE_RATE
        for segment in segments:
            # A segment's times are rounded (and moved to its words): its middle still lies in its own window.
            middle = (float(segment.start) + float(segment.end)) / 2
            where = int(np.searchsorted(starts, middle, side="right") - 1)
            window = windows[max(where, 0)]
            # Times in the concatenated audio -> times in the window's clip.
            shift = window.start / TARGET_SAMPLE_RATE - float(starts[max(where, 0)])
            per_clip[window.clip].append((window, shift, segment))
        for window in windows:
            per_clip.setdefault(window.clip, [])
        probability = {i: detected_probability.get(i, 1.0) for i in per_clip}
        return {index: self._transcript(clips[index], found, language, source, probability[index])
                for index, found in per_clip.items()}

    def _transcript(self, clip: AudioClip, found: list[tuple[_Window, float, Any]], language: str, source: str,
                    language_probability: float) -> Transcript:
        segments: list[TranscriptSegment] = []
        words: list[TranscriptWord] = []
        weighted = 0.0
        tokens = 0

        def at(seconds: float, shift: float) -> float:
            # Whisper rounds times to 10 ms: keep them inside the clip.
            return round(min(max(float(seconds) + shift, 0.0), clip.duration), 3)

        for _window, shift, segment in found:
            text = segment.text.strip()
            n = max(len(segment.tokens), 1)
            weighted += float(segment.avg_logprob) * n
            tokens += n
            segments.append(TranscriptSegment(at(segment.start, shift), at(segment.end, shift), text,
                                              float(segment.avg_logprob), float(segment.no_speech_prob)))
            words += [TranscriptWord(word.word.strip(), at(word.start, shift), at(word.end, shift),
                                     round(float(word.probability), 4))
                      for word in (segment.words or ()) if word.word.strip()]
        return Transcript(
            text=" ".join(s.text for s in segments if s.text).strip(),
            language=language,
            language_probability=language_probability,
            confidence=float(math.exp(weighted / tokens)) if tokens else 0.0,
            duration=clip.duration,
            model_version=self.version,
            segments=tuple(segments),
            words=tuple(words),
            language_source=source,
            model_id=self.card.id,
        )

    def predict_each(self, items: Sequence[AudioClip]) -> list[Transcript | InputError]:
        return self.transcribe_batch(items)

    def _predict(self, items: Sequence[AudioClip]) -> list[Transcript]:
        results = self.transcribe_batch(items)
        for result in results:
            if isinstance(result, InputError):
                raise result
        return [r for r in results if isinstance(r, Transcript)]
