from __future__ import annotations

from typing import Any

import pytest
from django.core.files.base import ContentFile

from corpora.services import corpus_create


@pytest.fixture(autouse=True)
def media_in_tmp(settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"}}


@pytest.fixture
def corpus(db, lead):  # type: ignore[no-untyped-def]
    return corpus_create(name="Test corpus", license="CC-BY-4.0", created_by=lead)


@pytest.fixture
def run_import(lead):  # type: ignore[no-untyped-def]
    """Create an import job from in-memory files and run it in-process, as the CLI does."""
    from corpora.importing.services import import_job_create, import_run

    def run(corpus, files: dict[str, bytes], options: dict[str, Any] | None = None, **kwargs):  # type: ignore[no-untyped-def]
        uploads = [ContentFile(data, name=name) for name, data in files.items()]
        job = import_job_create(corpus=corpus, files=uploads, options=options or {}, created_by=lead, enqueue=False,
                                **kwargs)
        import_run(job_id=job.pk, on_progress=kwargs.pop("on_progress", None))
        job.refresh_from_db()
        return job

    return run
