"""Corpora and what they hold: languages, conversations, speakers and utterances."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class TextDirection(models.TextChoices):
    LTR = "ltr", "left to right"
    RTL = "rtl", "right to left"


class Language(models.Model):
    """A BCP-47 language tag with the script and direction its text is rendered in."""

    code = models.CharField(max_length=35, unique=True, help_text="BCP-47 tag, e.g. mr, hi-Latn, ar-EG")
    name = models.CharField(max_length=100)
    script = models.CharField(max_length=4, help_text="ISO 15924 script code, e.g. Deva, Arab, Latn")
    direction = models.CharField(max_length=3, choices=TextDirection.choices, default=TextDirection.LTR)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class Corpus(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    license = models.CharField(max_length=100, help_text="SPDX id or licence name, e.g. CC-BY-SA-4.0")
    source = models.TextField(blank=True, help_text="Where the data came from: URL, citation")
    languages = models.ManyToManyField(Language, blank=True, related_name="corpora")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "corpora"

    def __str__(self) -> str:
        return self.name


class Conversation(models.Model):
    corpus = models.ForeignKey(Corpus, on_delete=models.CASCADE, related_name="conversations")
    external_id = models.CharField(max_length=200)
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["corpus", "external_id"], name="conversation_unique_per_corpus")]

    def __str__(self) -> str:
        return self.external_id


class Speaker(models.Model):
    corpus = models.ForeignKey(Corpus, on_delete=models.CASCADE, related_name="speakers")
    external_id = models.CharField(max_length=200)
    attributes = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["corpus", "external_id"], name="speaker_unique_per_corpus")]

    def __str__(self) -> str:
        return self.external_id


class TranscriptSource(models.TextChoices):
    SOURCE = "source", "from the source corpus"
    HUMAN = "human", "transcribed by a person"
    ASR = "asr", "automatic speech recognition"


class Utterance(models.Model):
    # Foreign keys whose lookups the composite indexes below already serve carry no index of their own:
    # every index costs a bulk import time (a million-row COPY maintains each one).
    corpus = models.ForeignKey(Corpus, on_delete=models.CASCADE, related_name="utterances", db_index=False)
    external_id = models.CharField(max_length=200, blank=True, default="")
    conversation = models.ForeignKey(
        Conversation, null=True, blank=True, on_delete=models.CASCADE, related_name="utterances", db_index=False
    )
    turn_index = models.PositiveIntegerField(null=True, blank=True)
    speaker = models.ForeignKey(
        Speaker, null=True, blank=True, on_delete=models.SET_NULL, related_name="utterances", db_index=False
    )
    language = models.ForeignKey(Language, on_delete=models.PROTECT, related_name="utterances")
    text = models.TextField(blank=True)
    audio = models.FileField(upload_to="audio/", max_length=500, blank=True, default="")
    audio_duration_s = models.FloatField(null=True, blank=True)
    audio_sample_rate = models.PositiveIntegerField(null=True, blank=True)
    audio_start_s = models.FloatField(null=True, blank=True, help_text="Offset in the source recording")
    audio_end_s = models.FloatField(null=True, blank=True)
    transcript_source = models.CharField(
        max_length=10, choices=TranscriptSource.choices, default=TranscriptSource.SOURCE
    )
    transcript_model = models.CharField(max_length=200, blank=True, default="")
    transcript_confidence = models.FloatField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    content_hash = models.CharField(max_length=32, help_text="blake2b-128 of the utterance content, hex")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["corpus", "content_hash"], name="utterance_unique_content_per_corpus"),
            models.UniqueConstraint(
                fields=["corpus", "external_id"],
                condition=~Q(external_id=""),
                name="utterance_unique_external_id_per_corpus",
            ),
            models.CheckConstraint(
                condition=~Q(text="") | ~Q(audio=""), name="utterance_has_text_or_audio"
            ),
            models.CheckConstraint(
                condition=Q(audio_duration_s__isnull=True) | Q(audio_duration_s__gte=0),
                name="utterance_audio_duration_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(audio_start_s__isnull=True) | Q(audio_end_s__isnull=True) | Q(audio_end_s__gte=models.F("audio_start_s")),
                name="utterance_audio_offsets_ordered",
            ),
            models.CheckConstraint(
                condition=Q(transcript_confidence__isnull=True)
                | (Q(transcript_confidence__gte=0) & Q(transcript_confidence__lte=1)),
                name="utterance_transcript_confidence_0_1",
            ),
        ]
        indexes = [
            models.Index(fields=["corpus", "language"], name="utterance_corpus_language"),
            models.Index(fields=["conversation", "turn_index"], name="utterance_conversation_turn"),
            models.Index(fields=["speaker"], name="utterance_speaker"),
        ]

    def __str__(self) -> str:
        return self.external_id or f"utterance {self.pk}"

    @property
    def has_audio(self) -> bool:
        return bool(self.audio)
