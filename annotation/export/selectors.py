"""Streaming reads for the export: server-side cursors over value tuples, never model instances."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db.models import QuerySet

from annotation.models import Annotation
from corpora.models import Utterance

CHUNK_SIZE = 20_000

ANNOTATION_ROW_FIELDS = (
    "utterance_id", "utterance__language_id", "utterance__conversation_id", "utterance__speaker_id",
    "origin", "value", "annotator_id", "external_rater", "model_version",
)
UTTERANCE_ROW_FIELDS = (
    "id", "external_id", "language__code", "conversation__external_id", "speaker__external_id", "turn_index",
    "text", "audio", "audio_duration_s",
)


def export_annotations(*, schema_version_id: int, project_id: int | None = None,
                       corpus_id: int | None = None) -> QuerySet[Annotation]:
    """A project's annotations, or a corpus's imported ones (no project), for one schema version."""
    annotations = Annotation.objects.filter(schema_version_id=schema_version_id)
    if project_id is not None:
        return annotations.filter(project_id=project_id)
    if corpus_id is None:
        raise ValueError("give a project or a corpus")
    return annotations.filter(project__isnull=True, utterance__corpus_id=corpus_id)


def export_annotation_rows(annotations: QuerySet[Annotation]) -> Iterator[tuple[Any, ...]]:
    """Rows of ANNOTATION_ROW_FIELDS in utterance order."""
    return annotations.order_by("utterance_id", "id").values_list(*ANNOTATION_ROW_FIELDS).iterator(chunk_size=CHUNK_SIZE)


def export_label_studio_rows(annotations: QuerySet[Annotation]) -> Iterator[tuple[Any, ...]]:
    return annotations.order_by("utterance_id", "id").values_list(
        "utterance_id", "id", "origin", "value", "model_version", "created_at", "lead_time_ms",
    ).iterator(chunk_size=CHUNK_SIZE)


def export_utterance_rows(*, corpus_id: int, first_id: int, last_id: int) -> Iterator[tuple[Any, ...]]:
    """Rows of UTTERANCE_ROW_FIELDS for a corpus's utterances with ids in [first_id, last_id], in id order."""
    return (
        Utterance.objects.filter(corpus_id=corpus_id, id__gte=first_id, id__lte=last_id)
        .order_by("id").values_list(*UTTERANCE_ROW_FIELDS).iterator(chunk_size=CHUNK_SIZE)
    )
