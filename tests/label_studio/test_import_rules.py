"""The Label Studio import keeps the corpus importer's rules: its COPY writer (database errors become Django's, so a
lost or blocked connection is retried, not failed), its one-import-per-corpus lock, its audio-folder checks, its
upload clean-up, and an exact error count however many errors are stored."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.core.files.storage import default_storage
from django.db import OperationalError, connection
from django.utils import timezone

from annotation.models import Annotation, Prediction
from corpora.models import Utterance
from jobs.models import Job, JobStatus
from tests.label_studio.conftest import AUDIO_CONFIG, build_export, wav_bytes

pytestmark = pytest.mark.django_db


def _audio_task(i: int, audio: str) -> dict[str, Any]:
    return {"id": i, "data": {"audio": audio, "transcript": f"t{i}"}, "annotations": [
        {"id": i, "completed_by": 1, "result": [{"from_name": "emotion", "to_name": "audio", "type": "choices",
                                                 "value": {"choices": ["joy"]}}]}]}


def test_every_error_is_counted_though_only_the_first_are_stored(corpus, run_ls_import, monkeypatch) -> None:
    monkeypatch.setattr("jobs.services.MAX_STORED_ERRORS_PER_JOB", 3)
    monkeypatch.setattr("annotation.label_studio.services.MAX_STORED_ERRORS_PER_JOB", 3)
    tasks = build_export(8)
    for task in tasks[:7]:
        task["annotations"][0]["lead_time"] = "soon"
    job = run_ls_import(corpus, tasks, mode="skip_invalid")
    assert job.status == JobStatus.SUCCEEDED, job.message
    assert job.error_count == 7 and job.counts["errors"] == 7
    assert job.errors.count() == 3
    assert [e.row for e in job.errors.order_by("row")] == [1, 2, 3]


def test_the_export_is_deleted_when_the_job_ends_or_by_the_sweep(corpus, run_ls_import, settings) -> None:
    from corpora.importing.services import import_uploads_sweep

    settings.IMPORT_UPLOADS_KEEP_DAYS = 0
    done = run_ls_import(corpus, build_export(2))
    failed = run_ls_import(corpus, b"{not json")
    assert (done.status, failed.status) == (JobStatus.SUCCEEDED, JobStatus.FAILED)
    for job in (done, failed):
        assert job.params["file"].startswith(f"imports/{job.pk}/") and not default_storage.exists(job.params["file"])
        assert job.params["uploads_deleted_at"]

    settings.IMPORT_UPLOADS_KEEP_DAYS = 3
    kept = run_ls_import(corpus, build_export(2, first_id=50))
    assert default_storage.exists(kept.params["file"])
    assert import_uploads_sweep(now=timezone.now() + timedelta(days=2)) == 0
    assert import_uploads_sweep(now=timezone.now() + timedelta(days=3, minutes=1)) == 1
    assert not default_storage.exists(kept.params["file"])
    kept.refresh_from_db()
    assert kept.params["uploads_deleted_at"] and kept.counts["utterances"] == 2


def test_the_audio_folder_is_read_with_the_corpus_importers_checks(corpus, run_ls_import, settings,
                                                                    tmp_path: Path) -> None:
    folder = tmp_path / "uploads"
    folder.mkdir()
    outside = tmp_path / "secret.wav"
    outside.write_bytes(wav_bytes(0.3))
    os.symlink(outside, folder / "link.wav")  # a link out of the folder: never followed
    (folder / "big.wav").write_bytes(wav_bytes(2.0))
    (folder / "fine.wav").write_bytes(wav_bytes(0.2))
    settings.IMPORT_MAX_AUDIO_BYTES = len(wav_bytes(1.0))
    tasks = [_audio_task(1, "/data/upload/1/abcd1234-fine.wav"), _audio_task(2, "/data/local-files/?d=link.wav"),
             _audio_task(3, "/data/upload/1/abcd1234-big.wav"), _audio_task(4, "/data/local-files/?d=../secret.wav")]
    job = run_ls_import(corpus, tasks, config=AUDIO_CONFIG, audio_dir=str(folder), mode="skip_invalid")
    assert job.status == JobStatus.SUCCEEDED, job.message
    errors = {e.row: e.reason for e in job.errors.all()}
    assert errors[2] == f"no file named 'link.wav' in {folder}"
    assert errors[3] == f"big.wav: the file is larger than {settings.IMPORT_MAX_AUDIO_BYTES} bytes"
    assert errors[4] == f"no file named 'secret.wav' in {folder}"
    assert list(Utterance.objects.values_list("audio_duration_s", flat=True)) == [pytest.approx(0.2, abs=1e-3)]


@pytest.mark.postgres("the corpus import lock is a PostgreSQL advisory lock")
def test_the_import_holds_the_corpus_import_lock(corpus, run_ls_import, monkeypatch) -> None:
    from annotation.label_studio import services
    from corpora.importing.services import _ADVISORY_LOCK_CLASS

    held: list[int] = []
    write = services._Writer.write

    def write_and_look(self: Any, batch: Any) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() "
                           "AND classid = %s AND objid = %s AND granted", [_ADVISORY_LOCK_CLASS, corpus.pk])
            held.append(cursor.fetchone()[0])
        write(self, batch)

    monkeypatch.setattr(services._Writer, "write", write_and_look)
    job = run_ls_import(corpus, build_export(3))
    assert job.status == JobStatus.SUCCEEDED and held == [1]
    with connection.cursor() as cursor:  # and lets it go at the end
        cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = %s AND objid = %s",
                       [_ADVISORY_LOCK_CLASS, corpus.pk])
        assert cursor.fetchone()[0] == 0


@pytest.mark.postgres("COPY and lock_timeout are PostgreSQL's")
def test_a_copy_the_database_refuses_is_djangos_error_so_the_task_retries(corpus, run_ls_import) -> None:
    """The COPY goes through the corpus writer's ``_copy``: psycopg's LockNotAvailable arrives as Django's
    OperationalError, which the import re-raises for the task to retry, instead of failing the job."""
    settings = connection.settings_dict
    other = psycopg.connect(dbname=settings["NAME"], user=settings["USER"], password=settings["PASSWORD"] or None,
                            host=settings["HOST"] or None, port=settings["PORT"] or None)
    try:
        other.execute(f'LOCK TABLE "{Prediction._meta.db_table}" IN ACCESS EXCLUSIVE MODE')
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '300ms'")
        try:
            with pytest.raises(OperationalError, match="lock timeout"):
                run_ls_import(corpus, build_export(3))
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET lock_timeout")
    finally:
        other.rollback()
        other.close()
    job = Job.objects.get(corpus=corpus)
    assert job.status == JobStatus.RUNNING  # left for the task's retry, not failed
    assert not Utterance.objects.filter(corpus=corpus).exists() and not Annotation.objects.exists()
