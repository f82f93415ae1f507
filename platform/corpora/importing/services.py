"""Corpus import: create an import job from uploaded files, and run it (from a Celery task or the CLI).

``import_run`` works in two phases. Reading (no transaction open): every file is checked byte by
byte, read in chunks, every row validated, de-duplicated and spooled to a temporary file; row errors
are recorded as they are found and progress is written as it goes. Writing: if the mode allows it,
one transaction writes the spool (COPY on PostgreSQL), adds the corpus languages and marks the job
SUCCEEDED — so a crash at any point leaves either nothing or the whole import, and a redelivered
task finds the job finished. See ``corpora/importing/README.md``.
"""

from __future__ import annotations

import bisect
import gc
import json
import logging
import os
import shutil
import tempfile
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from django.conf import settings
from django.contrib.auth.models import User
from django.core.files import File
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import Count, Max
from django.db.models.fields.json import KT
from django.db.models.functions import MD5, Lower, Trim
from django.utils import timezone
from django.utils.text import get_valid_filename

from annotation.distribution.services import project_items_for_corpus_sync
from annotation.models import Annotation, LabelSchema, LabelSchemaVersion
from annotation.schema import Question, SchemaError, parse_questions
from annotation.services import label_schema_create
from corpora.importing.fast import CompactRows, FastRow, FastRowReader, fast_path_fits
from corpora.importing.mapping import MappingError, mapping_check_header, mapping_resolve
from corpora.importing.presets import PRESET_OPTIONS, PRESETS, FilePlan, SchemaDefinition, generic_plan
from corpora.importing.progress import ProgressCallback, ProgressReporter
from corpora.importing.readers import (
    CHUNK_ROWS,
    ENCODINGS,
    FORMATS,
    FileFacts,
    FileRejected,
    delimited_cells,
    file_check,
    format_for,
    raw_rows,
    rows_read,
)
from corpora.importing.validation import LabelDraft, RowInvalid, RowValidator, UtteranceDraft, content_hash
from corpora.importing.writer import Spool, SpoolChunk, spool_write
from corpora.languages import UnknownLanguageError, normalise_language_tag
from corpora.models import Corpus, Utterance
from jobs.dispatch import Task, task_send_on_commit
from jobs.models import Job, JobKind
from jobs.services import RowError, job_create, job_fail, job_record_errors, job_start, job_succeed

logger = logging.getLogger(__name__)

MODES = ("all_or_nothing", "skip_invalid")
OPTION_KEYS = frozenset({"preset", "format", "encoding", "mapping", "mode", "language", "schema", "split",
                         "intensity", "perspective", "paths"})
MAX_NOTES = 1000
FIRST_ERRORS_KEPT = 50
_ADVISORY_LOCK_CLASS = 7301  # first key of pg_advisory_lock(int, int): "corpus import"


class ImportOptionsError(ValueError):
    """Options that cannot work, found before anything is written; ``errors`` maps field -> reason."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


# -- options ------------------------------------------------------------------------------------------------


def import_options_clean(options: Any, *, file_names: list[str]) -> dict[str, Any]:
    """Check the options JSON against the files' names; return it normalised or raise ImportOptionsError."""
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise ImportOptionsError({"options": "must be a JSON object"})
    errors: dict[str, str] = {}
    unknown = sorted(set(options) - OPTION_KEYS)
    if unknown:
        errors["options"] = f"unknown option(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(sorted(OPTION_KEYS))}"
    cleaned = {k: v for k, v in options.items() if k in OPTION_KEYS and v is not None and k != "paths"}
    preset_name = cleaned.get("preset")
    preset = None
    if preset_name is not None:
        if preset_name not in PRESETS:
            errors["preset"] = f"unknown preset {preset_name!r}; presets: {', '.join(PRESETS)}"
        else:
            preset = PRESETS[preset_name]
    for key in ("intensity", "perspective") if preset_name is None else ("split", "intensity", "perspective"):
        if key in cleaned and (preset_name is None or key not in PRESET_OPTIONS.get(str(preset_name), set())):
            errors[key] = f"only applies to the preset(s) {', '.join(p for p, keys in PRESET_OPTIONS.items() if key in keys)}"
    if "split" in cleaned and not (isinstance(cleaned["split"], str) and cleaned["split"].strip()):
        errors["split"] = "must be a split name such as train, dev, validation or test"
    fmt = cleaned.get("format")
    if fmt is not None and fmt not in FORMATS:
        errors["format"] = f"must be one of {', '.join(FORMATS)}"
    elif fmt is None:
        for name in file_names:
            try:
                format_for(name, None)
            except FileRejected as exc:
                errors["format"] = f"{name}: {exc.reason}"
    encoding = cleaned.get("encoding")
    if encoding is not None:
        normalised = str(encoding).lower().replace("_", "-")
        normalised = {"utf8": "utf-8", "utf16": "utf-16"}.get(normalised, normalised)
        if normalised not in ENCODINGS:
            errors["encoding"] = "must be utf-8 or utf-16 (other encodings: convert the file to UTF-8 first)"
        cleaned["encoding"] = normalised
    mode = cleaned.setdefault("mode", "all_or_nothing")
    if mode not in MODES:
        errors["mode"] = f"must be one of {', '.join(MODES)}"
    if "language" in cleaned:
        try:
            cleaned["language"] = normalise_language_tag(str(cleaned["language"]))
        except UnknownLanguageError as exc:
            errors["language"] = str(exc)
    if "schema" in cleaned:
        if not isinstance(cleaned["schema"], str) or not LabelSchema.objects.filter(slug=cleaned["schema"]).exists():
            errors["schema"] = f"no label schema with slug {cleaned['schema']!r}"
        elif preset is not None:
            errors["schema"] = "a preset brings its own label schema; leave schema out"
    if "mapping" in cleaned and not isinstance(cleaned["mapping"], dict):
        errors["mapping"] = "must be an object mapping fields to column names"
    elif preset is None and not errors:
        try:
            plan = generic_plan(options=cleaned)
        except MappingError as exc:
            errors.update(exc.errors)
        else:
            if plan.mapping.labels and "schema" not in cleaned:
                errors["schema"] = "the mapping has label columns: name the label schema (its slug) they answer"
            if plan.role == "utterances" and "language" not in plan.mapping.fields and "language" not in cleaned:
                errors["language"] = "map a language column or give a fixed language (e.g. mr)"
    elif preset is not None and not errors:
        errors.update(preset.check_options(cleaned, file_names))
    if errors:
        raise ImportOptionsError(errors)
    return cleaned


# -- job creation -------------------------------------------------------------------------------------------


def _file_size(f: UploadedFile | File) -> int | None:
    try:
        return int(f.size) if f.size is not None else None
    except (OSError, TypeError, ValueError):
        return None


MAX_PATH_PARTS = 4


def _original_name(f: UploadedFile | File, index: int, path: str | None = None) -> str:
    """The file's name with its folders (``train/mar.csv``): the split may come from a folder, and same-named files
    from different folders are different files. Each part is cleaned; ``..`` and empty parts are dropped."""
    raw = str(path if path is not None else (f.name or f"file-{index}")).replace("\\", "/")
    parts = [part for part in raw.split("/") if part not in ("", ".", "..")][-MAX_PATH_PARTS:]
    cleaned = [name for name in map(_clean_part, parts) if name]
    return "/".join(cleaned) or f"file-{index}"


def _clean_part(part: str) -> str:
    try:
        return get_valid_filename(part)
    except Exception:  # get_valid_filename refuses names that clean to nothing
        return ""


def _paths(options: Any, count: int) -> list[str | None]:
    """The ``paths`` option: each uploaded file's relative path, in upload order (browsers send bare names)."""
    paths = options.get("paths") if isinstance(options, dict) else None
    if paths is None:
        return [None] * count
    if not isinstance(paths, list) or len(paths) != count or not all(isinstance(p, str) and p.strip() for p in paths):
        raise ImportOptionsError({"paths": f"must list one relative path per uploaded file ({count}), in upload "
                                           "order, e.g. [\"train/mar.csv\", \"test/mar.csv\"]"})
    return list(paths)


def import_job_create(
    *, corpus: Corpus, files: list[UploadedFile | File], options: dict[str, Any], created_by: User | None,
    audio_archive: UploadedFile | File | None = None, audio_folder: Path | None = None, enqueue: bool = True,
) -> Job:
    """Validate options, store the files under imports/<job id>/, create the job and enqueue it after commit.

    ``audio_folder`` (a local folder) is for the command line only; the web API uploads a zip instead.
    ``enqueue=False`` leaves running to the caller (the management command runs it in-process).
    """
    if not files:
        raise ImportOptionsError({"files": "upload at least one file"})
    names = [_original_name(f, i, path) for i, (f, path) in enumerate(zip(files, _paths(options, len(files))))]
    if len(set(names)) != len(names):
        raise ImportOptionsError({"files": "two files have the same name (and folder); name their folders with "
                                           "the paths option"})
    cleaned = import_options_clean(options, file_names=names)
    limit = _max_file_bytes()
    for f, name in zip(files, names):
        size = _file_size(f)
        if size is not None and size > limit:
            raise ImportOptionsError({"files": f"{name} is {size:,} bytes; the limit is {limit:,} bytes"})
    if audio_folder is not None and not Path(audio_folder).is_dir():
        raise ImportOptionsError({"audio": f"{audio_folder} is not a folder"})
    saved: list[str] = []
    try:
        with transaction.atomic():
            job = job_create(kind=JobKind.IMPORT, created_by=created_by, corpus=corpus, params={})
            stored = []
            for index, (f, name) in enumerate(zip(files, names)):
                storage_name = default_storage.save(f"imports/{job.pk}/{index}-{name.replace('/', '__')}", f)
                saved.append(storage_name)
                stored.append({"name": storage_name, "original": name})
            archive = ""
            if audio_archive is not None:
                archive = default_storage.save(
                    f"imports/{job.pk}/audio-{_original_name(audio_archive, 0).replace('/', '__')}", audio_archive)
                saved.append(archive)
            job.params = {"options": cleaned, "files": stored, "audio_archive": archive,
                          "audio_folder": str(Path(audio_folder).resolve()) if audio_folder else ""}
            job.save(update_fields=["params"])
            if enqueue:
                task_send_on_commit(Task.IMPORT, job.pk)
    except Exception:
        for name in saved:
            default_storage.delete(name)
        raise
    return job


def _max_file_bytes() -> int:
    return int(settings.IMPORT_MAX_FILE_BYTES)


# -- running ------------------------------------------------------------------------------------------------


@dataclass
class _Schema:
    version: LabelSchemaVersion | None
    definition: SchemaDefinition | None  # created inside the write transaction when the slug is new
    questions: list[Question]
    perspectives: list[str]


# A dropped or refused database connection: OperationalError where a query was cut off, InterfaceError where the
# connection was already closed when code (e.g. clean-up after the first error) used it again.
DATABASE_UNREACHABLE = (OperationalError, InterfaceError)


class _ImportFailed(Exception):
    """Ends an import with the job marked FAILED and this message; nothing was written."""


def import_run(*, job_id: int, on_progress: ProgressCallback | None = None) -> None:
    """Run an import job to the end; safe to call again for a redelivered message.

    Errors a user can cause end the job FAILED (all_or_nothing) or SUCCEEDED with errors
    (skip_invalid); an unexpected exception fails the job with a message. A lost database
    connection (``DATABASE_UNREACHABLE``) is re-raised for the task to retry: nothing was written.
    """
    job = job_start(job_id=job_id)
    if job is None:
        return
    try:
        with _cyclic_gc_paused():
            _ImportRun(job, on_progress).run()
    except _ImportFailed as exc:
        job_fail(job=job, message=str(exc))
    except DATABASE_UNREACHABLE:
        raise
    except Exception as exc:
        logger.exception("import job %s failed", job_id)
        job_fail(job=job, message=f"The import stopped on an unexpected error ({type(exc).__name__}: {exc}); "
                                  "nothing was written.")
    if settings.IMPORT_UPLOADS_KEEP_DAYS == 0:
        import_uploads_delete(job=job)


def import_uploads_delete(*, job: Job) -> int:
    """Delete the files uploaded for a finished import job (they hold the whole source data); return how many.

    Called when the job ends (``SENTIO_IMPORT_UPLOADS_KEEP_DAYS=0``) or by the periodic sweep once the job is that
    many days old; the job keeps a note of when, and its rows and errors stay.
    """
    job.refresh_from_db(fields=["status", "params"])
    if not job.is_finished or job.params.get("uploads_deleted_at"):
        return 0
    # "files" and "audio_archive": a corpus import's uploads; "file": a Label Studio import's export.
    names = [entry["name"] for entry in job.params.get("files", [])] + [job.params.get("audio_archive") or "",
                                                                         job.params.get("file") or ""]
    deleted = 0
    for name in filter(None, names):
        if default_storage.exists(name):
            default_storage.delete(name)
            deleted += 1
    params = {**job.params, "uploads_deleted_at": timezone.now().isoformat()}
    Job.objects.filter(pk=job.pk).update(params=params)
    return deleted


UPLOAD_KINDS = (JobKind.IMPORT, JobKind.LABEL_STUDIO_IMPORT)  # the job kinds whose uploads the sweep deletes


def import_uploads_sweep(*, now: datetime | None = None) -> int:
    """Delete the uploads of import jobs that finished more than ``SENTIO_IMPORT_UPLOADS_KEEP_DAYS`` days ago."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.IMPORT_UPLOADS_KEEP_DAYS)
    due = Job.objects.filter(kind__in=UPLOAD_KINDS, finished_at__lte=cutoff).exclude(params__has_key="uploads_deleted_at")
    return sum(import_uploads_delete(job=job) for job in due.only("pk").iterator(chunk_size=500))


class _LabelKeys:
    """Which (kind, utterance, rater, perspective) labels this import already has: single keys, and the fast path's
    whole chunks as ranges of new utterances (one rater each), so a million rows do not cost a million keys."""

    def __init__(self) -> None:
        self.keys: set[tuple[Any, ...]] = set()
        self.starts: list[int] = []
        self.ranges: list[tuple[int, str, str, np.ndarray]] = []

    def add(self, key: tuple[Any, ...]) -> None:
        self.keys.add(key)

    def add_range(self, first: int, rater: str, perspective: str, labelled: np.ndarray) -> None:
        self.starts.append(first)
        self.ranges.append((first, rater, perspective, labelled))

    def __contains__(self, key: tuple[Any, ...]) -> bool:
        if key in self.keys:
            return True
        kind, ref, rater, perspective = key
        position = bisect.bisect_right(self.starts, ref) - 1 if kind == "n" else -1
        if position < 0:
            return False
        first, range_rater, range_perspective, labelled = self.ranges[position]
        offset = ref - first
        return (offset < labelled.size and bool(labelled[offset]) and rater == range_rater
                and perspective == range_perspective)


def import_schema(options: dict[str, Any]) -> _Schema:
    """The label schema an import's labels answer: the preset's, or the one named by slug (its newest version)."""
    preset = PRESETS.get(options["preset"]) if options.get("preset") else None
    definition: SchemaDefinition | None = None
    slug = options.get("schema")
    if preset is not None:
        definition = preset.schema_for(options)
        slug = definition.slug
    if not slug:
        return _Schema(version=None, definition=None, questions=[], perspectives=[])
    version = LabelSchemaVersion.objects.filter(schema__slug=slug).order_by("-version").first()
    if version is not None:
        return _Schema(version=version, definition=None, questions=parse_questions(version.questions),
                       perspectives=list(version.perspectives or []))
    if definition is None:
        raise _ImportFailed(f"the label schema {slug!r} no longer exists")
    return _Schema(version=None, definition=definition, questions=parse_questions(definition.questions),
                   perspectives=list(definition.perspectives))


def import_file_plan(options: dict[str, Any], *, name: str, header: list[str]) -> FilePlan:
    """How one file is read (the preset's plan, or the mapping), checked against its header; FileRejected says why not."""
    preset = PRESETS.get(options["preset"]) if options.get("preset") else None
    plan = (preset.plan(file_name=name, header=header, options=options) if preset is not None
            else generic_plan(options=options, file_name=name))
    plan = replace(plan, mapping=mapping_resolve(plan.mapping, header))
    missing, extra = mapping_check_header(plan.mapping, header, optional=set(plan.optional_columns))
    if plan.role == "metadata_table":
        missing = [c for c in [plan.key_column] if c not in header]
    if missing:
        raise FileRejected(name, f"column(s) {', '.join(map(repr, missing))} named in the mapping are not in the "
                                 f"header (columns: {', '.join(repr(h) for h in header if h)})",
                           column=",".join(missing))
    if extra and plan.mapping.extra_columns == "error" and plan.role != "metadata_table":
        raise FileRejected(name, f"unexpected column(s) {', '.join(map(repr, extra))}: map them, list them under "
                                 "metadata, or set extra_columns to 'metadata' or 'ignore'",
                           column=",".join(extra))
    return plan


class _ImportRun:
    def __init__(self, job: Job, on_progress: ProgressCallback | None):
        self.job = job
        self.on_progress = on_progress
        params = job.params or {}
        self.options: dict[str, Any] = dict(params.get("options") or {})
        self.files: list[dict[str, str]] = list(params.get("files") or [])
        self.mode = self.options.get("mode", "all_or_nothing")
        corpus = job.corpus
        if corpus is None:
            raise _ImportFailed("the job names no corpus")
        self.corpus: Corpus = corpus
        self.preset = PRESETS.get(self.options["preset"]) if self.options.get("preset") else None
        self.counts = {"rows": 0, "utterances_valid": 0, "labels_valid": 0, "rejected_rows": 0, "rejected_files": 0,
                       "duplicates": 0, "unlabelled_rows": 0, "created": 0, "annotations": 0,
                       "conversations": 0, "speakers": 0, "blank_cells": 0, "labels_attached": 0,
                       "cross_split_texts": 0}
        self.first_errors: list[RowError] = []
        self.error_total = 0
        self.notes: list[dict[str, Any]] = []
        self.stored_audio: list[str] = []
        # Job-wide de-duplication state.
        self.seen_hashes: dict[str, int] = {}  # content hash -> job-wide index of the new utterance
        self.new_by_external_id: dict[str, tuple[str, int]] = {}  # external id -> (content hash, job-wide index)
        self.new_count = 0
        self.existing_ids: dict[str, int] = {}
        self.label_keys = _LabelKeys()
        self.blank_cells = 0
        self.has_split = False
        self.cross_split: dict[str, Any] = {"count": 0, "examples": []}
        self.schema_version: LabelSchemaVersion | None = None
        self.rater_numbers: dict[str, int] = {}
        self.languages: set[str] = set()
        self.corpus_had_rows = False
        self.estimated_rows = 0
        self.timings: dict[str, float] = {}

    # errors and progress

    def _errors(self, errors: list[RowError]) -> None:
        if not errors:
            return
        self.error_total += len(errors)
        room = FIRST_ERRORS_KEPT - len(self.first_errors)
        if room > 0:
            self.first_errors.extend(errors[:room])
        job_record_errors(job=self.job, errors=errors)

    def _note(self, file: str, row: int, reason: str) -> None:
        self.counts["duplicates"] += 1
        if len(self.notes) < MAX_NOTES:
            self.notes.append({"file": file, "row": row, "reason": reason})

    @property
    def stop_writing(self) -> bool:
        return self.mode == "all_or_nothing" and self.error_total > 0

    # the run

    def run(self) -> None:
        schema = self._schema()
        self.schema_version = schema.version
        with ExitStack() as stack:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sentio-import-")))
            reporter = ProgressReporter(job=self.job, callback=self.on_progress)
            stack.callback(reporter.close)
            stack.enter_context(_corpus_import_lock(self.corpus.pk))
            audio_reader = self._audio(stack, workdir)
            if audio_reader is False:
                return
            self.corpus_had_rows = Utterance.objects.filter(corpus=self.corpus).exists()
            snapshot = _corpus_snapshot(self.corpus)
            spool = Spool(workdir / "spool.pickle")
            stack.callback(spool.close)
            started = time.perf_counter()
            self._read_all(workdir, schema, audio_reader, spool, reporter)
            self.timings["read_s"] = round(time.perf_counter() - started, 3)
            if self._input_refused():
                self._fail_input(reporter)
                return
            self._write(spool, schema, snapshot, reporter)

    def _input_refused(self) -> bool:
        self.counts["errors"] = self.error_total
        valid = self.counts["utterances_valid"] + self.counts["labels_valid"]
        return self.stop_writing or bool(self.error_total and not valid and not self.counts["duplicates"])

    def _fail_input(self, reporter: ProgressReporter) -> None:
        reporter.flush()
        self._cleanup_audio()
        what = f"{self.error_total} problem(s) in the input"
        if self.stop_writing:
            message = f"{what}; in all_or_nothing mode nothing was imported. Fix them, or import with skip_invalid."
        else:
            message = f"{what} and no valid row; nothing was imported."
        job_fail(job=self.job, message=message, counts=self.counts)
        self._store_result()

    def _schema(self) -> _Schema:
        return import_schema(self.options)

    def _audio(self, stack: ExitStack, workdir: Path) -> Any:
        from corpora.importing.audio import AudioRejected, audio_bundle_open, audio_probe

        params = self.job.params or {}
        archive, folder = params.get("audio_archive") or "", params.get("audio_folder") or ""
        if not archive and not folder:
            return None
        try:
            if archive:
                path = stack.enter_context(_local_copy(archive, workdir))
                bundle = audio_bundle_open(path)
            else:
                bundle = audio_bundle_open(Path(folder))
        except AudioRejected as exc:
            name = PurePosixPath(archive).name if archive else folder
            self._errors([RowError(reason=str(exc), file=name)])
            job_fail(job=self.job, message=f"The audio archive was refused: {exc}", counts=self.counts)
            return False
        stack.callback(bundle.close)

        def read(name: str) -> tuple[bytes, Any]:
            data = bundle.read(name)
            return data, audio_probe(data, name=name)

        return read

    def _read_all(self, workdir: Path, schema: _Schema, audio_reader: Any, spool: Spool,
                  reporter: ProgressReporter) -> None:
        # Byte-level checks first: they refuse bad files early and give the progress total.
        checked: list[tuple[dict[str, str], Path, str, FileFacts]] = []
        with ExitStack() as stack:
            for entry in self.files:
                name = entry.get("original") or PurePosixPath(entry["name"]).name
                try:
                    fmt = format_for(name, self.options.get("format"))
                    path = stack.enter_context(_local_copy(entry["name"], workdir))
                    facts = file_check(path, name=name, fmt=fmt, encoding=self.options.get("encoding"))
                except FileRejected as exc:
                    self._file_rejected(exc)
                    continue
                checked.append((entry, path, fmt, facts))
                self.estimated_rows += facts.estimated_rows
            reporter.report(done=0, total=2 * self.estimated_rows, counts=self.counts)
            opened = []
            for entry, path, fmt, facts in checked:
                name = entry.get("original") or PurePosixPath(entry["name"]).name
                try:
                    cells: Any = None  # CSV/TSV: chunks of cell lists, for the fast path
                    if fmt in ("csv", "tsv"):
                        header, cells = delimited_cells(path, name=name, delimiter="," if fmt == "csv" else "\t",
                                                        encoding=facts.encoding)
                        chunks: Any = raw_rows(header, cells)
                    else:
                        header, chunks = rows_read(path, name=name, fmt=fmt, facts=facts)
                    plan = self._plan(name, header)
                except (FileRejected, MappingError) as exc:
                    self._file_rejected(exc if isinstance(exc, FileRejected) else FileRejected(name, str(exc)))
                    continue
                opened.append((name, header, chunks, plan, cells, fmt, facts))
            # Side tables first (EmoBank meta.tsv), then utterances, then labels of existing utterances.
            order = {"metadata_table": 0, "utterances": 1, "labels": 2}
            opened.sort(key=lambda item: order[item[3].role])
            metadata_table: dict[str, dict[str, Any]] = {}
            for name, header, chunks, plan, cells, fmt, facts in opened:
                try:
                    if plan.role == "metadata_table":
                        self._read_metadata_table(name, chunks, plan, metadata_table, reporter)
                    elif cells is not None and fast_path_fits(plan=plan, fmt=fmt, encoding=facts.encoding,
                                                              header=header, has_audio=audio_reader is not None,
                                                              metadata_table=metadata_table):
                        self._read_file_fast(name, header, cells, plan, schema, metadata_table, spool, reporter)
                    else:
                        self._read_file(name, header, chunks, plan, schema, audio_reader, metadata_table, spool,
                                        reporter)
                except FileRejected as exc:
                    self._file_rejected(exc)

    def _file_rejected(self, exc: FileRejected) -> None:
        self.counts["rejected_files"] += 1
        self._errors([RowError(reason=exc.reason, file=exc.file, row=exc.row, column=exc.column)])

    def _plan(self, name: str, header: list[str]) -> FilePlan:
        return import_file_plan(self.options, name=name, header=header)

    def _read_metadata_table(self, name: str, chunks: Any, plan: FilePlan, table: dict[str, dict[str, Any]],
                             reporter: ProgressReporter) -> None:
        for chunk in chunks:
            for raw in chunk:
                self.counts["rows"] += 1
                if raw.error:
                    continue  # a side table only adds metadata; a broken line there costs nothing
                key = str(raw.values.get(plan.key_column) or "").strip()
                if key:
                    table[key] = {k: v.strip() if isinstance(v, str) else v for k, v in raw.values.items()
                                  if k and k != plan.key_column and v not in (None, "") and str(v).strip()}
            reporter.report(done=self.counts["rows"], total=2 * self.estimated_rows, counts=self.counts)

    def _read_file(self, name: str, header: list[str], chunks: Any, plan: FilePlan, schema: _Schema,
                   audio_reader: Any, metadata_table: dict[str, dict[str, Any]], spool: Spool,
                   reporter: ProgressReporter) -> None:
        if (plan.mapping.labels or plan.mapping.raters) and not schema.questions:
            raise FileRejected(name, "the mapping has label columns but the import names no label schema")
        perspective = plan.mapping.provenance.perspective
        if perspective and perspective not in schema.perspectives:
            raise FileRejected(name, f"perspective {perspective!r} is not one of the schema's "
                                     f"({', '.join(schema.perspectives) or 'none'})")
        validator = RowValidator(plan=plan, file_name=name, questions=schema.questions, header=header,
                                 audio_reader=audio_reader, metadata_table=metadata_table)
        try:
            if plan.mapping.raters is not None and plan.mapping.raters.label_column:
                self._read_label_rows(name, chunks, plan, validator, spool, reporter)
            else:
                self._read_rows(name, chunks, plan, validator, spool, reporter)
        finally:
            self.blank_cells += validator.blank_cells
            self.counts["blank_cells"] = self.blank_cells

    def _read_rows(self, name: str, chunks: Any, plan: FilePlan, validator: RowValidator, spool: Spool,
                   reporter: ProgressReporter) -> None:
        provenance = plan.mapping.provenance
        perspective = provenance.perspective
        external_template = plan.mapping.get("external_id")
        for chunk in chunks:
            out = SpoolChunk(origin=provenance.origin, model_version=provenance.model_version, perspective=perspective)
            errors: list[RowError] = []
            drafts: list[UtteranceDraft] = []
            labels: list[LabelDraft] = []
            for raw in chunk:
                self.counts["rows"] += 1
                rater_number = 0
                if provenance.rater_numbering and external_template is not None and not raw.error:
                    key = str(external_template.render(raw.values) or "").strip()
                    rater_number = self.rater_numbers[key] = self.rater_numbers.get(key, 0) + 1
                try:
                    draft = validator.validate(raw)
                except RowInvalid as exc:
                    errors.extend(exc.errors)
                    self.counts["rejected_rows"] += 1
                    continue
                if isinstance(draft, LabelDraft):
                    if rater_number:
                        draft.rater = f"{provenance.rater_numbering}-{rater_number}"
                    labels.append(draft)
                else:
                    drafts.append(draft)
            id_column = external_template.column_for_errors() if external_template is not None else ""
            self._accept_utterances(name, drafts, out, errors, id_column)
            self._accept_labels(name, labels, out, errors, perspective, id_column)
            self._errors(errors)
            if not self.stop_writing and (out.utterances or out.labels):
                spool.append(out)
            reporter.report(done=self.counts["rows"], total=2 * self.estimated_rows, counts=self.counts)

    def _read_label_rows(self, name: str, chunks: Any, plan: FilePlan, validator: RowValidator, spool: Spool,
                         reporter: ProgressReporter) -> None:
        """The long per-rater form: rows are (item, label) pairs, gathered into one item with one answer per rater
        (rows of an item may be anywhere in the file; an item is its utterance identity, e.g. its text id)."""
        provenance = plan.mapping.provenance
        external_template = plan.mapping.get("external_id")
        id_column = external_template.column_for_errors() if external_template is not None else ""
        items: dict[str, tuple[UtteranceDraft, dict[str, list[int | None]]]] = {}
        errors: list[RowError] = []
        for chunk in chunks:
            for raw in chunk:
                self.counts["rows"] += 1
                try:
                    draft = validator.validate(raw)
                except RowInvalid as exc:
                    errors.extend(exc.errors)
                    self.counts["rejected_rows"] += 1
                    continue
                assert isinstance(draft, UtteranceDraft)
                row_errors: list[RowError] = []
                label, levels = validator.rater_levels(raw.values, raw.number, row_errors)
                if row_errors:
                    errors.extend(row_errors)
                    self.counts["rejected_rows"] += 1
                    continue
                first, gathered = items.setdefault(draft.content_hash, (draft, {}))
                if label in gathered and gathered[label] == levels:
                    self._note(name, raw.number, f"the same ratings of {label!r} as row {first.row}'s item already "
                                                 "had; skipped")
                    continue
                if label in gathered:
                    errors.append(RowError(reason=f"a second row for label {label!r} of the item of row {first.row}, "
                                                  "with other ratings", file=name, row=raw.number,
                                           column=plan.mapping.raters.label_column if plan.mapping.raters else ""))
                    self.counts["rejected_rows"] += 1
                    continue
                gathered[label] = levels
            self._errors(errors)
            errors = []
            reporter.report(done=self.counts["rows"], total=2 * self.estimated_rows, counts=self.counts)
        drafts = list(items.values())
        del items
        for start in range(0, len(drafts), CHUNK_ROWS):
            out = SpoolChunk(origin=provenance.origin, model_version=provenance.model_version,
                             perspective=provenance.perspective)
            part = []
            for draft, gathered in drafts[start:start + CHUNK_ROWS]:
                draft.more_labels = validator.gathered_answers(gathered, draft.row, errors)
                part.append(draft)
            self._accept_utterances(name, part, out, errors, id_column)
            self._errors(errors)
            errors = []
            if not self.stop_writing and (out.utterances or out.labels):
                spool.append(out)

    def _read_file_fast(self, name: str, header: list[str], cells: Any, plan: FilePlan, schema: _Schema,
                        metadata_table: dict[str, dict[str, Any]], spool: Spool,
                        reporter: ProgressReporter) -> None:
        """``_read_file`` for plain tabular files (see corpora/importing/fast.py): the same checks, rows as lists."""
        if plan.mapping.labels and not schema.questions:
            raise FileRejected(name, "the mapping has label columns but the import names no label schema")
        perspective = plan.mapping.provenance.perspective
        if perspective and perspective not in schema.perspectives:
            raise FileRejected(name, f"perspective {perspective!r} is not one of the schema's "
                                     f"({', '.join(schema.perspectives) or 'none'})")
        validator = RowValidator(plan=plan, file_name=name, questions=schema.questions, header=header,
                                 audio_reader=None, metadata_table=metadata_table)
        reader = FastRowReader(plan=plan, validator=validator, header=header, questions=schema.questions)
        provenance = plan.mapping.provenance
        external_template = plan.mapping.get("external_id")
        id_column = external_template.column_for_errors() if external_template is not None else ""

        def rejected() -> None:
            self.counts["rejected_rows"] += 1

        if plan.constant_metadata.get("split"):
            self.has_split = True
        try:
            for chunk in cells:
                self.counts["rows"] += len(chunk)
                errors: list[RowError] = []
                rows = reader.read(chunk, errors, rejected)
                compact = CompactRows(metadata=reader.metadata, rater=reader.rater)
                # Labels of rows whose utterance was met before (another rater's): written after the chunk.
                attached = SpoolChunk(origin=provenance.origin, model_version=provenance.model_version,
                                      perspective=perspective)
                self._accept_fast(name, rows, compact, errors, id_column, attached,
                                  split=str(plan.constant_metadata.get("split") or ""))
                self._errors(errors)
                if not self.stop_writing and len(compact):
                    spool.append(SpoolChunk(origin=provenance.origin, model_version=provenance.model_version,
                                            perspective=perspective, compact=compact))
                if not self.stop_writing and attached.labels:
                    spool.append(attached)
                reporter.report(done=self.counts["rows"], total=2 * self.estimated_rows, counts=self.counts)
        finally:
            self.blank_cells += reader.blank_cells + validator.blank_cells
            self.counts["blank_cells"] = self.blank_cells

    def _accept_fast(self, name: str, rows: list[FastRow], out: CompactRows, errors: list[RowError],
                     id_column: str, labels: SpoolChunk, split: str = "") -> None:
        """``_accept_utterances`` for the fast path's rows: the same duplicate, label and external id rules."""
        if not rows:
            return
        in_corpus_hashes: dict[str, int] = {}
        in_corpus_ids: dict[str, str] = {}
        if self.corpus_had_rows:
            in_corpus_hashes = self._in_corpus([(r[7], _unsplit_hash(r) if split else "", split) for r in rows])
            ext_ids = [r[1] for r in rows if r[1]]
            if ext_ids:
                in_corpus_ids = dict(Utterance.objects.filter(corpus=self.corpus, external_id__in=ext_ids)
                                     .values_list("external_id", "content_hash"))
        seen = self.seen_hashes
        by_external_id = self.new_by_external_id
        if not in_corpus_hashes and not in_corpus_ids and self._accept_fast_all(rows, out, labels.perspective):
            return
        existing_keys = self._existing_label_keys(list(in_corpus_hashes.values()))
        accepted = unlabelled = 0
        for number, external_id, conversation, turn, speaker, language, text, digest, answers in rows:
            ref = ("n", seen[digest]) if digest in seen else ("e", in_corpus_hashes[digest]) \
                if digest in in_corpus_hashes else None
            if ref is not None:
                row_labels = [(out.rater, json.loads(answers))] if answers is not None else []
                self._attach(name, number, ref, row_labels, labels, existing_keys)
                continue
            if external_id:
                if external_id in by_external_id:
                    errors.append(RowError(
                        reason=f"external id {external_id!r} is used by an earlier row of this import with "
                               "different content", file=name, row=number, column=id_column))
                    self.counts["rejected_rows"] += 1
                    continue
                if external_id in in_corpus_ids:
                    errors.append(RowError(
                        reason=f"external id {external_id!r} is already used in the corpus by an utterance with "
                               "different content", file=name, row=number, column=id_column))
                    self.counts["rejected_rows"] += 1
                    continue
                by_external_id[external_id] = (digest, self.new_count + accepted)
            seen[digest] = self.new_count + accepted
            if answers is None:
                unlabelled += 1
            else:
                self.label_keys.add(("n", self.new_count + accepted, out.rater, labels.perspective))
            accepted += 1
            out.external_ids.append(external_id)
            out.conversations.append(conversation)
            out.turns.append(turn)
            out.speakers.append(speaker)
            out.languages.append(language)
            out.texts.append(text)
            out.hashes.append(digest)
            out.answers.append(answers)
        self.new_count += accepted
        self.counts["utterances_valid"] += accepted
        self.counts["unlabelled_rows"] += unlabelled
        self.languages.update(set(out.languages))

    def _accept_fast_all(self, rows: list[FastRow], out: CompactRows, perspective: str) -> bool:
        """The usual chunk, where the rules above accept every row: no content hash or external id seen before
        (in this import or in the corpus: the caller checked) and none twice in the chunk. Then the rows go in as
        whole columns; False (nothing done) when any row needs the row-by-row rules."""
        digests = [r[7] for r in rows]
        if len(set(digests)) != len(rows) or not self.seen_hashes.keys().isdisjoint(digests):
            return False
        by_external_id = self.new_by_external_id
        external_ids = [(i, r[1]) for i, r in enumerate(rows) if r[1]]
        if external_ids:
            distinct = {e for _, e in external_ids}
            if len(distinct) != len(external_ids) or not distinct.isdisjoint(by_external_id):
                return False
            for i, external_id in external_ids:
                by_external_id[external_id] = (rows[i][7], self.new_count + i)
        self.seen_hashes.update(zip(digests, range(self.new_count, self.new_count + len(rows))))
        _, ext, conversations, turns, speakers, languages, texts, hashes, answers = zip(*rows)
        out.external_ids.extend(ext)
        out.conversations.extend(conversations)
        out.turns.extend(turns)
        out.speakers.extend(speakers)
        out.languages.extend(languages)
        out.texts.extend(texts)
        out.hashes.extend(hashes)
        out.answers.extend(answers)
        accepted = len(rows)
        labelled = np.fromiter((a is not None for a in answers), dtype=bool, count=accepted)
        self.label_keys.add_range(self.new_count, out.rater, perspective, labelled)
        self.new_count += accepted
        self.counts["utterances_valid"] += accepted
        self.counts["unlabelled_rows"] += accepted - int(labelled.sum())
        self.languages.update(languages)
        return True

    def _in_corpus(self, rows: list[tuple[str, str, str]]) -> dict[str, int]:
        """The corpus utterances these rows (content hash, hash without the split, split) already are: by content
        hash, or, for utterances imported before the split was part of an utterance's identity, by the hash
        without it when the stored split is the row's."""
        wanted = {digest for digest, _, _ in rows} | {base for _, base, split in rows if split}
        found = {digest: (pk, split) for digest, pk, split in Utterance.objects.filter(
            corpus=self.corpus, content_hash__in=list(wanted)).values_list("content_hash", "pk", "metadata__split")}
        out: dict[str, int] = {}
        for digest, base, split in rows:
            if digest in found:
                out[digest] = found[digest][0]
            elif split and base in found and found[base][1] == split:
                out[digest] = found[base][0]
        return out

    def _existing_label_keys(self, utterance_ids: list[int]) -> set[tuple[Any, ...]]:
        """(kind, utterance, rater, perspective) of the imported labels these corpus utterances already carry."""
        if not utterance_ids or self.schema_version is None:
            return set()
        return {("e", u, r, p) for u, r, p in Annotation.objects.filter(
            utterance_id__in=utterance_ids, schema_version=self.schema_version, project__isnull=True,
        ).values_list("utterance_id", "external_rater", "perspective")}

    def _attach(self, name: str, row: int, ref: tuple[str, int], labels: list[tuple[str, dict[str, Any]]],
                out: SpoolChunk, existing_keys: set[tuple[Any, ...]], duplicate_reason: str = "") -> int:
        """Attach a row's labels to an utterance met before (earlier in this import, or in the corpus): the other
        raters of one text are labels of one utterance; only the same rater again is a duplicate."""
        attached = 0
        for rater, answers in labels:
            key = (ref[0], ref[1], rater, out.perspective)
            if key in self.label_keys or key in existing_keys:
                continue
            self.label_keys.add(key)
            out.labels.append((ref[0] == "n", ref[1], answers, rater))
            attached += 1
        if attached:
            self.counts["labels_valid"] += attached
            self.counts["labels_attached"] += attached
            return attached
        where = "an earlier row of this import" if ref[0] == "n" else "the corpus"
        raters = ", ".join(sorted({rater or "the source" for rater, _ in labels}))
        self._note(name, row, duplicate_reason or (
            f"a duplicate: this utterance and its label by {raters} are already in {where}; skipped" if labels
            else f"a duplicate: this utterance is already in {where}; skipped"))
        return 0

    def _accept_utterances(self, name: str, drafts: list[UtteranceDraft], out: SpoolChunk,
                           errors: list[RowError], id_column: str) -> None:
        if not drafts:
            return
        in_corpus_hashes: dict[str, int] = {}
        in_corpus_ids: dict[str, str] = {}
        if self.corpus_had_rows:
            in_corpus_hashes = self._in_corpus([(d.content_hash, d.base_hash, d.split) for d in drafts])
            ext_ids = [d.external_id for d in drafts if d.external_id]
            if ext_ids:
                in_corpus_ids = dict(Utterance.objects.filter(corpus=self.corpus, external_id__in=ext_ids)
                                     .values_list("external_id", "content_hash"))
        existing_keys = self._existing_label_keys(list(in_corpus_hashes.values()))
        from corpora.importing.audio import audio_store

        for d in drafts:
            labels = ([(d.rater, d.answers)] if d.answers is not None else []) + d.more_labels
            if d.content_hash in self.seen_hashes:
                self._attach(name, d.row, ("n", self.seen_hashes[d.content_hash]), labels, out, existing_keys)
                continue
            if d.content_hash in in_corpus_hashes:
                self._attach(name, d.row, ("e", in_corpus_hashes[d.content_hash]), labels, out, existing_keys)
                continue
            if d.external_id:
                if d.external_id in self.new_by_external_id:
                    errors.append(RowError(
                        reason=f"external id {d.external_id!r} is used by an earlier row of this import with "
                               "different content", file=name, row=d.row, column=id_column))
                    self.counts["rejected_rows"] += 1
                    continue
                if d.external_id in in_corpus_ids:
                    errors.append(RowError(
                        reason=f"external id {d.external_id!r} is already used in the corpus by an utterance with "
                               "different content", file=name, row=d.row, column=id_column))
                    self.counts["rejected_rows"] += 1
                    continue
            index = self.new_count
            self.seen_hashes[d.content_hash] = index
            if d.external_id:
                self.new_by_external_id[d.external_id] = (d.content_hash, index)
            self.new_count += 1
            self.counts["utterances_valid"] += 1
            if not labels:
                self.counts["unlabelled_rows"] += 1
            self.languages.add(d.language)
            if d.split:
                self.has_split = True
            audio = ""
            doomed = self.stop_writing or (self.mode == "all_or_nothing" and bool(errors))
            if d.audio_data is not None and not doomed:
                audio = audio_store(corpus_id=self.corpus.pk, data=d.audio_data, name=d.audio_name)
                self.stored_audio.append(audio)
            d.audio_data = None
            if d.answers is not None:
                self.label_keys.add(("n", index, d.rater, out.perspective))
            out.utterances.append((
                d.external_id, d.conversation, d.turn_index, d.speaker, d.language, d.text, audio,
                d.audio_duration_s, d.audio_sample_rate, d.start_s, d.end_s, d.metadata, d.content_hash, d.answers,
                d.rater,
            ))
            for rater, answers in d.more_labels:
                key = ("n", index, rater, out.perspective)
                if key in self.label_keys:
                    continue
                self.label_keys.add(key)
                out.labels.append((True, index, answers, rater))
                self.counts["labels_valid"] += 1

    def _accept_labels(self, name: str, labels: list[LabelDraft], out: SpoolChunk, errors: list[RowError],
                       perspective: str, id_column: str) -> None:
        if not labels:
            return
        unknown = {d.external_id for d in labels if d.external_id not in self.new_by_external_id
                   and d.external_id not in self.existing_ids}
        if unknown:
            if len(self.existing_ids) > 500_000:
                self.existing_ids.clear()
            found = dict(Utterance.objects.filter(corpus=self.corpus, external_id__in=list(unknown))
                         .values_list("external_id", "pk"))
            self.existing_ids.update(found)
        existing_keys = self._existing_label_keys(
            [self.existing_ids[d.external_id] for d in labels if d.external_id in self.existing_ids])
        for d in labels:
            if d.external_id in self.new_by_external_id:
                key: tuple[Any, ...] = ("n", self.new_by_external_id[d.external_id][1], d.rater, perspective)
            elif d.external_id in self.existing_ids:
                key = ("e", self.existing_ids[d.external_id], d.rater, perspective)
            else:
                errors.append(RowError(reason=f"no utterance with external id {d.external_id!r} in this corpus "
                                              "(import the utterances first)", file=name, row=d.row,
                                       column=id_column))
                self.counts["rejected_rows"] += 1
                continue
            if key in self.label_keys or key in existing_keys:
                self._note(name, d.row, f"this label by {d.rater or 'the source'} is already on the utterance; skipped")
                continue
            self.label_keys.add(key)
            self.counts["labels_valid"] += 1
            out.labels.append((key[0] == "n", key[1], d.answers, d.rater))

    def _write(self, spool: Spool, schema: _Schema, snapshot: tuple[int, int | None],
               reporter: ProgressReporter) -> None:
        """Write the spool in one transaction. Progress: every row read plus every row written, of twice the rows."""
        written = 0

        def total() -> int:
            return max(2 * self.estimated_rows, 2 * self.counts["rows"])

        def on_chunk(rows: int) -> None:
            nonlocal written
            written += rows
            reporter.report(done=self.counts["rows"] + written, total=total(), counts=self.counts,
                            in_transaction=True)

        try:
            with transaction.atomic():
                Corpus.objects.select_for_update().filter(pk=self.corpus.pk).first()
                if connection.vendor != "postgresql" and _corpus_snapshot(self.corpus) != snapshot:
                    raise _ImportFailed("another import wrote to this corpus while this one was reading; "
                                        "nothing was written: run the import again")
                version = schema.version or _schema_version_get_or_create(schema.definition)
                started = time.perf_counter()
                result = spool_write(spool=spool, corpus=self.corpus, schema_version=version, job=self.job,
                                     languages=self.languages, on_chunk=on_chunk)
                self.timings["write_s"] = round(time.perf_counter() - started, 3)
                self.counts.update(created=result.utterances, annotations=result.annotations,
                                   conversations=result.conversations, speakers=result.speakers)
                if self.has_split:
                    self.cross_split = _cross_split_texts(self.corpus)
                    self.counts["cross_split_texts"] = self.cross_split["count"]
                reporter.flush()  # no stale progress may land after the job finished
                counts = self.counts
                message = (f"Imported {result.utterances} utterance(s) and {result.annotations} label(s)"
                           + (f" ({counts['labels_attached']} attached to utterances met before: other raters of "
                              "the same text)" if counts["labels_attached"] else "")
                           + (f"; {counts['duplicates']} duplicate(s) skipped" if counts["duplicates"] else "")
                           + (f"; {counts['blank_cells']} blank label cell(s) kept as 'no answer'"
                              if counts["blank_cells"] else "")
                           + (f"; {counts['cross_split_texts']} text(s) appear in more than one split (each kept as "
                              "its own item there; see the result's cross_split_texts)"
                              if counts["cross_split_texts"] else "")
                           + (f"; {self.error_total} row(s)/file(s) rejected" if self.error_total else "") + ".")
                self.job.progress_total = total()
                job_succeed(job=self.job, counts=self.counts, message=message, result=self._result())
                if result.utterances:
                    # The corpus grew: its projects get items for the new utterances in the same transaction,
                    # so annotators can start the moment the import commits.
                    project_items_for_corpus_sync(self.corpus.pk)
        except IntegrityError as exc:
            self._cleanup_audio()
            job_fail(job=self.job, counts=self.counts, message=(
                "Writing the import conflicted with data written at the same time (another import into this corpus?); "
                f"nothing was written: run it again. ({exc})"))
        except _ImportFailed as exc:
            self._cleanup_audio()
            job_fail(job=self.job, counts=self.counts, message=str(exc))
        except BaseException:
            self._cleanup_audio()
            raise

    def _result(self) -> dict[str, Any]:
        return {"timings": self.timings, "notes": self.notes, "notes_total": self.counts["duplicates"],
                "cross_split_texts": self.cross_split["examples"],
                "first_errors": [{"file": e.file, "row": e.row, "column": e.column, "reason": e.reason}
                                 for e in self.first_errors[:20]]}

    def _store_result(self) -> None:
        Job.objects.filter(pk=self.job.pk).update(result=self._result())
        self.job.result = self._result()

    def _cleanup_audio(self) -> None:
        if not self.stored_audio:
            return
        from corpora.importing.audio import audio_delete

        names = set(self.stored_audio)
        in_use = set(Utterance.objects.filter(audio__in=list(names)).values_list("audio", flat=True))
        audio_delete(sorted(names - in_use))
        self.stored_audio = []


CROSS_SPLIT_EXAMPLES = 20


def _unsplit_hash(row: FastRow) -> str:
    """A fast-path row's content hash without its split (see ``_ImportRun._in_corpus``)."""
    _, external_id, conversation, turn, speaker, language, text, _, _ = row
    return content_hash(language=language, conversation=conversation, turn_index=turn, speaker=speaker, text=text,
                        audio_digest="", external_id=external_id)


def _cross_split_texts(corpus: Corpus) -> dict[str, Any]:
    """Texts (audio-less, compared trimmed and lower-cased, per language) that the corpus holds in more than one
    split: each is its own item in its split, and the lead decides. The first few name their splits and ids."""
    keyed = (Utterance.objects.filter(corpus=corpus, audio="").exclude(text="")
             .annotate(key=MD5(Lower(Trim("text"))), split=KT("metadata__split")))
    shared = (keyed.filter(split__isnull=False).values("language_id", "key").annotate(n=Count("split", distinct=True))
              .filter(n__gt=1).order_by("language_id", "key"))
    count = shared.count()
    examples = []
    for group in shared[:CROSS_SPLIT_EXAMPLES]:
        members = keyed.filter(language_id=group["language_id"], key=group["key"]).order_by("id").values(
            "id", "external_id", "split", "text", "language__code")
        splits: dict[str, list[str]] = {}
        text, language = "", ""
        for member in members:
            splits.setdefault(member["split"] or "", []).append(member["external_id"] or f"utterance {member['id']}")
            text, language = member["text"], member["language__code"]
        examples.append({"text": text[:200], "language": language, "splits": splits})
    return {"count": count, "examples": examples}


def _schema_version_get_or_create(definition: SchemaDefinition | None) -> LabelSchemaVersion | None:
    if definition is None:
        return None
    existing = LabelSchemaVersion.objects.filter(schema__slug=definition.slug).order_by("-version").first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            return label_schema_create(name=definition.name, slug=definition.slug, questions=definition.questions,
                                       perspectives=definition.perspectives, description=definition.description)
    except IntegrityError:  # created by a concurrent import a moment ago
        return LabelSchemaVersion.objects.filter(schema__slug=definition.slug).order_by("-version").first()
    except SchemaError as exc:  # a preset's own schema is valid; this is a programming error
        raise _ImportFailed(f"the preset's label schema is invalid: {exc}") from exc


def _corpus_snapshot(corpus: Corpus) -> tuple[int, int | None]:
    aggregate = Utterance.objects.filter(corpus=corpus).aggregate(last=Max("id"))
    return Utterance.objects.filter(corpus=corpus).count(), aggregate["last"]


@contextmanager
def _cyclic_gc_paused():  # type: ignore[no-untyped-def]
    """Pause Python's cycle collector for the run: with millions of short-lived rows it would take a third of
    the reading time, finding nothing (the import makes no reference cycles worth collecting early)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
        gc.collect()


@contextmanager
def _corpus_import_lock(corpus_id: int):  # type: ignore[no-untyped-def]
    """Imports into one corpus run one at a time (PostgreSQL session advisory lock; freed if the worker dies)."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s, %s)", [_ADVISORY_LOCK_CLASS, corpus_id])
    try:
        yield
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [_ADVISORY_LOCK_CLASS, corpus_id])
        except Exception:  # the connection is gone, and with it the lock
            logger.warning("could not release the import lock of corpus %s", corpus_id, exc_info=True)


@contextmanager
def _local_copy(storage_name: str, workdir: Path):  # type: ignore[no-untyped-def]
    """A local path to a stored file: the file itself on local storage, else a temporary copy (S3)."""
    try:
        local = Path(default_storage.path(storage_name))
    except NotImplementedError:
        local = None
    if local is not None:
        if not local.exists():
            raise FileRejected(PurePosixPath(storage_name).name, "the uploaded file is no longer in storage")
        yield local
        return
    fd, tmp = tempfile.mkstemp(dir=workdir, suffix=PurePosixPath(storage_name).suffix)
    try:
        with os.fdopen(fd, "wb") as out, default_storage.open(storage_name, "rb") as src:
            shutil.copyfileobj(src, out, length=1024 * 1024)
        yield Path(tmp)
    finally:
        Path(tmp).unlink(missing_ok=True)



def import_job_fail(*, job_id: int, message: str) -> None:
    """Fail an import job from outside its run (the task gave up retrying)."""
    job = Job.objects.filter(pk=job_id).first()
    if job is not None and not job.is_finished:
        job_fail(job=job, message=message)
        if settings.IMPORT_UPLOADS_KEEP_DAYS == 0:
            import_uploads_delete(job=job)
