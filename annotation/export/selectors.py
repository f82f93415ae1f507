"""Streaming reads for the export, as Arrow record batches of ``CHUNK_SIZE`` rows, never model instances.

On PostgreSQL a query runs as ``COPY (…) TO STDOUT (FORMAT csv)`` and each chunk of rows is parsed by
pyarrow's CSV reader, so no Python object is made per value. On SQLite (development) the same SQL runs through
a Django cursor with ``fetchmany``. Answers are pulled out of the annotation JSON in SQL (``->>`` on
PostgreSQL, ``JSON_EXTRACT`` on SQLite), so Python never decodes a whole annotation value.
"""

from __future__ import annotations

import itertools
import select
import tempfile
from collections.abc import Iterator, Sequence
from typing import IO, Any

import pyarrow as pa
import pyarrow.csv as pa_csv
from django.db import connection
from django.db.models import Case, CharField, QuerySet, Value, When
from django.db.models.expressions import RawSQL
from django.db.models.functions import MD5, Lower, Trim

from annotation.models import Adjudication, Annotation, Project
from annotation.schema import Question
from corpora.models import Language, Utterance

CHUNK_SIZE = 20_000

# Per annotation: where it is, who made it, then one answer column per gold question (ANSWER_PREFIX + index).
ANNOTATION_COLUMNS: list[tuple[str, str, pa.DataType]] = [
    ("utterance_id", "utterance_id", pa.int64()),
    ("language_id", "utterance__language_id", pa.int64()),
    ("conversation_id", "utterance__conversation_id", pa.int64()),
    ("speaker_id", "utterance__speaker_id", pa.int64()),
    ("origin", "origin", pa.string()),
    ("annotator_id", "annotator_id", pa.int64()),
    ("external_rater", "external_rater", pa.string()),
    ("model_version", "model_version", pa.string()),
    ("perspective", "perspective", pa.string()),
]
# With ``same_text``: the md5 of an audio-less utterance's trimmed, lower-cased text (NULL for audio), so that
# identical texts can be kept in one split.
TEXT_KEY_COLUMN = ("text_key", "text_key", pa.string())
ANSWER_PREFIX = "answer_"
UTTERANCE_COLUMNS: list[tuple[str, str, pa.DataType]] = [
    ("utterance_id", "id", pa.int64()),
    ("external_id", "external_id", pa.string()),
    ("language", "language__code", pa.string()),
    ("conversation", "conversation__external_id", pa.string()),
    ("speaker", "speaker__external_id", pa.string()),
    ("turn_index", "turn_index", pa.int64()),
    ("text", "text", pa.string()),
    ("audio", "audio", pa.string()),
    ("audio_duration_s", "audio_duration_s", pa.float64()),
]

_VALUE = f'"{Annotation._meta.db_table}"."value"'
# Answer extraction per database: single choice -> the label text; numeric -> a float (NULL unless a JSON
# number); multi-label -> the answer's JSON text (a list, or an object of label -> intensity).
_ANSWER_SQL = {
    "postgresql": {
        "single_choice": (f"({_VALUE} ->> %s)", 1),
        "numeric": (f"CASE WHEN jsonb_typeof({_VALUE} -> %s) = 'number' THEN ({_VALUE} ->> %s)::double precision END",
                    2),
        "multi_label": (f"({_VALUE} -> %s)::text", 1),
    },
    "sqlite": {
        "single_choice": (f"JSON_EXTRACT({_VALUE}, %s)", 1),
        "numeric": (f"CASE WHEN JSON_TYPE({_VALUE}, %s) IN ('integer', 'real') THEN JSON_EXTRACT({_VALUE}, %s) END",
                    2),
        "multi_label": (f"CASE JSON_TYPE({_VALUE}, %s) WHEN 'text' THEN JSON_QUOTE(JSON_EXTRACT({_VALUE}, %s)) "
                        f"ELSE JSON_EXTRACT({_VALUE}, %s) END", 3),
    },
}
_ANSWER_TYPES = {"single_choice": pa.string(), "numeric": pa.float64(), "multi_label": pa.string()}


def export_annotations(*, schema_version_id: int, project_id: int | None = None,
                       corpus_id: int | None = None) -> QuerySet[Annotation]:
    """A project's annotations (with the corpus's imported ones when its quality policy counts them, as the
    agreement report does), or a corpus's imported ones (no project), for one schema version."""
    from annotation.quality.selectors import QualitySource, quality_annotations, quality_source_for_project

    if project_id is not None:
        project = Project.objects.get(pk=project_id)
        return quality_annotations(quality_source_for_project(project))
    if corpus_id is None:
        raise ValueError("give a project or a corpus")
    return quality_annotations(QualitySource(schema_version_id=schema_version_id, corpus_id=corpus_id))


def export_adjudications(*, project_id: int, perspective: str | None) -> dict[int, dict[str, Any]]:
    """utterance id -> the reviewers' final answers; without a perspective, the no-perspective decision first."""
    decisions = Adjudication.objects.filter(project_id=project_id)
    if perspective is not None:
        decisions = decisions.filter(perspective=perspective)
    out: dict[int, dict[str, Any]] = {}
    for uid, value in decisions.order_by("utterance_id", "perspective").values_list("utterance_id", "value"):
        out.setdefault(uid, value if isinstance(value, dict) else {})
    return out


def export_annotation_batches(annotations: QuerySet[Annotation], questions: Sequence[Question], *,
                              same_text: bool = False) -> Iterator[pa.RecordBatch]:
    """Batches of ANNOTATION_COLUMNS (and TEXT_KEY_COLUMN with ``same_text``) plus ``answer_<i>`` for each gold
    question, in (utterance, id) order."""
    vendor = connection.vendor
    if vendor not in _ANSWER_SQL:
        raise NotImplementedError(f"the export reads PostgreSQL or SQLite, not {vendor}")
    answers: dict[str, Any] = {}
    columns = list(ANNOTATION_COLUMNS)
    if same_text:
        answers["text_key"] = Case(When(utterance__audio="", then=MD5(Lower(Trim("utterance__text")))),
                                   default=Value(None), output_field=CharField())
        columns.append(TEXT_KEY_COLUMN)
    for index, q in enumerate(questions):
        template, uses = _ANSWER_SQL[vendor][q.type]
        key = q.key if vendor == "postgresql" else f'$."{q.key}"'
        # Fixed templates; the question key is a bound parameter.
        answers[f"{ANSWER_PREFIX}{index}"] = RawSQL(template, (key,) * uses)  # noqa: S611
        columns.append((f"{ANSWER_PREFIX}{index}", f"{ANSWER_PREFIX}{index}", _ANSWER_TYPES[q.type]))
    queryset = annotations.annotate(**answers).order_by("utterance_id", "id").values_list(
        *(field for _, field, _ in columns))
    return _batches(queryset, columns)


def export_label_studio_rows(annotations: QuerySet[Annotation]) -> Iterator[tuple[Any, ...]]:
    return annotations.order_by("utterance_id", "id").values_list(
        "utterance_id", "id", "origin", "value", "model_version", "created_at", "lead_time_ms", "annotator_id",
        "external_rater", "was_cancelled",
    ).iterator(chunk_size=CHUNK_SIZE)


def export_utterance_batches(*, corpus_id: int, first_id: int, last_id: int) -> Iterator[pa.RecordBatch]:
    """Batches of UTTERANCE_COLUMNS for a corpus's utterances with ids in [first_id, last_id], in id order."""
    queryset = (
        Utterance.objects.filter(corpus_id=corpus_id, id__gte=first_id, id__lte=last_id)
        .order_by("id").values_list(*(field for _, field, _ in UTTERANCE_COLUMNS))
    )
    return _batches(queryset, UTTERANCE_COLUMNS)


def export_language_codes(language_ids: Sequence[int]) -> dict[int, str]:
    return dict(Language.objects.filter(id__in=list(language_ids)).values_list("id", "code"))


def _batches(queryset: QuerySet[Any], columns: list[tuple[str, str, pa.DataType]]) -> Iterator[pa.RecordBatch]:
    schema = pa.schema([pa.field(name, dtype) for name, _, dtype in columns])
    sql, params = queryset.query.sql_with_params()
    if connection.vendor == "postgresql":
        return _copy_batches(sql, params, schema)
    return _cursor_batches(sql, params, schema)


def _copy_batches(sql: str, params: Sequence[Any], schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """COPY the query out as CSV into a local spool file, then parse it CHUNK_SIZE rows at a time.

    The spool frees the connection before the first batch is handed out (the caller reports job progress on
    it; nothing else can run on a connection in the middle of a COPY).
    """
    import psycopg

    connection.ensure_connection()
    raw = connection.connection
    query = psycopg.ClientCursor(raw).mogrify(sql, params)
    parse_options = pa_csv.ParseOptions(newlines_in_values=True)
    # Unquoted empty fields are NULL, quoted ones ("") are empty strings: PostgreSQL's CSV convention.
    convert_options = pa_csv.ConvertOptions(
        column_types=schema, null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=False,
    )
    with tempfile.TemporaryFile(prefix="sentio-export-") as spool:
        boundaries = _copy_out(raw.pgconn, f"COPY ({query}) TO STDOUT (FORMAT csv)", spool)
        spool.seek(0)
        for start, end in itertools.pairwise(boundaries):
            data = spool.read(end - start)
            read_options = pa_csv.ReadOptions(column_names=schema.names, use_threads=False, block_size=len(data) + 1)
            table = pa_csv.read_csv(pa.BufferReader(data), read_options=read_options, parse_options=parse_options,
                                    convert_options=convert_options)
            yield table.combine_chunks().to_batches()[0]


def _copy_out(pgconn: Any, statement: str, spool: IO[bytes]) -> list[int]:
    """Run ``COPY … TO STDOUT`` through libpq and write its rows to ``spool``; return the offsets that cut it
    into chunks of CHUNK_SIZE rows.

    psycopg's ``Copy`` iterator spends several microseconds of Python per row, which was most of the export's
    CPU time; blocking ``PQgetCopyData`` calls cost a fraction of that. The server sends one message per row, so
    every offset is a row boundary however long a text is. The connection is left idle, as psycopg expects.
    """
    import psycopg
    from psycopg import pq

    pgconn.send_query(statement.encode())
    while pgconn.flush():  # psycopg keeps libpq in non-blocking mode: send the rest of the query
        select.select([], [pgconn.socket], [])
    result = pgconn.get_result()
    if result is None or result.status != pq.ExecStatus.COPY_OUT:
        message = _error_text(result.error_message if result is not None else pgconn.error_message)
        _drain(pgconn)
        raise psycopg.DatabaseError(f"the export query failed: {message}")
    boundaries = [0]
    read, write = pgconn.get_copy_data, spool.write
    offset = in_chunk = 0
    try:
        while True:
            size, row = read(0)  # 0: wait for the next row
            if size <= 0:
                break
            write(row)
            offset += size
            in_chunk += 1
            if in_chunk == CHUNK_SIZE:
                boundaries.append(offset)
                in_chunk = 0
    except Exception:
        # The spool failed (disk full?): read the COPY to its end so the connection stays usable.
        while read(0)[0] > 0:
            pass
        _drain(pgconn)
        raise
    if in_chunk:
        boundaries.append(offset)
    failure = _error_text(pgconn.error_message) if size == -2 else None
    while (result := pgconn.get_result()) is not None:
        if result.status != pq.ExecStatus.COMMAND_OK:
            failure = failure or _error_text(result.error_message)
    if failure:
        raise psycopg.DatabaseError(f"the export query failed: {failure}")
    return boundaries


def _drain(pgconn: Any) -> None:
    while pgconn.get_result() is not None:
        pass


def _error_text(message: bytes) -> str:
    return message.decode("utf-8", "replace").strip()


def _cursor_batches(sql: str, params: Sequence[Any], schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(CHUNK_SIZE):
            arrays = []
            for values, field in zip(zip(*rows), schema):
                if pa.types.is_string(field.type):
                    values = tuple(None if v is None else v if isinstance(v, str) else str(v) for v in values)
                arrays.append(pa.array(values, type=field.type))
            yield pa.RecordBatch.from_arrays(arrays, schema=schema)
