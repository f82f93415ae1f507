"""Celery tasks: thin interfaces that take ids and call one service."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from celery.signals import task_postrun, task_prerun

from jobs.dispatch import JOB_KIND_TASKS, CeleryQueue

# Every task that runs a job (JOB_KIND_TASKS, whose first argument is the job id) runs inside
# jobs.services.job_running: a heartbeat from a thread while it runs, and its message's id, which lets a retry or a
# redelivery of that message take its job over but keeps a duplicate message off it. Signals, so that no job task
# can forget it.
_JOB_TASK_NAMES = frozenset(task.value for task in JOB_KIND_TASKS.values())
_running: dict[str, Any] = {}  # task id -> its job_running context, from task_prerun to task_postrun


@task_prerun.connect(weak=False)
def job_task_started(task_id: str, task: Any, args: Any = (), **_: Any) -> None:
    if task.name in _JOB_TASK_NAMES and args:
        from jobs.services import job_running

        running = job_running(job_id=int(args[0]), runner=task_id)
        running.__enter__()
        _running[task_id] = running


@task_postrun.connect(weak=False)
def job_task_ended(task_id: str, **_: Any) -> None:
    running = _running.pop(task_id, None)
    if running is not None:
        running.__exit__(None, None, None)


@shared_task(name="workers.tasks.reap_stuck_jobs", queue=CeleryQueue.DEFAULT.value)
def reap_stuck_jobs() -> int:
    """Send stuck jobs to their task again (after commit), or fail those out of attempts; return how many."""
    from jobs.services import jobs_reap_stuck

    result = jobs_reap_stuck()
    return len(result.requeued) + result.failed


@shared_task(name="workers.tasks.sweep_import_uploads", queue=CeleryQueue.DEFAULT.value)
def sweep_import_uploads() -> int:
    """Delete the uploads of import jobs finished more than SENTIO_IMPORT_UPLOADS_KEEP_DAYS ago; return how many."""
    from corpora.importing.services import import_uploads_sweep

    return import_uploads_sweep()


IMPORT_MAX_RETRIES = 3


@shared_task(
    bind=True, name="workers.tasks.run_import_job", queue=CeleryQueue.DEFAULT.value, acks_late=True,
    reject_on_worker_lost=True, max_retries=IMPORT_MAX_RETRIES,
)
def run_import_job(self, job_id: int) -> None:  # type: ignore[no-untyped-def]
    """Run one import job; a lost database connection is retried with backoff (nothing was written)."""
    from config.db import connections_drop_broken
    from corpora.importing.services import DATABASE_UNREACHABLE, import_job_fail, import_run

    try:
        import_run(job_id=job_id)
    except DATABASE_UNREACHABLE as exc:
        connections_drop_broken()  # the next try (or the failure below) gets a fresh connection
        if self.request.retries >= IMPORT_MAX_RETRIES:
            import_job_fail(job_id=job_id, message=f"The database stayed unreachable after {IMPORT_MAX_RETRIES} "
                                                   f"retries ({exc}); nothing was written.")
            return
        raise self.retry(exc=exc, countdown=min(300, 5 * 2 ** self.request.retries)) from exc


@shared_task(name="workers.tasks.run_label_studio_import_job", queue=CeleryQueue.DEFAULT.value, acks_late=True,
             reject_on_worker_lost=True)
def run_label_studio_import_job(job_id: int) -> None:
    """Run one Label Studio import job (it writes in one transaction; a finished job does nothing)."""
    from annotation.label_studio.services import label_studio_import_run

    label_studio_import_run(job_id=job_id)


@shared_task(name="workers.tasks.run_export_job", queue=CeleryQueue.DEFAULT.value, acks_late=True,
             reject_on_worker_lost=True)
def run_export_job(job_id: int) -> None:
    """Run one gold-split export job (a redelivered message for a finished job does nothing)."""
    from annotation.export.services import export_run

    export_run(job_id=job_id)


@shared_task(name="workers.tasks.compute_agreement", queue=CeleryQueue.DEFAULT.value, acks_late=True,
             reject_on_worker_lost=True)
def compute_agreement(job_id: int) -> None:
    """Compute and cache one agreement report and its aggregated labels (a redelivered finished job does nothing)."""
    from annotation.quality.services import agreement_job_run

    agreement_job_run(job_id=job_id)


# Model jobs (GPU queue). They resume where an earlier attempt stopped, so a redelivered message is safe.
PREDICTION_MAX_RETRIES = 3
PREDICTION_SOFT_TIME_LIMIT = 6 * 3600
PREDICTION_TIME_LIMIT = PREDICTION_SOFT_TIME_LIMIT + 600


def _run_prediction_job(task, run_name: str, job_id: int) -> None:  # type: ignore[no-untyped-def]
    """Call the service; retry only errors that say a retry can help (with backoff), fail the job otherwise."""
    from celery.exceptions import SoftTimeLimitExceeded
    from django.db import OperationalError

    from annotation.active_learning import retrain
    from annotation.predictions import services
    from models_zoo.errors import ModelError

    run = getattr(retrain if run_name == "active_learning_run" else services, run_name)
    try:
        run(job_id=job_id)
    except SoftTimeLimitExceeded:
        services.prediction_job_fail(job_id=job_id, message=(
            f"The job ran past the soft time limit of {PREDICTION_SOFT_TIME_LIMIT} s; what it wrote is kept, "
            "and starting it again resumes after it."))
    except (ModelError, OperationalError) as exc:
        if isinstance(exc, ModelError) and not exc.retryable:
            services.prediction_job_fail(job_id=job_id, message=f"The job failed: {exc}")
            raise
        if task.request.retries >= PREDICTION_MAX_RETRIES:
            services.prediction_job_fail(job_id=job_id, message=(
                f"A transient error persisted after {PREDICTION_MAX_RETRIES} retries ({exc}); what was written is "
                "kept, and starting the job again resumes after it."))
            return
        raise task.retry(exc=exc, countdown=min(300, 10 * 2 ** task.request.retries)) from exc
    except Exception:
        services.prediction_job_fail(job_id=job_id, message=(
            "The job failed because of an internal error; the worker log has the details."))
        raise


@shared_task(
    bind=True, name="workers.tasks.run_preannotation_job", queue=CeleryQueue.GPU.value, acks_late=True,
    reject_on_worker_lost=True, max_retries=PREDICTION_MAX_RETRIES, soft_time_limit=PREDICTION_SOFT_TIME_LIMIT,
    time_limit=PREDICTION_TIME_LIMIT,
)
def run_preannotation_job(self, job_id: int) -> None:  # type: ignore[no-untyped-def]
    """Run a pre-annotation job (predictions for a project or a selection)."""
    _run_prediction_job(self, "preannotation_run", job_id)


@shared_task(
    bind=True, name="workers.tasks.run_transcription_job", queue=CeleryQueue.GPU.value, acks_late=True,
    reject_on_worker_lost=True, max_retries=PREDICTION_MAX_RETRIES, soft_time_limit=PREDICTION_SOFT_TIME_LIMIT,
    time_limit=PREDICTION_TIME_LIMIT,
)
def run_transcription_job(self, job_id: int) -> None:  # type: ignore[no-untyped-def]
    """Run a transcription job (ASR, then weak labels from text and speech models)."""
    _run_prediction_job(self, "transcription_run", job_id)


# LLM labelling (llm queue): calls to LLM servers, rate-limited per endpoint; a retried or redelivered job resumes
# after the answers it stored (one per utterance, endpoint and template version), so nothing is paid twice.
LLM_MAX_RETRIES = 5


@shared_task(
    bind=True, name="workers.tasks.run_llm_label_job", queue=CeleryQueue.LLM.value, acks_late=True,
    reject_on_worker_lost=True, max_retries=LLM_MAX_RETRIES, soft_time_limit=PREDICTION_SOFT_TIME_LIMIT,
    time_limit=PREDICTION_TIME_LIMIT,
)
def run_llm_label_job(self, job_id: int) -> None:  # type: ignore[no-untyped-def]
    """Label a run's selection with an LLM endpoint; transient server errors retry with the server's wait."""
    from celery.exceptions import SoftTimeLimitExceeded
    from django.db import OperationalError

    from annotation.llm.services import llm_job_fail, llm_run_execute
    from models_zoo.errors import ModelError
    from models_zoo.llm import LLMBusyError

    try:
        llm_run_execute(job_id=job_id)
    except SoftTimeLimitExceeded:
        llm_job_fail(job_id=job_id, message=(
            f"The job ran past the soft time limit of {PREDICTION_SOFT_TIME_LIMIT} s; the labels made are kept, and "
            "starting the run again resumes after them."))
    except (ModelError, OperationalError) as exc:
        if isinstance(exc, ModelError) and not exc.retryable:
            llm_job_fail(job_id=job_id, message=f"The job failed: {exc}")
            raise
        if self.request.retries >= LLM_MAX_RETRIES:
            llm_job_fail(job_id=job_id, message=(
                f"The endpoint kept failing after {LLM_MAX_RETRIES} retries ({exc}); the labels made are kept, and "
                "starting the run again resumes after them."))
            return
        asked = exc.retry_after if isinstance(exc, LLMBusyError) else None
        raise self.retry(exc=exc, countdown=asked or min(300, 10 * 2 ** self.request.retries)) from exc
    except Exception:
        llm_job_fail(job_id=job_id, message="The job failed because of an internal error; the worker log has it.")
        raise


@shared_task(
    bind=True, name="workers.tasks.run_active_learning_job", queue=CeleryQueue.GPU.value, acks_late=True,
    reject_on_worker_lost=True, max_retries=PREDICTION_MAX_RETRIES, soft_time_limit=PREDICTION_SOFT_TIME_LIMIT,
    time_limit=PREDICTION_TIME_LIMIT,
)
def run_active_learning_job(self, job_id: int) -> None:  # type: ignore[no-untyped-def]
    """Retrain a project's active-learning head, re-score its open items and flag suspected label errors."""
    _run_prediction_job(self, "active_learning_run", job_id)


@shared_task(name="workers.tasks.sync_project_items", queue=CeleryQueue.DEFAULT.value, acks_late=True,
             reject_on_worker_lost=True)
def sync_project_items(project_id: int) -> int:
    """Materialise a project's missing work items (idempotent)."""
    from annotation.distribution.services import project_items_sync
    from annotation.models import Project

    project = Project.objects.filter(pk=project_id).first()
    return project_items_sync(project) if project is not None else 0
