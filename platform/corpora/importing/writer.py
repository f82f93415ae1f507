"""Write validated rows: PostgreSQL COPY with ids taken from the sequence, SQLite batched bulk_create.

The reading phase spools validated rows to a temporary file in chunks (``SpoolChunk``); the caller
opens one transaction and calls ``spool_write``, so a crash leaves nothing behind. Conversations,
speakers and languages are resolved through per-import caches.
"""

from __future__ import annotations

import json
import pickle  # noqa: S403 - only our own spool file, written by this process a moment before
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from django.db import DatabaseError, connection, transaction
from django.db.models import Field, JSONField
from django.utils import timezone

from annotation.models import Annotation, LabelSchemaVersion
from corpora.languages import language_get_or_create
from corpora.models import Conversation, Corpus, Speaker, Utterance
from jobs.models import Job

# Utterance tuple layout in the spool.
(U_EXTERNAL_ID, U_CONVERSATION, U_TURN, U_SPEAKER, U_LANGUAGE, U_TEXT, U_AUDIO, U_DURATION, U_SAMPLE_RATE,
 U_START, U_END, U_METADATA, U_HASH, U_ANSWERS, U_RATER) = range(15)
_SQLITE_BATCH = 900


@dataclass
class SpoolChunk:
    """Validated rows of one chunk of one file."""

    origin: str
    model_version: str
    perspective: str
    utterances: list[tuple[Any, ...]] = field(default_factory=list)
    # (is_new, ref, answers, rater): ref is the job-wide index of a new utterance, or an existing utterance id
    labels: list[tuple[bool, int, dict[str, Any], str]] = field(default_factory=list)


class Spool:
    """Append-only pickle file of chunks."""

    def __init__(self, path: Path):
        self.path = path
        self._fh: IO[bytes] | None = path.open("wb")
        self.chunks = 0

    def append(self, chunk: SpoolChunk) -> None:
        assert self._fh is not None
        pickle.dump(chunk, self._fh, protocol=pickle.HIGHEST_PROTOCOL)
        self.chunks += 1

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __iter__(self) -> Iterator[SpoolChunk]:
        self.close()
        with self.path.open("rb") as fh:
            for _ in range(self.chunks):
                yield pickle.load(fh)  # noqa: S301 - see the import


@dataclass
class WriteResult:
    utterances: int = 0
    annotations: int = 0
    conversations: int = 0
    speakers: int = 0
    audio_names: list[str] = field(default_factory=list)


class _Resolver:
    """external id -> row id for conversations or speakers of one corpus, creating missing ones."""

    def __init__(self, model: type[Conversation] | type[Speaker], corpus: Corpus, *, lock: bool = False):
        self.model: Any = model
        self.corpus = corpus
        self.lock = lock
        self.ids: dict[str, int] = {}
        self.created = 0

    def resolve(self, keys: set[str]) -> None:
        missing = [k for k in keys if k and k not in self.ids]
        if not missing:
            return
        for start in range(0, len(missing), 5000):
            part = missing[start:start + 5000]
            for external_id, pk in self.model.objects.filter(corpus=self.corpus, external_id__in=part).values_list(
                "external_id", "pk"
            ):
                self.ids[external_id] = pk
            if self.lock:
                _lock_rows(self.model._meta.db_table, [self.ids[k] for k in part if k in self.ids])
        new = [k for k in missing if k not in self.ids]
        if new:
            objs = self.model.objects.bulk_create([self.model(corpus=self.corpus, external_id=k) for k in new],
                                                  batch_size=_SQLITE_BATCH)
            for obj in objs:
                assert obj.pk is not None
                self.ids[obj.external_id] = obj.pk
            self.created += len(new)


def _column_defaults(model: type[Any], skip: set[str], now: Any) -> list[tuple[str, str, Any]]:
    """(attname, column, default db value) of every concrete column, so COPY sets every NOT NULL column."""
    out = []
    for f in model._meta.concrete_fields:
        if f.attname in skip:
            continue
        default = f.get_default() if isinstance(f, Field) else None
        if isinstance(f, JSONField):
            default = json.dumps(default if default is not None else {})
        elif getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            default = now
        out.append((f.attname, f.column, default))
    return out


def spool_write(*, spool: Spool, corpus: Corpus, schema_version: LabelSchemaVersion | None, job: Job,
                languages: set[str], on_chunk: Callable[[int], None] | None = None) -> WriteResult:
    """Write every chunk of the spool; must run inside the caller's transaction."""
    result = WriteResult()
    postgres = use_copy()
    skip_triggers = postgres and _skip_foreign_key_triggers()
    language_ids = {}
    for code in sorted(languages):
        language = language_get_or_create(code)
        language_ids[code] = language.pk
    if language_ids:
        corpus.languages.add(*language_ids.values())
    conversations = _Resolver(Conversation, corpus, lock=skip_triggers)
    speakers = _Resolver(Speaker, corpus, lock=skip_triggers)
    if skip_triggers:
        # What the skipped foreign-key triggers would have done: keep the parents from being deleted meanwhile.
        _lock_rows("corpora_language", list(language_ids.values()))
        _lock_rows(Job._meta.db_table, [job.pk])
        if schema_version is not None:
            _lock_rows(LabelSchemaVersion._meta.db_table, [schema_version.pk])
    new_ids = array("q")  # job-wide index of a new utterance -> its id
    now = timezone.now()
    utterance_copy = _CopyFormat(Utterance, now=now, skip=set()) if postgres else None
    annotation_copy = _CopyFormat(Annotation, now=now, skip={"id"}) if postgres else None
    for chunk in spool:
        conversations.resolve({u[U_CONVERSATION] for u in chunk.utterances})
        speakers.resolve({u[U_SPEAKER] for u in chunk.utterances})
        if utterance_copy is not None:
            ids = _copy_utterances(utterance_copy, chunk, corpus, conversations.ids, speakers.ids, language_ids)
        else:
            ids = _bulk_utterances(chunk, corpus, conversations.ids, speakers.ids, language_ids)
        first_index = len(new_ids)
        new_ids.extend(ids)
        annotations: list[tuple[int, dict[str, Any], str]] = []
        for offset, utterance in enumerate(chunk.utterances):
            if utterance[U_ANSWERS] is not None:
                annotations.append((new_ids[first_index + offset], utterance[U_ANSWERS], utterance[U_RATER]))
            if utterance[U_AUDIO]:
                result.audio_names.append(utterance[U_AUDIO])
        existing_targets = []
        for is_new, ref, answers, rater in chunk.labels:
            annotations.append((new_ids[ref] if is_new else ref, answers, rater))
            if not is_new:
                existing_targets.append(ref)
        if skip_triggers and existing_targets:
            _lock_rows(Utterance._meta.db_table, existing_targets)
        if annotations:
            assert schema_version is not None
            if annotation_copy is not None:
                _copy_annotations(annotation_copy, annotations, chunk, schema_version, job)
            else:
                _bulk_annotations(annotations, chunk, schema_version, job)
        result.utterances += len(ids)
        result.annotations += len(annotations)
        if on_chunk is not None:
            on_chunk(len(chunk.utterances) + len(chunk.labels))
    result.conversations = conversations.created
    result.speakers = speakers.created
    return result


def use_copy() -> bool:
    """COPY on PostgreSQL; batched bulk_create elsewhere (SQLite, the embedded default)."""
    return connection.vendor == "postgresql"


def _skip_foreign_key_triggers() -> bool:
    """Skip the per-row foreign-key triggers for this transaction when the database role may.

    Every id this import writes comes from a row it read or created in this transaction, and the
    parents it did not create are locked FOR KEY SHARE (what the triggers would do), so the checks
    are redundant; at a million rows they cost more than the COPY itself. Needs a role allowed to set
    session_replication_role (a superuser, or on PostgreSQL 15+ ``GRANT SET ON PARAMETER``), and is
    not used when the tables carry triggers of their own, which replica mode would silence too.
    """
    tables = [Utterance._meta.db_table, Annotation._meta.db_table]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal AND tgrelid = ANY(%s::regclass[])", [tables]
        )
        row = cursor.fetchone()
        if row is None or row[0]:
            return False
        try:
            with transaction.atomic():
                cursor.execute("SET LOCAL session_replication_role = replica")
        except DatabaseError:
            return False
    return True


def _lock_rows(table: str, ids: list[int]) -> None:
    if not ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT 1 FROM "{table}" WHERE id = ANY(%s) FOR KEY SHARE', [sorted(set(ids))])  # noqa: S608


def _escape(text: str) -> str:
    """COPY text format: backslash, tab, newline and carriage return are escaped."""
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


def _copy_text(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (dict, list)):
        return _escape(json.dumps(value, ensure_ascii=False))
    return _escape(str(value))


class _CopyFormat:
    """Column list of a COPY and a row template holding every column's default, pre-formatted."""

    def __init__(self, model: type[Any], *, now: Any, skip: set[str]):
        columns = _column_defaults(model, skip=skip, now=now)
        self.table = model._meta.db_table
        self.sql = f'COPY "{self.table}" ({", ".join(chr(34) + c + chr(34) for _, c, _ in columns)}) FROM STDIN'
        self.template = [_copy_text(default) for _, _, default in columns]
        self.position = {attname: i for i, (attname, _, _) in enumerate(columns)}


_json_cache: dict[Any, str] = {}


def _answers_text(answers: dict[str, Any]) -> str:
    try:
        key = tuple(answers.items())
        hash(key)
    except TypeError:
        return _escape(json.dumps(answers, ensure_ascii=False))
    cached = _json_cache.get(key)
    if cached is None:
        if len(_json_cache) > 10_000:
            _json_cache.clear()
        cached = _json_cache[key] = _escape(json.dumps(answers, ensure_ascii=False))
    return cached


def _copy_utterances(fmt: _CopyFormat, chunk: SpoolChunk, corpus: Corpus, conversation_ids: dict[str, int],
                     speaker_ids: dict[str, int], language_ids: dict[str, int]) -> list[int]:
    count = len(chunk.utterances)
    if not count:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)", [fmt.table, count]
        )
        ids = [row[0] for row in cursor.fetchall()]
        p = fmt.position
        i_id, i_corpus, i_ext, i_conv, i_turn, i_speaker, i_lang, i_text, i_audio = (
            p["id"], p["corpus_id"], p["external_id"], p["conversation_id"], p["turn_index"], p["speaker_id"],
            p["language_id"], p["text"], p["audio"])
        i_duration, i_rate, i_start, i_end, i_meta, i_hash = (
            p["audio_duration_s"], p["audio_sample_rate"], p["audio_start_s"], p["audio_end_s"], p["metadata"],
            p["content_hash"])
        template = fmt.template
        template[i_corpus] = str(corpus.pk)
        null = "\\N"
        lines = []
        for pk, u in zip(ids, chunk.utterances):
            row = template.copy()
            row[i_id] = str(pk)
            if u[U_EXTERNAL_ID]:
                row[i_ext] = _escape(u[U_EXTERNAL_ID])
            if u[U_CONVERSATION]:
                row[i_conv] = str(conversation_ids[u[U_CONVERSATION]])
            if u[U_TURN] is not None:
                row[i_turn] = str(u[U_TURN])
            if u[U_SPEAKER]:
                row[i_speaker] = str(speaker_ids[u[U_SPEAKER]])
            row[i_lang] = str(language_ids[u[U_LANGUAGE]])
            row[i_text] = _escape(u[U_TEXT])
            if u[U_AUDIO]:
                row[i_audio] = _escape(u[U_AUDIO])
            row[i_duration] = null if u[U_DURATION] is None else repr(float(u[U_DURATION]))
            row[i_rate] = null if u[U_SAMPLE_RATE] is None else str(int(u[U_SAMPLE_RATE]))
            row[i_start] = null if u[U_START] is None else repr(u[U_START])
            row[i_end] = null if u[U_END] is None else repr(u[U_END])
            if u[U_METADATA]:
                row[i_meta] = _escape(json.dumps(u[U_METADATA], ensure_ascii=False))
            row[i_hash] = u[U_HASH]
            lines.append("\t".join(row))
        lines.append("")
        with cursor.cursor.copy(fmt.sql) as copy:
            copy.write("\n".join(lines))
    return ids


def _utterance_values(u: tuple[Any, ...], corpus: Corpus, conversation_ids: dict[str, int],
                      speaker_ids: dict[str, int], language_ids: dict[str, int]) -> dict[str, Any]:
    return {
        "corpus_id": corpus.pk, "external_id": u[U_EXTERNAL_ID],
        "conversation_id": conversation_ids.get(u[U_CONVERSATION]) if u[U_CONVERSATION] else None,
        "turn_index": u[U_TURN], "speaker_id": speaker_ids.get(u[U_SPEAKER]) if u[U_SPEAKER] else None,
        "language_id": language_ids[u[U_LANGUAGE]], "text": u[U_TEXT], "audio": u[U_AUDIO],
        "audio_duration_s": u[U_DURATION], "audio_sample_rate": u[U_SAMPLE_RATE], "audio_start_s": u[U_START],
        "audio_end_s": u[U_END], "metadata": u[U_METADATA], "content_hash": u[U_HASH],
    }


def _bulk_utterances(chunk: SpoolChunk, corpus: Corpus, conversation_ids: dict[str, int],
                     speaker_ids: dict[str, int], language_ids: dict[str, int]) -> list[int]:
    objs = [Utterance(**_utterance_values(u, corpus, conversation_ids, speaker_ids, language_ids))
            for u in chunk.utterances]
    Utterance.objects.bulk_create(objs, batch_size=_SQLITE_BATCH)
    ids = []
    for obj in objs:
        assert obj.pk is not None
        ids.append(obj.pk)
    return ids


def _annotation_values(utterance_id: int, answers: dict[str, Any], rater: str, chunk: SpoolChunk,
                       schema_version: LabelSchemaVersion, job: Job) -> dict[str, Any]:
    return {
        "utterance_id": utterance_id, "project_id": None, "schema_version_id": schema_version.pk, "value": answers,
        "perspective": chunk.perspective, "origin": chunk.origin, "annotator_id": None,
        "external_rater": rater if chunk.origin == "human" else "", "model_version": chunk.model_version,
        "import_job_id": job.pk,
    }


def _copy_annotations(fmt: _CopyFormat, annotations: list[tuple[int, dict[str, Any], str]], chunk: SpoolChunk,
                      schema_version: LabelSchemaVersion, job: Job) -> None:
    p = fmt.position
    template = fmt.template.copy()
    template[p["schema_version_id"]] = str(schema_version.pk)
    template[p["perspective"]] = _escape(chunk.perspective)
    template[p["origin"]] = _escape(chunk.origin)
    template[p["model_version"]] = _escape(chunk.model_version)
    template[p["import_job_id"]] = str(job.pk)
    i_utterance, i_value, i_rater = p["utterance_id"], p["value"], p["external_rater"]
    human = chunk.origin == "human"
    lines = []
    for utterance_id, answers, rater in annotations:
        row = template.copy()
        row[i_utterance] = str(utterance_id)
        row[i_value] = _answers_text(answers)
        if human:
            row[i_rater] = _escape(rater)
        lines.append("\t".join(row))
    lines.append("")
    with connection.cursor() as cursor, cursor.cursor.copy(fmt.sql) as copy:
        copy.write("\n".join(lines))


def _bulk_annotations(annotations: list[tuple[int, dict[str, Any], str]], chunk: SpoolChunk,
                      schema_version: LabelSchemaVersion, job: Job) -> None:
    Annotation.objects.bulk_create(
        [Annotation(**_annotation_values(utterance_id, answers, rater, chunk, schema_version, job))
         for utterance_id, answers, rater in annotations],
        batch_size=_SQLITE_BATCH,
    )
