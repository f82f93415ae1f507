"""Where an utterance's text came from, as screens show it: an ASR transcript names its model, version,
language and confidence, and keeps each word's probability (so a screen can mark the doubtful words)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from corpora.models import TranscriptSource


def transcript_provenance(source: str, model_version: str, confidence: float | None,
                          metadata: Any) -> dict[str, Any] | None:
    """The provenance of an ASR transcript, or None when the text came from the source corpus or a person."""
    if source != TranscriptSource.ASR:
        return None
    asr = metadata.get("asr") if isinstance(metadata, dict) else None
    asr = asr if isinstance(asr, dict) else {}
    raw_words = asr.get("words")
    words: list[Any] = raw_words if isinstance(raw_words, list) else []
    return {
        "source": TranscriptSource.ASR.value,
        "model": str(asr.get("model", "")),
        "model_version": model_version,
        "confidence": confidence,
        "language": str(asr.get("language", "")),
        "language_source": str(asr.get("language_source", "")),
        "words": [{"word": w[0], "start": w[1], "end": w[2], "probability": w[3]}
                  for w in words if isinstance(w, list) and len(w) == 4],
    }


class TranscriptWordSerializer(serializers.Serializer):
    word = serializers.CharField()
    start = serializers.FloatField()
    end = serializers.FloatField()
    probability = serializers.FloatField()


class TranscriptSerializer(serializers.Serializer):
    """An automatic transcript's provenance (null for text from the source corpus or a person)."""

    source = serializers.CharField(help_text='"asr"')  # type: ignore[assignment]
    model = serializers.CharField(allow_blank=True, help_text="Model card id, e.g. whisper-base")
    model_version = serializers.CharField()
    confidence = serializers.FloatField(allow_null=True, help_text="exp of the mean token log-probability, 0–1")
    language = serializers.CharField(allow_blank=True)
    language_source = serializers.CharField(allow_blank=True, help_text='"tag" (the utterance\'s), "fixed", "detected"')
    words = TranscriptWordSerializer(many=True)
