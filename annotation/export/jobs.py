"""Export jobs as the API and the lead UI see them: a project's export jobs, their files, and how to deliver one.

Only files recorded in a finished job's result are ever served, by the storage name the job itself recorded;
a requested name is looked up among those, never joined into a path. Local storage streams the file through
Django; an S3 store with signed links (``querystring_auth``) answers with a short-lived presigned URL instead.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import IO, Any

from django.core.files.storage import FileSystemStorage, Storage, storages
from django.db.models import QuerySet

from annotation.models import Project
from jobs.models import Job, JobKind, JobStatus

# How long a presigned download link stays valid: long enough to start a download, short enough not to be shared.
DOWNLOAD_LINK_SECONDS = 300
# Read from storage and handed to the client in pieces of this size, so the archive never sits in memory.
ARCHIVE_CHUNK_BYTES = 1 << 20
# Formats already compressed (or binary Arrow) are stored as they are; deflating them costs CPU and saves nothing.
_STORED_FORMATS = frozenset({"parquet", "hf"})
# The public fields of a file entry in the job result (the storage name stays on the server).
_PUBLIC_FILE_FIELDS = ("name", "format", "split", "rows", "size")


def export_jobs_of_project(*, project: Project) -> QuerySet[Job]:
    """The project's export jobs, newest first."""
    return (Job.objects.filter(project=project, kind=JobKind.EXPORT).select_related("created_by")
            .order_by("-created_at", "-id"))


def export_job_of_project(*, project: Project, job_id: int) -> Job | None:
    return export_jobs_of_project(project=project).filter(pk=job_id).first()


def _entries(job: Job) -> list[dict[str, Any]]:
    """Every file the job stored (the data card first), as recorded in its result; none until it succeeded."""
    if job.status != JobStatus.SUCCEEDED or not isinstance(job.result, dict):
        return []
    entries: list[dict[str, Any]] = []
    card = job.result.get("card")
    if isinstance(card, dict):
        entries.append({**card, "format": card.get("format", "card")})
    entries += [f for f in job.result.get("files", []) if isinstance(f, dict)]
    return [e for e in entries if isinstance(e.get("name"), str) and isinstance(e.get("storage_name"), str)]


def export_files(*, job: Job) -> list[dict[str, Any]]:
    """The job's files for a client: name, format, split, rows and size (no storage names)."""
    return [{key: entry[key] for key in _PUBLIC_FILE_FIELDS if key in entry} for entry in _entries(job)]


def export_file_entry(*, job: Job, name: str) -> dict[str, Any] | None:
    """The recorded entry whose name is exactly ``name``, or None: the only way a download finds its file."""
    return next((entry for entry in _entries(job) if entry["name"] == name), None)


@dataclass(frozen=True)
class ExportDownload:
    """Either a file to stream (``stream``) or a presigned URL to redirect to (``url``)."""

    filename: str
    size: int | None
    stream: IO[bytes] | None = None
    url: str | None = None


def export_download_filename(*, job: Job, name: str) -> str:
    """The name a browser saves the file under: ``sentio-export-<job>-<format>-<file>``, ASCII-safe parts only."""
    parts = [p for p in PurePosixPath(name).parts if p not in ("", ".", "..")]
    safe = "-".join("".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in p) for p in parts)
    return f"sentio-export-{job.pk}-{safe or 'file'}"


def _signs_links(storage: Storage) -> bool:
    """An S3-compatible store that hands out presigned links (django-storages with querystring_auth)."""
    if not getattr(storage, "querystring_auth", False) or not hasattr(storage, "bucket_name"):
        return False
    return not getattr(storage, "custom_domain", None) or getattr(storage, "cloudfront_signer", None) is not None


def export_download(*, job: Job, entry: dict[str, Any]) -> ExportDownload:
    """How to deliver one recorded file: a presigned URL on a link-signing object store, else an open file to
    stream in chunks (local storage, or any other storage), so the web process never holds a whole file."""
    storage = storages["default"]
    filename = export_download_filename(job=job, name=entry["name"])
    size = entry.get("size") if isinstance(entry.get("size"), int) else None
    stored = entry["storage_name"]
    if not isinstance(storage, FileSystemStorage) and _signs_links(storage):
        disposition = f'attachment; filename="{filename}"'
        url = storage.url(stored, parameters={"ResponseContentDisposition": disposition},  # type: ignore[call-arg]
                          expire=DOWNLOAD_LINK_SECONDS)
        return ExportDownload(filename=filename, size=size, url=url)
    return ExportDownload(filename=filename, size=size, stream=storage.open(stored, "rb"))


def export_archive_filename(*, job: Job) -> str:
    return f"sentio-export-{job.pk}.zip"


def export_archive_entries(*, job: Job) -> list[dict[str, Any]]:
    """The recorded files for one archive, every one checked to be still in storage (before the first byte goes
    out: a stream cannot answer 404 half-way). Raises FileNotFoundError naming the first missing file."""
    storage = storages["default"]
    entries = _entries(job)
    for entry in entries:
        if not storage.exists(entry["storage_name"]):
            raise FileNotFoundError(entry["name"])
    return entries


class _ZipSink:
    """A write-only file for zipfile: it keeps what was written until the stream takes it. zipfile sees no
    ``tell``/``seek`` and writes data descriptors instead of seeking back, so the zip streams."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes, /) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take(self) -> bytes:
        data, self._parts = b"".join(self._parts), []
        return data


def export_archive_stream(*, job: Job, entries: list[dict[str, Any]]) -> Iterator[bytes]:
    """A zip of ``entries`` (from export_archive_entries) under their export names, streamed in chunks while each
    file is read from storage (local or S3) in pieces: memory stays flat whatever the export's size."""
    storage = storages["default"]
    sink = _ZipSink()
    with zipfile.ZipFile(sink, "w", allowZip64=True) as archive:
        for entry in entries:
            compression = zipfile.ZIP_STORED if entry.get("format") in _STORED_FORMATS else zipfile.ZIP_DEFLATED
            info = zipfile.ZipInfo(f"sentio-export-{job.pk}/{entry['name']}", date_time=job.finished_at.timetuple()[:6]
                                   if job.finished_at else (1980, 1, 1, 0, 0, 0))
            info.compress_type = compression
            info.external_attr = 0o644 << 16
            with storage.open(entry["storage_name"], "rb") as source, archive.open(info, "w", force_zip64=True) as target:
                while chunk := source.read(ARCHIVE_CHUNK_BYTES):
                    target.write(chunk)
                    if data := sink.take():
                        yield data
            if data := sink.take():
                yield data
    if data := sink.take():
        yield data
