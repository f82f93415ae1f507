"""Write validated rows: PostgreSQL COPY with ids taken from the sequence, SQLite batched bulk_create.

The reading phase spools validated rows to a temporary file in chunks (``SpoolChunk``); the caller
opens one transaction and calls ``spool_write``, so a crash leaves nothing behind. Conversations,
speakers and languages are resolved through per-import caches.
"""

from __future__ import annotations

import json
import pickle  # noqa: S403 - only our own spool file, written by this process a moment before
from array import array
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from django.db import DatabaseError, connection, transaction
from django.db.models import Field, JSONField
from django.utils import timezone

from annotation.models import Annotation, LabelSchemaVersion
from corpora.importing.fast import CompactRows
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
    compact: CompactRows | None = None  # utterances from the fast path, column-wise (instead of ``utterances``)


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
        self.texts: dict[str, str] = {"": "\\N"}  # the ids as COPY text; no key: NULL
        self.created = 0
        # None in the corpus when the write began (a new corpus): every key not created here yet is new, so no
        # look-ups. Another writer adding one meanwhile would meet the unique constraint: the import fails whole.
        self.none_before = not self.model.objects.filter(corpus=corpus).exists()

    def resolve(self, keys: set[str]) -> None:
        missing = [k for k in keys if k and k not in self.ids]
        if not missing:
            return
        for start in range(0, len(missing) if not self.none_before else 0, 5000):
            part = missing[start:start + 5000]
            for external_id, pk in self.model.objects.filter(corpus=self.corpus, external_id__in=part).values_list(
                "external_id", "pk"
            ):
                self.ids[external_id] = pk
                self.texts[external_id] = str(pk)
            if self.lock:
                _lock_rows(self.model._meta.db_table, [self.ids[k] for k in part if k in self.ids])
        new = [k for k in missing if k not in self.ids]
        if new and use_copy():
            # COPY with ids from the sequence: a model instance each would cost more than the utterances' COPY.
            fmt = _CopyFormat(self.model, now=None, skip=set())
            fmt.template[fmt.position["corpus_id"]] = str(self.corpus.pk)
            pattern = _row_pattern(fmt, ["id", "external_id"]).format
            ids = _reserve_ids(fmt.table, len(new))
            lines = [pattern(pk, _escape(k)) for pk, k in zip(ids, new)]
            lines.append("")
            with _copy(fmt.sql) as copy:
                copy.write("\n".join(lines))
            for pk, k in zip(ids, new):
                self.ids[k] = pk
                self.texts[k] = str(pk)
            self.created += len(new)
        elif new:
            objs = self.model.objects.bulk_create([self.model(corpus=self.corpus, external_id=k) for k in new],
                                                  batch_size=_SQLITE_BATCH)
            for obj in objs:
                assert obj.pk is not None
                self.ids[obj.external_id] = obj.pk
                self.texts[obj.external_id] = str(obj.pk)
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
    _sequences.clear()
    skip_triggers = postgres and _skip_foreign_key_triggers()
    language_ids: dict[str, int] = {}

    def need_languages(codes: set[str]) -> None:
        # Languages are created as chunks need them: while reading runs alongside, later ones are not known yet.
        new = sorted(code for code in codes if code not in language_ids)
        for code in new:
            language_ids[code] = language_get_or_create(code).pk
        if skip_triggers and new:
            _lock_rows("corpora_language", [language_ids[code] for code in new])

    conversations = _Resolver(Conversation, corpus, lock=skip_triggers)
    speakers = _Resolver(Speaker, corpus, lock=skip_triggers)
    if skip_triggers:
        # What the skipped foreign-key triggers would have done: keep the parents from being deleted meanwhile.
        _lock_rows(Job._meta.db_table, [job.pk])
        if schema_version is not None:
            _lock_rows(LabelSchemaVersion._meta.db_table, [schema_version.pk])
    new_ids = array("q")  # job-wide index of a new utterance -> its id
    now = timezone.now()
    utterance_copy = _CopyFormat(Utterance, now=now, skip=set()) if postgres else None
    annotation_copy = _CopyFormat(Annotation, now=now, skip={"id"}) if postgres else None
    # A helper thread formats the next fast-path chunk while this one waits for the COPY of the previous one.
    formatter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-format") if postgres else None
    pending: list[tuple[Future[tuple[str, list[str]]], int]] = []
    fixed = {"corpus_id": str(corpus.pk), "import_job_id": str(job.pk),
             "schema_version_id": str(schema_version.pk) if schema_version is not None else "\\N"}

    def write_pending() -> None:
        while pending:
            assert utterance_copy is not None and annotation_copy is not None
            future, count = pending.pop(0)
            utterance_text, annotation_lines = future.result()
            result.utterances += count
            result.annotations += len(annotation_lines)
            _write_formatted(utterance_copy, annotation_copy, utterance_text, annotation_lines)
            if on_chunk is not None:
                on_chunk(count)

    def _write_general_chunk(chunk: SpoolChunk) -> None:
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
                _copy_annotations(annotation_copy, _annotation_lines(annotation_copy, annotations, chunk,
                                                                     schema_version, job))
            else:
                _bulk_annotations(annotations, chunk, schema_version, job)
        result.utterances += len(ids)
        result.annotations += len(annotations)
        if on_chunk is not None:
            on_chunk(len(chunk.utterances) + len(chunk.labels))

    try:
        for chunk in spool:
            compact = chunk.compact
            need_languages(set(compact.languages) if compact is not None
                           else {u[U_LANGUAGE] for u in chunk.utterances})
            if compact is not None:
                conversations.resolve(set(compact.conversations))
                speakers.resolve(set(compact.speakers))
                if formatter is not None and utterance_copy is not None and annotation_copy is not None:
                    ids = _reserve_ids(utterance_copy.table, len(compact))
                    new_ids.extend(ids)
                    future = formatter.submit(
                        _format_compact, utterance_copy, annotation_copy, chunk, compact, ids, fixed,
                        conversations.texts, speakers.texts, {k: str(v) for k, v in language_ids.items()})
                    write_pending()  # the chunks before this one, while it is being formatted
                    pending.append((future, len(ids)))
                    continue
                chunk.utterances = _expand(compact)
            write_pending()  # in order: labels below may point at utterances of earlier chunks
            _write_general_chunk(chunk)
        write_pending()
    finally:
        if formatter is not None:
            formatter.shutdown(wait=True, cancel_futures=True)
    need_languages(languages)
    if language_ids:
        corpus.languages.add(*language_ids.values())
    result.conversations = conversations.created
    result.speakers = speakers.created
    return result


@contextmanager
def _copy(sql: str) -> Iterator[Any]:
    """A COPY through psycopg's cursor, its errors turned into Django's as for any other query (a dropped
    connection is then an OperationalError the import task retries, a conflict an IntegrityError)."""
    with connection.wrap_database_errors, connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        yield copy


def use_copy() -> bool:
    """COPY on PostgreSQL; batched bulk_create elsewhere (SQLite, the embedded default)."""
    return connection.vendor == "postgresql"


def _skip_foreign_key_triggers(tables: Sequence[str] | None = None) -> bool:
    """Skip the per-row foreign-key triggers for this transaction when the database role may.

    Every id this import writes comes from a row it read or created in this transaction, and the
    parents it did not create are locked FOR KEY SHARE (what the triggers would do), so the checks
    are redundant; at a million rows they cost more than the COPY itself. Needs a role allowed to set
    session_replication_role (a superuser, or on PostgreSQL 15+ ``GRANT SET ON PARAMETER``), and is
    not used when the tables carry triggers of their own, which replica mode would silence too.
    """
    # Every table this transaction writes while replica mode is on (the Label Studio import names its own).
    tables = tables or [Utterance._meta.db_table, Annotation._meta.db_table, Conversation._meta.db_table,
                        Speaker._meta.db_table, Corpus.languages.through._meta.db_table, "corpora_language",
                        Job._meta.db_table]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal AND tgrelid = ANY(%s::regclass[])", [list(tables)]
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
                     speaker_ids: dict[str, int], language_ids: dict[str, int]) -> list[int] | range:
    count = len(chunk.utterances)
    if not count:
        return []
    ids = _reserve_ids(fmt.table, count)
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
    with _copy(fmt.sql) as copy:
        copy.write("\n".join(lines))
    return ids


_sequences: dict[str, int] = {}  # table -> oid of its id sequence; emptied by every spool_write


def _sequence_of(table: str) -> int:
    """The oid of a table's id sequence, looked up once per import. Not ``pg_get_serial_sequence`` in the
    reserving query itself: a stable function, it would be evaluated again for every id (most of the cost)."""
    oid = _sequences.get(table)
    if oid is None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')::regclass::oid", [table])
            row = cursor.fetchone()
        assert row is not None and row[0], f"{table}.id has no sequence"
        oid = _sequences[table] = int(row[0])
    return oid


def _reserve_ids(table: str, count: int) -> list[int] | range:
    """``count`` new ids from the table's sequence: a range when nobody else took ids meanwhile (the usual case)."""
    sequence = _sequence_of(table)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT min(v), max(v) FROM (SELECT nextval(%s::oid::regclass) AS v FROM generate_series(1, %s)) AS s",
            [sequence, count])
        row = cursor.fetchone()
        assert row is not None
        low, high = row
        if high - low + 1 == count:
            return range(low, high + 1)
        # Interleaved with another session's nextval: these ids were taken and are ours, but not contiguous.
        cursor.execute("SELECT nextval(%s::oid::regclass) FROM generate_series(1, %s)", [sequence, count])
        return [r[0] for r in cursor.fetchall()]


def _row_pattern(fmt: _CopyFormat, variables: list[str], fixed: dict[str, str] | None = None) -> str:
    """A str.format pattern of one COPY line: ``{i}`` for the i-th of ``variables``, ``fixed`` (COPY text) or
    the default elsewhere."""
    template = list(fmt.template)
    for attname, text in (fixed or {}).items():
        template[fmt.position[attname]] = text
    parts = [text.replace("{", "{{").replace("}", "}}") for text in template]
    for i, attname in enumerate(variables):
        parts[fmt.position[attname]] = "{" + str(i) + "}"
    return "\t".join(parts)


def _format_compact(utterance_fmt: _CopyFormat, annotation_fmt: _CopyFormat, chunk: SpoolChunk, rows: CompactRows,
                    ids: list[int] | range, fixed: dict[str, str], conversation_text: dict[str, str],
                    speaker_text: dict[str, str], language_text: dict[str, str]) -> tuple[str, list[str]]:
    """COPY text of a fast-path chunk: (its utterances, its labels' lines). Pure Python: runs in a helper thread.

    ``conversation_text`` and ``speaker_text`` map external ids to row ids as COPY text ("" to NULL);
    ``fixed`` holds the corpus, schema version and job ids as text.
    """
    pattern = _row_pattern(utterance_fmt, ["id", "external_id", "conversation_id", "turn_index", "speaker_id",
                                           "language_id", "text", "content_hash"],
                           fixed={"corpus_id": fixed["corpus_id"], "metadata": _escape(rows.metadata)}).format
    null = "\\N"
    escape = _escape
    lines = [
        pattern(pk, escape(external_id) if external_id else "", conversation_text[conversation],
                null if turn is None else turn, speaker_text[speaker], language_text[language], escape(text), digest)
        for pk, external_id, conversation, turn, speaker, language, text, digest in zip(
            ids, rows.external_ids, rows.conversations, rows.turns, rows.speakers, rows.languages, rows.texts,
            rows.hashes)
    ]
    lines.append("")
    utterances = "\n".join(lines)
    del lines
    annotation_lines: list[str] = []
    if any(answers is not None for answers in rows.answers):
        annotation_fixed = {
            "schema_version_id": fixed["schema_version_id"], "perspective": _escape(chunk.perspective),
            "origin": _escape(chunk.origin), "model_version": _escape(chunk.model_version),
            "import_job_id": fixed["import_job_id"],
        }
        if chunk.origin == "human":
            annotation_fixed["external_rater"] = _escape(rows.rater)
        annotation_pattern = _row_pattern(annotation_fmt, ["utterance_id", "value"], fixed=annotation_fixed).format
        values: dict[str, str] = {}
        for pk, answers in zip(ids, rows.answers):
            if answers is None:
                continue
            value = values.get(answers)
            if value is None:
                value = values[answers] = _escape(answers)
            annotation_lines.append(annotation_pattern(pk, value))
    return utterances, annotation_lines


def _write_formatted(utterance_fmt: _CopyFormat, annotation_fmt: _CopyFormat, utterances: str,
                     annotation_lines: list[str]) -> None:
    with _copy(utterance_fmt.sql) as copy:
        copy.write(utterances)
    if annotation_lines:
        _copy_annotations(annotation_fmt, annotation_lines)


def _expand(rows: CompactRows) -> list[tuple[Any, ...]]:
    """Fast-path rows as the general writer's utterance tuples (SQLite: bulk_create)."""
    metadata = json.loads(rows.metadata)
    return [
        (external_id, conversation, turn, speaker, language, text, "", None, None, None, None, dict(metadata), digest,
         None if answers is None else json.loads(answers), rows.rater)
        for external_id, conversation, turn, speaker, language, text, digest, answers in zip(
            rows.external_ids, rows.conversations, rows.turns, rows.speakers, rows.languages, rows.texts, rows.hashes,
            rows.answers)
    ]


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


def _copy_annotations(fmt: _CopyFormat, lines: list[str]) -> None:
    """COPY annotation lines (COPY text format, no newlines)."""
    with _copy(fmt.sql) as copy:
        copy.write("\n".join(lines))
        copy.write("\n")


def _annotation_lines(fmt: _CopyFormat, annotations: list[tuple[int, dict[str, Any], str]], chunk: SpoolChunk,
                      schema_version: LabelSchemaVersion, job: Job) -> list[str]:
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
    return lines


def _bulk_annotations(annotations: list[tuple[int, dict[str, Any], str]], chunk: SpoolChunk,
                      schema_version: LabelSchemaVersion, job: Job) -> None:
    Annotation.objects.bulk_create(
        [Annotation(**_annotation_values(utterance_id, answers, rater, chunk, schema_version, job))
         for utterance_id, answers, rater in annotations],
        batch_size=_SQLITE_BATCH,
    )
