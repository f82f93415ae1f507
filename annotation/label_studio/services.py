"""Writes for the Label Studio bridge (see README.md).

- Import a Label Studio project: its JSON export (a file) or a running Label Studio (through label-studio-sdk,
  behind the SSRF guard). The labelling config becomes a schema version; every task an utterance; every
  annotation of every annotator an imported human annotation (rater ``ls:<user id>``, its time, lead time and
  skipped state, its Label Studio id); every prediction a Prediction and a model annotation with its model
  version. The import is one transaction: it writes all or, in ``all_or_nothing`` mode with any problem, nothing;
  re-importing the same project adds only what is new (tasks, annotations and predictions are matched by id).
- The ML backend's writes: ``/webhook`` keeps annotations made in Label Studio in step, and starts training.
- The ML backend's ``/predict`` runs the project's models (stored predictions first, text models inline).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import shutil
import tempfile
import time
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urljoin, urlsplit

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import OperationalError, connection, transaction
from django.db.models import Model
from django.utils import timezone
from django.utils.text import get_valid_filename

from annotation.distribution.services import project_items_for_corpus_sync
from annotation.label_studio.parsing import (
    ConfigMapping,
    LabelConfigError,
    TaskDraft,
    answers_result,
    label_config_map,
    number_ranges_apply,
    number_values,
    task_read,
)
from annotation.label_studio.selectors import (
    MLBackendModel,
    ml_backend_models,
    task_utterances,
    utterance_annotation_by_external_id,
)
from annotation.models import Annotation, LabelSchema, LabelSchemaVersion, Origin, Prediction, Project
from annotation.predictions.services import META_KEY, PredictionSetupError, preannotation_job_create
from annotation.schema import SchemaError, parse_questions, validate_answers
from annotation.services import label_schema_create, label_schema_version_create
from config.outbound import OutboundRefused, outbound_addresses, outbound_client, outbound_get
from corpora.importing.progress import ProgressCallback, ProgressReporter
from corpora.importing.services import _corpus_import_lock, _cyclic_gc_paused, import_uploads_delete
from corpora.importing.validation import content_hash
from corpora.importing.writer import (
    _column_defaults,
    _copy,
    _copy_text,
    _CopyFormat,
    _escape,
    _lock_rows,
    _row_pattern,
    _sequences,
    _skip_foreign_key_triggers,
)
from corpora.importing.writer import _reserve_ids as _sequence_ids
from corpora.languages import UnknownLanguageError, language_get_or_create, normalise_language_tag
from corpora.models import Conversation, Corpus, Language, Speaker, Utterance
from corpora.selectors import corpora_visible_to
from jobs.dispatch import Task, task_send_on_commit
from jobs.models import Job, JobKind
from jobs.services import (
    MAX_STORED_ERRORS_PER_JOB,
    RowError,
    job_create,
    job_fail,
    job_record_errors,
    job_start,
    job_succeed,
)

if TYPE_CHECKING:
    from corpora.importing.audio import AudioBundle

logger = logging.getLogger(__name__)

MODES = ("all_or_nothing", "skip_invalid")
CHUNK_TASKS = 2000
READ_BLOCK_CHARS = 4 * 1024 * 1024
MAX_TASK_CHARS = 64 * 1024 * 1024  # a task may span blocks, up to this size
FIRST_ERRORS_KEPT = 50
MAX_NOTES = 200
MAX_PREDICT_TASKS = 1000
MAX_INLINE_TEXTS = 256  # texts a /predict may run a model on in the request; stored predictions have no limit
TRAIN_EVENTS = ("START_TRAINING",)
ANNOTATION_EVENTS = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED")
DELETE_EVENTS = ("ANNOTATION_DELETED", "ANNOTATIONS_DELETED")
_SLUG_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-_")
# Every table the import's transaction writes after it may have turned foreign-key triggers off.
_WRITTEN_TABLES = [model._meta.db_table for model in (Utterance, Annotation, Prediction, Conversation, Speaker,
                                                      Corpus.languages.through, Language, Job)]


class LabelStudioError(ValueError):
    """A request that cannot work, found before anything is written; ``errors`` maps the field to the reason."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


# --- options and the job ----------------------------------------------------------------------------------------


def label_studio_options_clean(options: Mapping[str, Any], *, corpus: Corpus) -> dict[str, Any]:
    """Check the import's options; return them normalised, or LabelStudioError naming each bad one."""
    errors: dict[str, str] = {}
    allowed = {"schema", "schema_name", "language", "mode", "audio_dir", "base_url"}
    unknown = sorted(set(options) - allowed)
    if unknown:
        errors["options"] = f"unknown option(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
    cleaned: dict[str, Any] = {}
    slug = str(options.get("schema") or f"{corpus.slug}-label-studio").strip().lower()[:100]
    if not slug or not set(slug) <= _SLUG_CHARS:
        errors["schema"] = "a schema slug is lowercase letters, digits, '-' and '_'"
    cleaned["schema"] = slug
    cleaned["schema_name"] = str(options.get("schema_name") or f"{corpus.name} (Label Studio)")[:200]
    if options.get("language"):
        try:
            cleaned["language"] = normalise_language_tag(str(options["language"]))
        except UnknownLanguageError as exc:
            errors["language"] = str(exc)
    mode = options.get("mode") or "all_or_nothing"
    if mode not in MODES:
        errors["mode"] = f"must be one of {', '.join(MODES)}"
    cleaned["mode"] = mode
    if options.get("audio_dir"):
        folder = Path(str(options["audio_dir"])).expanduser()
        if not folder.is_dir():
            errors["audio_dir"] = f"{folder} is not a folder"
        cleaned["audio_dir"] = str(folder.resolve())
    if options.get("base_url"):
        base = str(options["base_url"]).strip().rstrip("/")
        if urlsplit(base).scheme not in ("http", "https") or not urlsplit(base).netloc:
            errors["base_url"] = f"{base!r} is not an http(s) URL"
        cleaned["base_url"] = base
    if errors:
        raise LabelStudioError(errors)
    return cleaned


def label_studio_config_check(label_config: str) -> ConfigMapping:
    try:
        return label_config_map(label_config)
    except LabelConfigError as exc:
        raise LabelStudioError({"config": str(exc)}) from None


def label_studio_import_job_create(
    *, corpus: Corpus, export_file: File, label_config: str, options: Mapping[str, Any], created_by: Any,
    enqueue: bool = True,
) -> Job:
    """Check the options and the config, store the export under imports/<job id>/, create the job and (unless
    ``enqueue`` is False: the command line runs it in its own process) enqueue it after commit."""
    cleaned = label_studio_options_clean(options, corpus=corpus)
    label_studio_config_check(label_config)
    size = export_file.size
    limit = int(settings.IMPORT_MAX_FILE_BYTES)
    if size is not None and size > limit:
        raise LabelStudioError({"file": f"the export is {size:,} bytes; the limit is {limit:,} bytes"})
    original = get_valid_filename(PurePosixPath(str(export_file.name or "export.json")).name) or "export.json"
    saved = ""
    user = created_by if created_by is not None and getattr(created_by, "is_authenticated", False) else None
    try:
        with transaction.atomic():
            job = job_create(kind=JobKind.LABEL_STUDIO_IMPORT, created_by=user, corpus=corpus, params={})
            saved = default_storage.save(f"imports/{job.pk}/label-studio-{original}", export_file)
            job.params = {"options": cleaned, "file": saved, "original": original, "label_config": label_config}
            job.save(update_fields=["params"])
            if enqueue:
                task_send_on_commit(Task.LABEL_STUDIO_IMPORT, job.pk)
    except Exception:
        if saved:
            default_storage.delete(saved)
        raise
    return job


# --- a running Label Studio ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RemoteProject:
    title: str
    label_config: str
    export: Path


def _api_error_text(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        body = body.get("detail") or body
    return str(body)[:300]


def label_studio_project_fetch(*, url: str, token: str, project_id: int, folder: Path) -> RemoteProject:
    """A project's labelling config and its full JSON export (every task, annotation and prediction), downloaded
    with label-studio-sdk through the SSRF guard into ``folder``."""
    from label_studio_sdk.client import LabelStudio
    from label_studio_sdk.core.api_error import ApiError

    base = url.strip().rstrip("/")
    if not token:
        raise LabelStudioError({"token": "give the Label Studio API token (Account & Settings → Access Token)"})
    try:
        outbound_addresses(base)
    except OutboundRefused as exc:
        raise LabelStudioError({"url": str(exc)}) from None
    limit = int(settings.IMPORT_MAX_FILE_BYTES)
    path = folder / f"label-studio-project-{int(project_id)}.json"
    with outbound_client(timeout=300) as http:
        client = LabelStudio(base_url=base, api_key=token, httpx_client=http)
        try:
            project = client.projects.get(id=project_id)
            config = getattr(project, "label_config", None)
            if not isinstance(config, str) or not config.strip():
                raise LabelStudioError({"project_id": f"Label Studio project {project_id} has no labelling config"})
            written = 0
            with path.open("wb") as out:
                for chunk in client.projects.exports.download_sync(project_id, export_type="JSON",
                                                                   download_all_tasks=True):
                    written += len(chunk)
                    if written > limit:
                        raise LabelStudioError({"url": f"the project's export is larger than {limit:,} bytes"})
                    out.write(chunk)
        except ApiError as exc:
            what = {401: "the token was refused", 403: "the token may not read this project",
                    404: f"there is no project {project_id}"}.get(exc.status_code or 0, "it failed")
            raise LabelStudioError({"url": f"Label Studio answered {exc.status_code}: {what} ({_api_error_text(exc)})"}
                                   ) from None
        except OutboundRefused as exc:
            raise LabelStudioError({"url": str(exc)}) from None
    return RemoteProject(title=str(getattr(project, "title", "") or ""), label_config=config, export=path)


# --- running an import ----------------------------------------------------------------------------------------


class _Failed(Exception):
    """Ends the import FAILED with this message; nothing was written."""


def label_studio_import_run(*, job_id: int, on_progress: ProgressCallback | None = None,
                            audio_headers: Mapping[str, str] | None = None) -> None:
    """Run an import job to its end; a redelivered message for a finished job does nothing.

    ``audio_headers`` (the command line's Label Studio token) go with fetches of the Label Studio server's own
    media paths; they are never stored.
    """
    job = job_start(job_id=job_id)
    if job is None:
        return
    run = _Import(job, on_progress, dict(audio_headers or {}))
    try:
        with _cyclic_gc_paused():  # the corpus import's reason: millions of short-lived objects, no cycles
            run.run()
    except _Failed as exc:
        run.cleanup_audio()
        run.record_errors()
        job_fail(job=job, message=str(exc), counts=run.counts)
        Job.objects.filter(pk=job.pk).update(result=run.result())
    except OperationalError:
        run.cleanup_audio()
        raise
    except Exception as exc:
        run.cleanup_audio()
        logger.exception("Label Studio import job %s failed", job_id)
        job_fail(job=job, message=f"The import stopped on an unexpected error ({type(exc).__name__}: {exc}); "
                                  "nothing was written.", counts=run.counts)
    if settings.IMPORT_UPLOADS_KEEP_DAYS == 0:
        import_uploads_delete(job=job)


@dataclass
class _Audio:
    name: str
    duration_s: float
    sample_rate: int
    digest: str


@dataclass
class _Pending:
    """A task read and checked, waiting for its chunk to be written."""

    row: int
    draft: TaskDraft
    language: str
    audio: _Audio | None
    hash: str


class _Import:
    def __init__(self, job: Job, on_progress: ProgressCallback | None, audio_headers: dict[str, str]):
        self.job = job
        self.on_progress = on_progress
        self.audio_headers = audio_headers
        params = job.params or {}
        self.options: dict[str, Any] = dict(params.get("options") or {})
        self.file_name: str = params.get("file", "")
        self.shown_name: str = params.get("original") or PurePosixPath(self.file_name).name
        self.label_config: str = params.get("label_config", "")
        self.mode = self.options.get("mode", "all_or_nothing")
        self.corpus: Corpus = job.corpus  # type: ignore[assignment]  # checked first thing in run()
        self.counts: dict[str, int] = dict.fromkeys((
            "tasks", "utterances", "utterances_matched", "annotations", "cancelled", "predictions",
            "model_annotations", "already_imported", "duplicates", "rejected_tasks", "rejected_annotations",
            "dropped_regions", "predictions_without_content", "audio_files", "errors"), 0)
        self.errors: list[RowError] = []  # the first MAX_STORED_ERRORS_PER_JOB; error_total counts them all
        self.error_total = 0
        self.errors_recorded = 0  # of error_total
        self.kept_recorded = 0  # of errors
        self.notes: list[dict[str, Any]] = []
        self.raters: dict[str, str] = {}
        self.mapping: ConfigMapping | None = None
        self.version: LabelSchemaVersion | None = None
        self.stored_audio: list[str] = []
        self.timings: dict[str, float] = {}
        self._audio_folder: AudioBundle | None = None
        self._audio_names: dict[str, str] = {}  # file name -> its path in the audio folder (the first, sorted)
        # per-import state
        self.seen_external: dict[str, int] = {}  # external id -> row of the task that brought it
        self.known: dict[str, int] = {}  # external id or content hash -> utterance id
        self.language_ids: dict[str, int] = {}
        self.conversation_ids: dict[str, int] = {}
        self.speaker_ids: dict[str, int] = {}
        self.prediction_keys: set[tuple[int, str]] = set()
        self.corpus_had_rows = False
        self.skip_triggers = False
        self.now = timezone.now()

    # errors

    @property
    def stop_writing(self) -> bool:
        return self.mode == "all_or_nothing" and self.error_total > 0

    def _error(self, row: int | None, column: str, reason: str) -> None:
        self.error_total += 1
        self.counts["errors"] = self.error_total
        if len(self.errors) < MAX_STORED_ERRORS_PER_JOB:
            self.errors.append(RowError(reason=reason, file=self.shown_name, row=row, column=column[:200]))

    def _note(self, row: int, reason: str) -> None:
        if len(self.notes) < MAX_NOTES:
            self.notes.append({"row": row, "reason": reason})

    def record_errors(self) -> None:
        """Store the errors kept and count every one (the kept list is bounded, the count is not)."""
        if self.error_total > self.errors_recorded:
            job_record_errors(job=self.job, errors=self.errors[self.kept_recorded:],
                              total=self.error_total - self.errors_recorded)
            self.errors_recorded, self.kept_recorded = self.error_total, len(self.errors)

    def result(self) -> dict[str, Any]:
        mapping = self.mapping
        out: dict[str, Any] = {
            "timings": self.timings, "notes": self.notes, "raters": dict(sorted(self.raters.items())),
            "first_errors": [{"row": e.row, "column": e.column, "reason": e.reason} for e in self.errors[:FIRST_ERRORS_KEPT]],
        }
        if mapping is not None:
            out["unmapped"] = [{"tag": u.tag, "name": u.name, "reason": u.reason} for u in mapping.unmapped]
            out["questions"] = {name: control.key for name, control in mapping.controls.items()}
        if self.version is not None:
            out["schema"] = {"id": self.version.pk, "slug": self.version.schema.slug, "version": self.version.version}
        return out

    # the run

    def run(self) -> None:
        started = time.perf_counter()
        if self.corpus is None:
            raise _Failed("the job names no corpus")
        mapping = self._mapping()
        # One import into a corpus at a time, whichever importer runs it (the corpus import takes the same lock).
        with _corpus_import_lock(self.corpus.pk), tempfile.TemporaryDirectory(prefix="sentio-ls-import-") as folder, \
                _local_file(self.file_name, Path(folder)) as path:
            if mapping.open_numbers:
                seen: dict[str, tuple[float, float]] = {}
                with path.open("rb") as fh:
                    for task in _tasks(fh, self.shown_name):
                        number_values(task, mapping.open_numbers, seen)
                try:
                    mapping = number_ranges_apply(mapping, seen)
                except LabelConfigError as exc:
                    raise _Failed(f"The labelling config cannot be used: {exc}") from None
            self.mapping = mapping
            reporter = ProgressReporter(job=self.job, callback=self.on_progress)
            try:
                self._import(path, mapping, reporter)
            finally:
                reporter.close()
        self.timings["total_s"] = round(time.perf_counter() - started, 3)

    def _mapping(self) -> ConfigMapping:
        try:
            return label_config_map(self.label_config)
        except LabelConfigError as exc:
            raise _Failed(f"The labelling config cannot be used: {exc}") from None

    def _import(self, path: Path, mapping: ConfigMapping, reporter: ProgressReporter) -> None:
        questions = mapping.lenient_questions()
        total = path.stat().st_size
        _sequences.clear()  # the sequences' oids are looked up again for each import, as the corpus importer does
        with transaction.atomic():
            Corpus.objects.select_for_update().filter(pk=self.corpus.pk).first()
            self.corpus_had_rows = Utterance.objects.filter(corpus=self.corpus).exists()
            self.version = self._schema_version(mapping)
            self.skip_triggers = connection.vendor == "postgresql" and _skip_foreign_key_triggers(_WRITTEN_TABLES)
            if self.skip_triggers:
                # What the skipped foreign-key triggers would do: keep the parents this import did not create.
                _lock_rows(Job._meta.db_table, [self.job.pk])
                _lock_rows(LabelSchemaVersion._meta.db_table, [self.version.pk])
            writer = _Writer(self)
            batch: list[_Pending] = []
            with path.open("rb") as fh:
                for row, task in enumerate(_tasks(fh, self.shown_name), start=1):
                    self.counts["tasks"] += 1
                    pending = self._read(row, task, mapping, questions)
                    if pending is not None and not self.stop_writing:
                        batch.append(pending)
                    if len(batch) >= CHUNK_TASKS:
                        writer.write(batch)
                        batch = []
                        reporter.report(done=fh.tell(), total=total, counts=self.counts, in_transaction=True)
                if batch and not self.stop_writing:
                    writer.write(batch)
            if self.counts["tasks"] == 0:
                raise _Failed(f"{self.shown_name} holds no tasks: a Label Studio JSON export is a list of tasks "
                              "(export the project as JSON, not JSON-MIN or CSV)")
            if self.stop_writing:
                raise _Failed(f"{self.error_total} problem(s) in the export; in all_or_nothing mode nothing was "
                              "imported. Fix them, or import with mode skip_invalid.")
            if not self.counts["utterances"] + self.counts["utterances_matched"]:
                raise _Failed("no task could be imported; nothing was written")
            if self.skip_triggers:
                with connection.cursor() as cursor:  # the rows are in; what follows runs with every trigger
                    cursor.execute("SET LOCAL session_replication_role = DEFAULT")
            self.corpus.languages.add(*self.language_ids.values())
            self.timings["write_s"] = round(writer.seconds, 3)
            reporter.flush()
            message = (f"Imported {self.counts['utterances']} utterance(s) ({self.counts['utterances_matched']} "
                       f"already in the corpus), {self.counts['annotations']} annotation(s) and "
                       f"{self.counts['predictions']} prediction(s)"
                       + (f"; {self.error_total} problem(s) skipped" if self.error_total else "")
                       + (f"; not imported: {', '.join(sorted({u.tag for u in mapping.unmapped}))}"
                          if mapping.unmapped else "") + ".")
            job_succeed(job=self.job, counts=self.counts, message=message, result=self.result())
            if self.counts["utterances"]:
                # As a corpus import does: the corpus's projects get items for the new utterances at once.
                project_items_for_corpus_sync(self.corpus.pk)
        self.record_errors()

    def _schema_version(self, mapping: ConfigMapping) -> LabelSchemaVersion:
        slug = self.options["schema"]
        schema = LabelSchema.objects.filter(slug=slug).first()
        try:
            if schema is None:
                return label_schema_create(name=self.options["schema_name"], slug=slug, questions=mapping.questions,
                                           created_by=self.job.created_by,
                                           description="Made from a Label Studio labelling config.")
            latest = schema.versions.order_by("-version").first()
            if latest is not None and latest.questions == mapping.questions and not latest.perspectives:
                return latest
            return label_schema_version_create(schema=schema, questions=mapping.questions)
        except SchemaError as exc:
            raise _Failed(f"the questions made from the labelling config are not a valid schema: {exc}") from None

    # reading one task

    def _read(self, row: int, task: Any, mapping: ConfigMapping, questions: list[Any]) -> _Pending | None:
        draft = task_read(mapping, task, questions=questions)
        self.counts["dropped_regions"] += draft.dropped_regions
        self.counts["predictions_without_content"] += draft.predictions_as_ids
        task_level = [p for p in draft.problems if not p.where.startswith(("annotations[", "predictions["))]
        bad_items = {p.where.split("]")[0] for p in draft.problems if p.where.startswith(("annotations[", "predictions["))}
        for problem in draft.problems:
            self._error(row, problem.where, problem.reason)
        self.counts["rejected_annotations"] += len(bad_items)
        if task_level:
            self.counts["rejected_tasks"] += 1
            return None
        for annotation in draft.annotations:
            if annotation.rater_email:
                self.raters[annotation.rater] = annotation.rater_email
        if draft.external_id:
            earlier = self.seen_external.get(draft.external_id)
            if earlier is not None:
                self._error(row, "id", f"task {draft.external_id!r} appears twice in the export (rows {earlier} and "
                                       f"{row})")
                self.counts["rejected_tasks"] += 1
                return None
            self.seen_external[draft.external_id] = row
        language = self.options.get("language", "")
        if draft.language:
            try:
                language = normalise_language_tag(draft.language)
            except UnknownLanguageError as exc:
                self._error(row, "data.language", str(exc))
                self.counts["rejected_tasks"] += 1
                return None
        if not language:
            self._error(row, "data.language", "the task names no language and the import gives none (--language)")
            self.counts["rejected_tasks"] += 1
            return None
        audio = None
        if draft.audio and not self.stop_writing:
            try:
                audio = self._audio(draft.audio)
            except (OutboundRefused, ValueError) as exc:  # AudioRejected is a ValueError
                self._error(row, f"data.{mapping.audio_var}", str(exc))
                self.counts["rejected_tasks"] += 1
                return None
        digest = content_hash(language=language, conversation=draft.conversation, turn_index=None,
                              speaker=draft.speaker, text=draft.text, audio_digest=audio.digest if audio else "",
                              external_id=draft.external_id)
        return _Pending(row, draft, language, audio, digest)

    # audio

    def _audio(self, reference: str) -> _Audio:
        from corpora.importing.audio import audio_probe, audio_store

        name, data = self._audio_bytes(reference)
        info = audio_probe(data, name=name)
        stored = audio_store(corpus_id=self.corpus.pk, data=data, name=name)
        if stored not in self.stored_audio:
            self.stored_audio.append(stored)
        self.counts["audio_files"] += 1
        return _Audio(stored, info.duration_s, info.sample_rate, hashlib.blake2b(data, digest_size=16).hexdigest())

    def _audio_bytes(self, reference: str) -> tuple[str, bytes]:
        """(a file name that tells the format, the bytes) of a task's audio: a Sentio media link, a URL (through the
        SSRF guard), a path on the Label Studio server (fetched from it with the token), or a file in audio_dir."""
        limit = int(settings.IMPORT_MAX_AUDIO_BYTES)
        parts = urlsplit(reference)
        own = _own_media_name(reference)
        if own:
            return self._own_media(reference, own)
        base = self.options.get("base_url", "")
        if parts.scheme in ("http", "https"):
            headers = self.audio_headers if base and reference.startswith(base + "/") else {}
            return _url_name(reference), outbound_get(reference, max_bytes=limit, headers=headers)
        if base and reference.startswith("/"):
            url = urljoin(base + "/", reference)
            return _url_name(url), outbound_get(url, max_bytes=limit, headers=self.audio_headers)
        folder = self.options.get("audio_dir")
        if not folder:
            raise ValueError(f"the audio {reference!r} is a path on the Label Studio server or in cloud storage: give "
                             "the folder that holds the files (--audio-dir), or import from the server (--url)")
        return self._folder_audio(Path(folder), reference)

    def _own_media(self, reference: str, name: str) -> tuple[str, bytes]:
        """A link to Sentio's own media (a Sentio export imported back): read from storage, if the importer may."""
        user = self.job.created_by
        visible = user is None or Utterance.objects.filter(audio=name, corpus__in=corpora_visible_to(user)).exists()
        if not visible or not default_storage.exists(name):
            raise ValueError(f"the Sentio audio link {reference!r} names no file this import may read")
        limit = int(settings.IMPORT_MAX_AUDIO_BYTES)
        with default_storage.open(name, "rb") as handle:
            data = handle.read(limit + 1)
        if len(data) > limit:
            raise ValueError(f"{reference!r} is more than the limit of {limit} bytes")
        return PurePosixPath(name).name, data

    def _folder_audio(self, folder: Path, reference: str) -> tuple[str, bytes]:
        """(name, bytes) of the file in ``folder`` a Label Studio audio reference names: the ?d= path of local files,
        else the file name (Label Studio prefixes uploads with 8 characters and a dash). Read through the corpus
        importer's FolderAudioBundle: no links followed, nothing outside the folder, the size capped."""
        from corpora.importing.audio import FolderAudioBundle

        if self._audio_folder is None:
            self._audio_folder = FolderAudioBundle(folder)  # AudioRejected (a ValueError) if the folder is refused
            for key in sorted(self._audio_folder.names()):
                self._audio_names.setdefault(PurePosixPath(key).name, key)
        bundle = self._audio_folder
        parts = urlsplit(reference)
        relative = unicodedata.normalize("NFC", unquote(parse_qs(parts.query).get("d", [""])[0]).lstrip("/"))
        if relative in bundle.names():
            return PurePosixPath(relative).name, bundle.read(relative)
        base = PurePosixPath(relative).name if relative else unquote(PurePosixPath(parts.path).name)
        for name in (base, base.split("-", 1)[1] if "-" in base else ""):
            if name and name in self._audio_names:
                return name, bundle.read(self._audio_names[name])
        raise ValueError(f"no file named {base!r} in {folder}")

    def cleanup_audio(self) -> None:
        if self.stored_audio:
            from corpora.importing.audio import audio_delete

            audio_delete(self.stored_audio)
            self.stored_audio = []


def _url_name(url: str) -> str:
    return unquote(PurePosixPath(urlsplit(url).path).name) or "audio"


def _own_media_name(reference: str) -> str:
    """The storage name behind a link to Sentio's own media (relative, or under SENTIO_PUBLIC_URL), else ''."""
    parts = urlsplit(reference)
    media = urlsplit(settings.MEDIA_URL).path
    public = urlsplit(settings.PUBLIC_URL) if settings.PUBLIC_URL else None
    if parts.netloc and (public is None or parts.netloc != public.netloc):
        return ""
    if not parts.path.startswith(media):
        return ""
    name = unquote(parts.path[len(media):])
    return name if name.startswith("audio/") and ".." not in name.split("/") else ""


def _tasks(fh: IO[bytes], shown_name: str) -> Iterator[Any]:
    """The tasks of a JSON export (a JSON array), one at a time: the file is read in blocks and each task decoded by
    the standard library's C decoder, so memory holds a block and a task, never the whole export."""
    text = io.TextIOWrapper(fh, encoding="utf-8-sig")
    decoder = json.JSONDecoder()
    buffer, pos, done = "", 0, False

    def more() -> bool:
        nonlocal buffer, pos, done
        block = text.read(READ_BLOCK_CHARS)
        done = not block
        buffer, pos = buffer[pos:] + block, 0
        return not done

    def skip_space() -> str:
        nonlocal pos
        while True:
            while pos < len(buffer) and buffer[pos] in " \t\r\n":
                pos += 1
            if pos < len(buffer) or not more():
                return buffer[pos] if pos < len(buffer) else ""

    def refuse(what: str) -> _Failed:
        return _Failed(f"{shown_name} is not valid JSON near character {consumed + pos}: {what}")

    consumed = 0
    try:
        if skip_space() != "[":
            raise _Failed(f"{shown_name} holds no list of tasks: a Label Studio JSON export is a list of tasks "
                          "(export the project as JSON, not JSON-MIN or CSV)")
        pos += 1
        if skip_space() == "]":
            return
        while True:
            try:
                task, end = decoder.raw_decode(buffer, pos)
            except json.JSONDecodeError as exc:
                if done or len(buffer) - pos > MAX_TASK_CHARS:
                    raise refuse(exc.msg) from None
                consumed += pos
                more()  # the task may go on in the next block
                continue
            pos = end
            yield task
            following = skip_space()
            if following == "]":
                return
            if following != ",":
                raise refuse("expected ',' or ']' after a task")
            pos += 1
            if pos > READ_BLOCK_CHARS:
                consumed += pos
                buffer, pos = buffer[pos:], 0
            skip_space()
    except UnicodeDecodeError:
        raise _Failed(f"{shown_name} is not UTF-8 text") from None
    finally:
        text.detach()


@contextmanager
def _local_file(storage_name: str, folder: Path) -> Iterator[Path]:
    """A local path to a stored file: the file itself on local storage, else a temporary copy (S3)."""
    if not storage_name or not default_storage.exists(storage_name):
        raise _Failed("the export file is no longer in storage")
    try:
        yield Path(default_storage.path(storage_name))
        return
    except NotImplementedError:
        pass
    copy = folder / "export.json"
    with default_storage.open(storage_name, "rb") as src, copy.open("wb") as out:
        shutil.copyfileobj(src, out, length=1024 * 1024)
    yield copy


# --- writing --------------------------------------------------------------------------------------------------


class _Table:
    """Rows into one table: values for ``columns`` (a tuple per row, in that order) and the model's defaults for
    the rest. On PostgreSQL the corpus importer's COPY writer (its column defaults, row pattern and ``_copy``);
    executemany elsewhere (SQLite)."""

    def __init__(self, model: type[Model], now: datetime, columns: Sequence[str]):
        self.table = model._meta.db_table
        self.columns = list(columns)
        self.sqlite = connection.vendor != "postgresql"
        kinds = [model._meta.get_field(c).get_internal_type() for c in self.columns]
        self.json = [kind == "JSONField" for kind in kinds]
        self.datetime = [kind == "DateTimeField" for kind in kinds]
        # One COPY text converter per column, chosen once (a generic one would test every value's type).
        self.converters = [_COPY_CONVERTERS.get(kind, _copy_text) for kind in kinds]
        skip = set() if "id" in self.columns else {"id"}
        if self.sqlite:
            defaults = _column_defaults(model, skip=skip, now=now)
            self.names = ", ".join(f'"{column}"' for _, column, _ in defaults)
            position = {attname: i for i, (attname, _, _) in enumerate(defaults)}
            self.slots = [position[c] for c in self.columns]
            self.template = [connection.ops.adapt_datetimefield_value(v) if isinstance(v, datetime) else v
                             for _, _, v in defaults]
        else:
            self.format = _CopyFormat(model, now=now, skip=skip)
            self.pattern = _row_pattern(self.format, self.columns).format

    def _copy_values(self, row: Sequence[Any]) -> list[str]:
        return [convert(value) for convert, value in zip(self.converters, row)]

    def _sqlite_row(self, row: Sequence[Any]) -> list[Any]:
        out = self.template.copy()
        for slot, value, is_json, is_datetime in zip(self.slots, row, self.json, self.datetime):
            if is_json:
                value = _json_text(value)
            elif is_datetime and value is not None:
                value = connection.ops.adapt_datetimefield_value(value)
            out[slot] = value
        return out

    def insert(self, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        if not self.sqlite:
            pattern, values = self.pattern, self._copy_values
            with _copy(self.format.sql) as copy:
                copy.write("\n".join([pattern(*values(row)) for row in rows]) + "\n")
            return
        marks = ", ".join(["%s"] * len(self.template))
        with connection.cursor() as cursor:
            cursor.executemany(f'INSERT INTO "{self.table}" ({self.names}) VALUES ({marks})',  # noqa: S608
                               [self._sqlite_row(row) for row in rows])


_NULL = "\\N"
_COPY_CONVERTERS: dict[str, Callable[[Any], str]] = {
    "JSONField": lambda value: _escape(_json_text(value if value is not None else {})),
    "DateTimeField": lambda value: _NULL if value is None else value.isoformat(),
    "BooleanField": lambda value: "t" if value else "f",
    "CharField": lambda value: _NULL if value is None else _escape(value),
    "TextField": lambda value: _NULL if value is None else _escape(value),
    "ForeignKey": lambda value: _NULL if value is None else str(value),
    "BigAutoField": str,
    "AutoField": str,
}
_json_texts: dict[Any, str] = {}


def _json_text(value: Any) -> str:
    """JSON of a value; flat answers recur (the same label over and over), so their text is made once."""
    try:
        # The type is part of the key: 1, 1.0 and True hash alike but are different JSON.
        key = tuple((k, type(v), v) for k, v in value.items()) if isinstance(value, dict) else None
        cached = _json_texts.get(key) if key is not None else None
    except TypeError:  # a list or dict among the answers: not hashable, not cached
        key = cached = None
    if cached is not None:
        return cached
    text = json.dumps(value, ensure_ascii=False)
    if key is not None:
        if len(_json_texts) > 10_000:
            _json_texts.clear()
        _json_texts[key] = text
    return text


def _reserve_ids(table: str, count: int) -> list[int] | range:
    """``count`` new ids for ``table``: from its sequence on PostgreSQL (the corpus importer's reservation); on
    SQLite (one writer, whose write lock this transaction holds) the next free ones."""
    if connection.vendor == "postgresql":
        return _sequence_ids(table, count)
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT COALESCE(MAX(id), 0) FROM "{table}"')  # noqa: S608 - a model's table name
        row = cursor.fetchone()
        start = int(row[0]) + 1 if row else 1
        return range(start, start + count)


def _parents_resolve(model: Any, corpus: Corpus, wanted: set[str], ids: dict[str, int], lock: bool) -> None:
    """external id -> row id of the corpus's conversations (or speakers) the chunk names, creating missing ones."""
    wanted = wanted - set(ids) - {""}
    if not wanted:
        return
    known = dict(model.objects.filter(corpus=corpus, external_id__in=wanted).values_list("external_id", "pk"))
    if lock:
        _lock_rows(model._meta.db_table, list(known.values()))
    missing = sorted(wanted - set(known))
    if missing:
        model.objects.bulk_create([model(corpus=corpus, external_id=e) for e in missing])
        known.update(model.objects.filter(corpus=corpus, external_id__in=missing).values_list("external_id", "pk"))
    ids.update(known)


_UTTERANCE_COLUMNS = ("id", "corpus_id", "external_id", "conversation_id", "speaker_id", "language_id", "text", "audio",
                      "audio_duration_s", "audio_sample_rate", "metadata", "content_hash")
_ANNOTATION_COLUMNS = ("utterance_id", "schema_version_id", "value", "origin", "external_rater", "model_version",
                       "import_job_id", "external_id", "was_cancelled", "lead_time_ms", "created_at", "updated_at")
_PREDICTION_COLUMNS = ("utterance_id", "model_version", "scores", "label", "uncertainty", "job_id", "created_at")


class _Writer:
    """Writes chunks of checked tasks inside the import's transaction."""

    def __init__(self, run: _Import):
        self.run = run
        self.utterances = _Table(Utterance, run.now, _UTTERANCE_COLUMNS)
        self.annotations = _Table(Annotation, run.now, _ANNOTATION_COLUMNS)
        self.predictions = _Table(Prediction, run.now, _PREDICTION_COLUMNS)
        self.seconds = 0.0
        version = run.version
        assert version is not None
        self.version_id = version.pk
        mapping = run.mapping
        assert mapping is not None
        self.categorical = [q["key"] for q in mapping.questions if q["type"] in ("single_choice", "multi_label")]

    def write(self, batch: list[_Pending]) -> None:
        started = time.perf_counter()
        run = self.run
        existing = self._existing(batch)
        self._resolve_parents(batch)
        targets: list[tuple[_Pending, int, bool]] = []  # (task, utterance id, the utterance was there before it)
        new: list[_Pending] = []
        new_hashes: set[str] = set()
        matched: list[int] = []  # utterances that were in the corpus before this import
        joins: list[_Pending] = []  # the same content as a task before it in this chunk
        for pending in batch:
            draft = pending.draft
            if pending.hash in run.known:
                targets.append((pending, run.known[pending.hash], True))
                self._duplicate(pending)
                continue
            found = (existing.get(draft.external_id) if draft.external_id else None) or existing.get(pending.hash)
            if found is not None:
                pk, stored_hash = found
                if stored_hash != pending.hash:
                    run._error(pending.row, "id", f"the corpus already has an utterance with external id "
                                                  f"{draft.external_id!r} and different content")
                    run.counts["rejected_tasks"] += 1
                    continue
                run.known[pending.hash] = pk
                run.counts["utterances_matched"] += 1
                targets.append((pending, pk, True))
                matched.append(pk)
            elif pending.hash in new_hashes:
                joins.append(pending)
            else:
                new.append(pending)
                new_hashes.add(pending.hash)
        rows: list[tuple[Any, ...]] = []
        for pending, pk in zip(new, _reserve_ids(self.utterances.table, len(new)) if new else []):
            draft, audio = pending.draft, pending.audio
            run.known[pending.hash] = pk
            rows.append((
                pk, run.corpus.pk, draft.external_id, run.conversation_ids.get(draft.conversation),
                run.speaker_ids.get(draft.speaker), run.language_ids[pending.language], draft.text,
                audio.name if audio else "", audio.duration_s if audio else None, audio.sample_rate if audio else None,
                draft.metadata, pending.hash,
            ))
            targets.append((pending, pk, False))
        run.counts["utterances"] += len(rows)
        if run.skip_triggers:
            _lock_rows(Utterance._meta.db_table, matched)
        for pending in joins:
            targets.append((pending, run.known[pending.hash], True))
            self._duplicate(pending)
        self.utterances.insert(rows)
        self._annotations_and_predictions(targets)
        self.seconds += time.perf_counter() - started

    def _duplicate(self, pending: _Pending) -> None:
        self.run.counts["duplicates"] += 1
        self.run._note(pending.row, "the same utterance as an earlier task; its annotations join it")

    def _existing(self, batch: list[_Pending]) -> dict[str, tuple[int, str]]:
        """Utterances of the corpus this chunk's tasks are already in (by external id, then content hash)."""
        if not self.run.corpus_had_rows:
            return {}
        corpus_id = self.run.corpus.pk
        external = [p.draft.external_id for p in batch if p.draft.external_id]
        found: dict[str, tuple[int, str]] = {}
        if external:
            for pk, external_id, digest in Utterance.objects.filter(corpus_id=corpus_id, external_id__in=external) \
                    .values_list("pk", "external_id", "content_hash"):
                found[external_id] = (pk, digest)
        hashes = [p.hash for p in batch]
        for pk, digest in Utterance.objects.filter(corpus_id=corpus_id, content_hash__in=hashes) \
                .values_list("pk", "content_hash"):
            found[digest] = (pk, digest)
        return found

    def _resolve_parents(self, batch: list[_Pending]) -> None:
        run = self.run
        for code in {p.language for p in batch} - set(run.language_ids):
            run.language_ids[code] = language_get_or_create(code).pk
            if run.skip_triggers:
                _lock_rows(Language._meta.db_table, [run.language_ids[code]])
        _parents_resolve(Conversation, run.corpus, {p.draft.conversation for p in batch}, run.conversation_ids,
                         run.skip_triggers)
        _parents_resolve(Speaker, run.corpus, {p.draft.speaker for p in batch}, run.speaker_ids, run.skip_triggers)

    def _annotations_and_predictions(self, targets: list[tuple[_Pending, int, bool]]) -> None:
        run = self.run
        matched = [pk for _, pk, was_there in targets if was_there]
        done_annotations: set[tuple[int, str]] = set()
        done_predictions: set[tuple[int, str]] = set()
        if matched:
            done_annotations = set(Annotation.objects.filter(
                utterance_id__in=matched, project__isnull=True, origin=Origin.HUMAN).exclude(external_id="")
                .values_list("utterance_id", "external_id"))
            done_predictions = set(Prediction.objects.filter(utterance_id__in=matched)
                                   .values_list("utterance_id", "model_version"))
        job_id = run.job.pk
        annotation_rows: list[tuple[Any, ...]] = []
        prediction_rows: list[tuple[Any, ...]] = []
        for pending, pk, _ in targets:
            for annotation in pending.draft.annotations:
                if annotation.external_id and (pk, annotation.external_id) in done_annotations:
                    run.counts["already_imported"] += 1
                    continue
                created = annotation.created_at or run.now
                annotation_rows.append((
                    pk, self.version_id, annotation.answers, Origin.HUMAN.value, annotation.rater, "", job_id,
                    annotation.external_id, annotation.cancelled, annotation.lead_time_ms, created,
                    annotation.updated_at or created,
                ))
                run.counts["annotations"] += 1
                run.counts["cancelled"] += int(annotation.cancelled)
            for prediction in pending.draft.predictions:
                version_key = (pk, prediction.model_version)
                if version_key in done_predictions or version_key in run.prediction_keys:
                    run.counts["already_imported"] += 1
                    continue
                run.prediction_keys.add(version_key)
                created = prediction.created_at or run.now
                scores, label = self._scores(prediction.answers, prediction.score)
                prediction_rows.append((
                    pk, prediction.model_version, scores, label,
                    None if prediction.score is None else round(1.0 - prediction.score, 6), job_id, created,
                ))
                # Its answers also as a model annotation: what agreement compares with the humans, and what an
                # export in Label Studio format gives back as a prediction.
                annotation_rows.append((
                    pk, self.version_id, prediction.answers, Origin.MODEL.value, "", prediction.model_version, job_id,
                    prediction.external_id, False, None, created, created,
                ))
                run.counts["predictions"] += 1
                run.counts["model_annotations"] += 1
        self.annotations.insert(annotation_rows)
        self.predictions.insert(prediction_rows)

    def _scores(self, answers: dict[str, Any], score: float | None) -> tuple[dict[str, Any], str]:
        """Prediction.scores of a Label Studio prediction: its score on the labels it chose for the first categorical
        question it answers (Label Studio keeps one score per prediction), and every answer under META_KEY."""
        meta: dict[str, Any] = {"kind": "label_studio", "score": score, "answers": answers}
        for key in self.categorical:
            answer = answers.get(key)
            if not answer:
                continue
            chosen = [answer] if isinstance(answer, str) else list(answer)
            meta["question"] = key
            return {**{label: 1.0 if score is None else score for label in chosen}, META_KEY: meta}, chosen[0][:200]
        return {META_KEY: meta}, ""


# --- the ML backend: predictions and the webhook -------------------------------------------------------------------


class MLBackendError(LabelStudioError):
    """A request the ML backend cannot answer (400), with the field and the reason."""


def _backend_mapping(label_config: Any) -> ConfigMapping:
    if not isinstance(label_config, str):
        raise MLBackendError({"label_config": "the request carries no labelling config"})
    try:
        return label_config_map(label_config)
    except LabelConfigError as exc:
        raise MLBackendError({"label_config": str(exc)}) from None


def _answering(models: list[MLBackendModel], mapping: ConfigMapping) -> list[MLBackendModel]:
    keys = set(mapping.question_keys)
    return [m for m in models if set(m.question_keys) & keys]


def ml_backend_setup(*, project: Project, label_config: Any) -> dict[str, Any]:
    """/setup: which model version will answer this Label Studio project (its config must share a question with
    the project's models)."""
    mapping = _backend_mapping(label_config)
    models = ml_backend_models(project)
    answering = _answering(models, mapping)
    if not answering:
        answered = sorted({k for m in models for k in m.question_keys})
        raise MLBackendError({"schema": (
            f"none of this config's questions ({', '.join(mapping.question_keys)}) is answered by a model of Sentio "
            f"project {project.pk} (its models answer: {', '.join(answered) or 'nothing yet: register one'}); name "
            "the controls after the Sentio questions")})
    return {"model_version": answering[0].model_version}


def ml_backend_predict(*, project: Project, tasks: Any, label_config: Any) -> list[list[dict[str, Any]]]:
    """/predict: one list of Label Studio predictions per task, in order (empty where no model had an answer).

    A task that is an utterance of the project's corpus gets its stored predictions; others (and utterances not
    predicted yet) are run through the project's text models here, up to MAX_INLINE_TEXTS per request.
    """
    from annotation.predictions.services import TextPrediction, project_model_predict_texts

    if not isinstance(tasks, list) or not all(isinstance(t, dict) for t in tasks):
        raise MLBackendError({"tasks": "must be a list of task objects"})
    if len(tasks) > MAX_PREDICT_TASKS:
        raise MLBackendError({"tasks": f"at most {MAX_PREDICT_TASKS} tasks per request"})
    mapping = _backend_mapping(label_config)
    answering = _answering(ml_backend_models(project), mapping)
    results: list[list[dict[str, Any]]] = [[] for _ in tasks]
    if not answering or not tasks:
        return results
    utterances = task_utterances(corpus_id=project.corpus_id, tasks=tasks, mapping=mapping)
    budget = MAX_INLINE_TEXTS
    for model in answering:
        stored = model.stored(list(utterances.values()))
        missing: list[int] = []
        for index in range(len(tasks)):
            utterance = utterances.get(index)
            if utterance is not None and utterance in stored:
                answers, score = model.answers(stored[utterance])
                _append(results[index], mapping, answers, score, model.model_version)
            elif model.runs_on_text:
                missing.append(index)
        texts = [_task_text(tasks[i], mapping) for i in missing[:budget]]
        budget -= len(texts)
        if not texts:
            continue
        try:
            outputs = project_model_predict_texts(project=project, model=model.model, texts=texts)
        except PredictionSetupError as exc:
            logger.warning("ML backend: model %s could not run: %s", model.model_version, exc)
            continue
        for index, output in zip(missing, outputs):
            if isinstance(output, TextPrediction):
                answers, score = model.answers(output.prediction)
                _append(results[index], mapping, answers, score, model.model_version)
    return results


def _task_text(task: Mapping[str, Any], mapping: ConfigMapping) -> str:
    data = task.get("data")
    value = data.get(mapping.text_var) if isinstance(data, dict) and mapping.text_var else None
    return value if isinstance(value, str) else ""


def _append(out: list[dict[str, Any]], mapping: ConfigMapping, answers: dict[str, Any], score: float | None,
            model_version: str) -> None:
    result = answers_result(mapping, answers)
    if result:
        out.append({"result": result, "score": score, "model_version": model_version})


@dataclass
class WebhookOutcome:
    status: str
    detail: dict[str, Any] = field(default_factory=dict)


def ml_backend_webhook(*, project: Project, payload: Any, user: Any) -> WebhookOutcome:
    """/webhook: annotations made in Label Studio join the project's corpus as imported ratings (created, updated
    or deleted by their Label Studio id); START_TRAINING trains a head on the human labels and predicts with it."""
    if not isinstance(payload, dict) or not isinstance(payload.get("action"), str):
        raise MLBackendError({"action": "the webhook carries no action"})
    action = payload["action"]
    if action in TRAIN_EVENTS:
        return _train(project, user)
    if action in DELETE_EVENTS:
        items = payload.get("annotations") or ([payload["annotation"]] if isinstance(payload.get("annotation"), dict)
                                               else [])
        ids = [str(a.get("id")) for a in items if isinstance(a, dict) and a.get("id") is not None]
        deleted, _ = Annotation.objects.filter(
            project__isnull=True, utterance__corpus_id=project.corpus_id, origin=Origin.HUMAN,
            schema_version_id=project.schema_version_id, external_id__in=ids).delete()
        return WebhookOutcome("ok", {"deleted": deleted})
    if action not in ANNOTATION_EVENTS:
        return WebhookOutcome("Unknown event")
    return _annotation_sync(project, payload)


def _train(project: Project, user: Any) -> WebhookOutcome:
    questions = parse_questions(project.schema_version.questions)
    categorical = [q.key for q in questions if q.type in ("single_choice", "multi_label")]
    if not categorical:
        raise MLBackendError({"action": "the project's schema has no single-choice or multi-label question to train on"})
    try:
        job = preannotation_job_create(project=project, user=user, train_head={"question": categorical[0]})
    except PredictionSetupError as exc:
        raise MLBackendError(exc.errors) from None
    return WebhookOutcome("ok", {"job": job.pk})


def _annotation_sync(project: Project, payload: Mapping[str, Any]) -> WebhookOutcome:
    annotation, task = payload.get("annotation"), payload.get("task")
    project_info: Mapping[str, Any] = payload["project"] if isinstance(payload.get("project"), dict) else {}
    if not isinstance(annotation, dict) or not isinstance(task, dict):
        raise MLBackendError({"annotation": "the webhook carries no annotation and task"})
    mapping = _backend_mapping(project_info.get("label_config"))
    utterance = task_utterances(corpus_id=project.corpus_id, tasks=[task], mapping=mapping).get(0)
    if utterance is None:
        return WebhookOutcome("ignored", {"reason": "the task is not an utterance of the project's corpus"})
    # The task, read as an import would read it, with only this annotation.
    draft = task_read(mapping, {**task, "annotations": [annotation], "predictions": []})
    if not draft.annotations:
        problems = "; ".join(f"{p.where}: {p.reason}" for p in draft.problems) or "the annotation cannot be read"
        raise MLBackendError({"annotation": problems})
    read = draft.annotations[0]
    questions = parse_questions([{**q, "required": False} for q in project.schema_version.questions])
    known = {q.key for q in questions}
    answers = {k: v for k, v in read.answers.items() if k in known}
    if answers:
        try:
            answers = validate_answers(questions, answers)
        except SchemaError as exc:
            raise MLBackendError({f"annotation.{k}": v for k, v in exc.errors.items()}) from None
    external_id = str(annotation.get("id", ""))[:200]
    if not external_id:
        raise MLBackendError({"annotation.id": "the annotation has no id"})
    created = read.created_at or timezone.now()
    fields = {"value": answers, "external_rater": read.rater, "was_cancelled": read.cancelled,
              "lead_time_ms": read.lead_time_ms}
    with transaction.atomic():
        existing = utterance_annotation_by_external_id(
            utterance_id=utterance, schema_version_id=project.schema_version_id, external_id=external_id)
        if existing is not None:
            for name, value in fields.items():
                setattr(existing, name, value)
            existing.save(update_fields=[*fields, "updated_at"])
            return WebhookOutcome("ok", {"annotation": existing.pk, "updated": True})
        created_row = Annotation.objects.create(
            utterance_id=utterance, schema_version_id=project.schema_version_id, origin=Origin.HUMAN,
            external_id=external_id, **fields)
        # auto_now_add set it to now; keep the time the rater made it.
        Annotation.objects.filter(pk=created_row.pk).update(created_at=created)
    return WebhookOutcome("ok", {"annotation": created_row.pk, "updated": False})


