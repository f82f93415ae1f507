"""The annotator's hot path on PostgreSQL: submit an answer and reserve the next item in one database round trip.

``annotation.distribution`` holds the algorithm as ORM services (used on SQLite, and by every other operation);
here the same steps run inside the SQL functions of migration ``0005_distribution_sql_functions`` (``sentio_annotation_submit`` as
replaced by ``0010_security_submit_replay_conflict``), so one request
costs two prepared queries (token, function) instead of about twenty-five. The answer is validated in
Python against the cached schema first, exactly as the ORM service does, and the function's outcomes become the
same exceptions. ``tests/distribution`` runs both paths over the same scenarios.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, connection
from django.utils import timezone
from psycopg.types.json import Jsonb
from rest_framework import serializers

from annotation.distribution.services import (
    MESSAGE_ALREADY_ANNOTATED,
    MESSAGE_CLIENT_ID_CONFLICT,
    MESSAGE_CLIENT_ID_REUSED,
    MESSAGE_ITEM_COMPLETE,
    NotFoundError,
    SubmissionRefusedError,
    disagreement_key,
    random_offset,
)
from annotation.models import LabelSchemaVersion
from annotation.schema import SchemaError, annotation_value_clean
from config.db import fetchone_prepared
from corpora.models import Utterance
from corpora.transcripts import transcript_provenance

_PROJECT_VERSIONS: dict[int, LabelSchemaVersion] = {}  # project id -> its schema version, as last seen
_PROJECT_VERSIONS_MAX = 1024
_TIMESTAMP_FIELDS = ("created_at", "updated_at", "reviewed_at")


_BIGINT_MAX = 2**63 - 1


def _ids_in_range(*ids: int | None) -> None:
    """Ids beyond the bigint columns (a path accepts any digits) exist nowhere: NotFoundError, not a database error."""
    if any(value is not None and not 0 < value <= _BIGINT_MAX for value in ids):
        raise NotFoundError()


def enabled() -> bool:
    """Whether the SQL functions exist here: PostgreSQL only; SQLite uses the ORM services."""
    return connection.vendor == "postgresql"


def member_check(*, project_id: int, user_id: int | None) -> LabelSchemaVersion:
    """The project's schema version if the user is a member; NotFoundError otherwise (outsiders learn nothing)."""
    row = None
    _ids_in_range(project_id)
    if user_id is not None:
        row = fetchone_prepared(
            "SELECT p.schema_version_id FROM annotation_project p WHERE p.id = %s::bigint AND EXISTS "
            "(SELECT 1 FROM annotation_membership m WHERE m.project_id = p.id AND m.user_id = %s::integer)",
            [project_id, user_id],
        )
    if row is None:
        raise NotFoundError()
    return _remember(project_id, row[0])


def _remember(project_id: int, version_id: int) -> LabelSchemaVersion:
    version = _PROJECT_VERSIONS.get(project_id)
    if version is None or version.pk != version_id:
        if len(_PROJECT_VERSIONS) >= _PROJECT_VERSIONS_MAX:
            _PROJECT_VERSIONS.clear()
        # Versions never change, so the object (and its parsed questions) serves every later request.
        version = _PROJECT_VERSIONS[project_id] = LabelSchemaVersion.objects.get(pk=version_id)
    return version


def _known_version(project_id: int, user_id: int | None) -> LabelSchemaVersion:
    """The version to validate against without a query; the SQL function confirms it (and membership)."""
    version = _PROJECT_VERSIONS.get(project_id)
    return version if version is not None else member_check(project_id=project_id, user_id=user_id)


_DATETIME_FIELD = serializers.DateTimeField()


def _iso(value: str | None) -> str | None:
    """A timestamp from the database's JSON, written as the ORM path's serializers write it."""
    return None if value is None else _DATETIME_FIELD.to_representation(datetime.fromisoformat(value))


def _audio_url(name: str | None) -> str | None:
    return Utterance._meta.get_field("audio").storage.url(name) if name else None  # type: ignore[attr-defined]


def _annotation_out(raw: dict[str, Any]) -> dict[str, Any]:
    for key in _TIMESTAMP_FIELDS:
        raw[key] = _iso(raw[key])
    return raw


def _item_out(project_id: int, raw: dict[str, Any]) -> dict[str, Any]:
    """The same payload as ``distribution_selectors.item_view_get``."""
    utterance = raw["utterance"]
    version = _remember(project_id, raw["schema_version_id"])
    return {
        "project_id": project_id,
        "utterance": {
            "id": utterance["id"], "text": utterance["text"], "language": utterance["language"],
            "audio_url": _audio_url(utterance["audio"]), "audio_duration_s": utterance["audio_duration_s"],
            "speaker": utterance["speaker"], "conversation": utterance["conversation"],
            "turn_index": utterance["turn_index"],
            "transcript": transcript_provenance(utterance["transcript_source"], utterance["transcript_model"],
                                                utterance["transcript_confidence"], {"asr": utterance["asr"]}),
        },
        "context": [
            {
                "utterance_id": turn["utterance_id"], "turn_index": turn["turn_index"], "speaker": turn["speaker"],
                "text": turn["text"], "language": turn["language"], "audio_url": _audio_url(turn["audio"]),
            }
            for turn in raw["context"]
        ],
        "suggestion_policy": raw["suggestion_policy"],
        "suggestion": raw["suggestion"],
        "schema": {"version_id": version.pk, "questions": version.questions, "perspectives": version.perspectives},
        "reservation": {"expires_at": _iso(raw["expires_at"]), "resumed": raw["resumed"]},
    }


def _call(sql: str, params: list[Any]) -> dict[str, Any]:
    row = fetchone_prepared(sql, params)
    assert row is not None  # a function call always returns one row
    return json.loads(row[0]) if isinstance(row[0], str) else row[0]


def _next_out(project_id: int, raw: dict[str, Any]) -> dict[str, Any] | None:
    if raw["outcome"] == "not_found":
        raise NotFoundError()
    return _item_out(project_id, raw) if raw["outcome"] == "item" else None


def next_item(*, project_id: int, user_id: int | None) -> dict[str, Any] | None:
    """Reserve and describe the caller's next item (the held one again while held); None when nothing is left."""
    if user_id is None:
        raise NotFoundError()
    _ids_in_range(project_id)
    raw = _call(
        "SELECT sentio_next_item(%s::bigint, %s::integer, %s::integer, %s::timestamptz)",
        [project_id, user_id, random_offset(project_id, user_id), timezone.now()],
    )
    return _next_out(project_id, raw)


@dataclass(frozen=True)
class SubmitOutcome:
    annotation: dict[str, Any]
    created: bool
    late: bool
    next: dict[str, Any] | None


_SUBMIT_SQL = (
    "SELECT sentio_submit_and_next(%s::bigint, %s::integer, %s::bigint, %s::uuid, %s::jsonb, %s::integer, %s::text, "
    "%s::bigint, %s::text, %s::timestamptz, %s::integer, %s::boolean)"
)


def _validated(project_id: int, user_id: int | None, version: LabelSchemaVersion, value: Any, perspective: str,
               lead_time_ms: int | None) -> dict[str, Any]:
    try:
        cleaned = annotation_value_clean(schema_version=version, value=value, perspective=perspective)
        if lead_time_ms is not None and lead_time_ms < 0:
            raise SchemaError({"lead_time_ms": "must be zero or more milliseconds"})
    except SchemaError:
        # Only members may learn how their answer failed the project's schema.
        member_check(project_id=project_id, user_id=user_id)
        raise
    return cleaned


def submit(
    *, project_id: int, user_id: int | None, utterance_id: int, client_id: uuid.UUID, value: Any,
    lead_time_ms: int | None, perspective: str, want_next: bool,
) -> SubmitOutcome:
    """``distribution.annotation_submit`` (and, with ``want_next``, ``next_item_reserve``) in one transaction."""
    if user_id is None:
        raise NotFoundError()
    _ids_in_range(project_id, utterance_id)
    version = _known_version(project_id, user_id)
    for _attempt in range(2):
        cleaned = _validated(project_id, user_id, version, value, perspective, lead_time_ms)
        params = [
            project_id, user_id, utterance_id, client_id, Jsonb(cleaned), lead_time_ms, perspective, version.pk,
            disagreement_key(version), timezone.now(), random_offset(project_id, user_id), want_next,
        ]
        try:
            raw = _call(_SUBMIT_SQL, params)
        except IntegrityError:
            # Another user's request took this client_id between our check and insert; the retry reports it.
            raw = _call(_SUBMIT_SQL, params)
        if raw["outcome"] != "schema_changed":
            break
        version = member_check(project_id=project_id, user_id=user_id)
    outcome = raw["outcome"]
    if outcome in ("not_found", "schema_changed"):
        raise NotFoundError()
    if outcome == "client_id_reused":
        raise SubmissionRefusedError(MESSAGE_CLIENT_ID_REUSED, code="client_id_reused")
    if outcome == "client_id_conflict":
        raise SubmissionRefusedError(
            MESSAGE_CLIENT_ID_CONFLICT, code="client_id_conflict", annotation=_annotation_out(raw["annotation"])
        )
    if outcome == "already_annotated":
        raise SubmissionRefusedError(
            MESSAGE_ALREADY_ANNOTATED, code="already_annotated", annotation_id=raw["annotation_id"]
        )
    if outcome == "item_complete":
        raise SubmissionRefusedError(MESSAGE_ITEM_COMPLETE, code="item_complete")
    following = _next_out(project_id, raw["next"]) if want_next else None
    return SubmitOutcome(
        annotation=_annotation_out(raw["annotation"]), created=outcome == "created", late=bool(raw.get("late")),
        next=following,
    )
