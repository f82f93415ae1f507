"""Jobs run by a real Celery worker process through real Redis."""

from datetime import timedelta

from django.utils import timezone

from jobs.models import Job, JobStatus
from jobs.services import job_start
from tests.workers.conftest import wait_for
from workers.tasks import reap_stuck_jobs


def test_reaper_on_a_real_worker_sends_a_dead_workers_import_again(celery_worker_process, lead):
    """An import whose worker died mid-run (RUNNING, silent) is sent again by the reaper and then completes."""
    from django.core.files.base import ContentFile

    from corpora.importing.services import import_job_create
    from corpora.models import Utterance
    from corpora.services import corpus_create

    corpus = corpus_create(name="Orphaned", license="CC0-1.0", created_by=lead)
    job = import_job_create(
        corpus=corpus, files=[ContentFile(b"id,text\na,first\nb,second\n", name="rows.csv")], created_by=lead,
        options={"mapping": {"text": "text", "external_id": "id"}, "language": "en"}, enqueue=False,
    )
    job_start(job_id=job.pk)  # what the dead worker had done before it was killed
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(hours=2))

    reap_stuck_jobs.delay()

    finished = wait_for(lambda: Job.objects.filter(pk=job.pk, status__in=[JobStatus.SUCCEEDED, JobStatus.FAILED]).first(),
                        timeout=90)
    assert finished.status == JobStatus.SUCCEEDED, finished.message
    assert finished.attempts == 2
    assert Utterance.objects.filter(corpus=corpus).count() == 2
    assert "workers.tasks.reap_stuck_jobs" in celery_worker_process.log()


def test_import_runs_end_to_end_on_a_real_worker_and_grows_the_projects(celery_worker_process, lead, emotion_schema):
    """Upload → job enqueued on commit → worker imports through Redis → projects on the corpus get the new items."""
    from django.core.files.base import ContentFile
    from django.db import transaction

    from annotation.models import ProjectItem
    from annotation.services import project_create
    from corpora.importing.services import import_job_create
    from corpora.models import Utterance
    from corpora.services import corpus_create

    corpus = corpus_create(name="Worker corpus", license="CC-BY-4.0", created_by=lead)
    project = project_create(name="Grows", corpus=corpus, schema_version=emotion_schema, created_by=lead, overlap=2)
    assert not ProjectItem.objects.filter(project=project).exists()
    data = "id,text\nu1,मुझे बहुत खुशी है\nu2,I am so angry\nu3,\n".encode()
    with transaction.atomic():
        job = import_job_create(
            corpus=corpus, files=[ContentFile(data, name="rows.csv")], created_by=lead,
            options={"mapping": {"text": "text", "external_id": "id"}, "language": "hi", "mode": "skip_invalid"},
        )
    finished = wait_for(lambda: Job.objects.filter(pk=job.pk, status__in=[JobStatus.SUCCEEDED, JobStatus.FAILED]).first(),
                        timeout=90)
    assert finished.status == JobStatus.SUCCEEDED, finished.message
    assert sorted(Utterance.objects.filter(corpus=corpus).values_list("external_id", flat=True)) == ["u1", "u2"]
    # the empty text is reported (data rows are numbered from 1, header not counted), not imported
    assert list(finished.errors.values_list("file", "row", "column")) == [("rows.csv", 3, "text")]
    assert finished.progress_done == finished.progress_total > 0
    wait_for(lambda: ProjectItem.objects.filter(project=project).count() == 2, timeout=60)
    assert set(ProjectItem.objects.filter(project=project).values_list("target_count", flat=True)) == {2}
