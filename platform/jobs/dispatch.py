"""The one way services start background work: a Celery task sent by name once the transaction commits.

Services never import ``workers/`` (the tasks import the services, so importing them back would make a circle);
they name the task here. Queues and routes live here too, so the Celery app (``config.celery``) and the tasks
read the same table.
"""

from __future__ import annotations

from enum import StrEnum
from functools import partial

from celery import current_app
from django.db import transaction


class CeleryQueue(StrEnum):
    DEFAULT = "default"  # imports, exports, statistics
    GPU = "gpu"  # model inference and training
    LLM = "llm"  # rate-limited calls to LLM servers


class Task(StrEnum):
    """Every task services may start, by its registered Celery name."""

    IMPORT = "workers.tasks.run_import_job"
    EXPORT = "workers.tasks.run_export_job"
    AGREEMENT = "workers.tasks.compute_agreement"
    PREANNOTATE = "workers.tasks.run_preannotation_job"
    TRANSCRIBE = "workers.tasks.run_transcription_job"
    LABEL_STUDIO_IMPORT = "workers.tasks.run_label_studio_import_job"
    LLM_LABEL = "workers.tasks.run_llm_label_job"
    ACTIVE_LEARNING = "workers.tasks.run_active_learning_job"
    SYNC_PROJECT_ITEMS = "workers.tasks.sync_project_items"
    REAP_STUCK_JOBS = "workers.tasks.reap_stuck_jobs"
    SWEEP_IMPORT_UPLOADS = "workers.tasks.sweep_import_uploads"


TASK_QUEUES: dict[Task, CeleryQueue] = {
    Task.IMPORT: CeleryQueue.DEFAULT,
    Task.EXPORT: CeleryQueue.DEFAULT,
    Task.AGREEMENT: CeleryQueue.DEFAULT,
    Task.PREANNOTATE: CeleryQueue.GPU,
    Task.TRANSCRIBE: CeleryQueue.GPU,
    Task.LABEL_STUDIO_IMPORT: CeleryQueue.DEFAULT,
    Task.LLM_LABEL: CeleryQueue.LLM,
    Task.ACTIVE_LEARNING: CeleryQueue.GPU,
    Task.SYNC_PROJECT_ITEMS: CeleryQueue.DEFAULT,
    Task.REAP_STUCK_JOBS: CeleryQueue.DEFAULT,
    Task.SWEEP_IMPORT_UPLOADS: CeleryQueue.DEFAULT,
}

# The task that runs a job of each kind (the reaper sends stuck jobs back to it).
JOB_KIND_TASKS: dict[str, Task] = {
    "import": Task.IMPORT,
    "export": Task.EXPORT,
    "agreement": Task.AGREEMENT,
    "preannotate": Task.PREANNOTATE,
    "transcribe": Task.TRANSCRIBE,
    "label_studio_import": Task.LABEL_STUDIO_IMPORT,
    "llm_label": Task.LLM_LABEL,
    "active_learning": Task.ACTIVE_LEARNING,
}


def task_routes() -> dict[str, dict[str, str]]:
    return {task.value: {"queue": queue.value} for task, queue in TASK_QUEUES.items()}


def task_send_on_commit(task: Task, *ids: int) -> None:
    """Send ``task(*ids)`` when the current transaction commits (at once outside a transaction)."""
    transaction.on_commit(partial(task_send, task, *ids))


def task_send(task: Task, *ids: int) -> None:
    current_app.send_task(task.value, args=list(ids), queue=TASK_QUEUES[task].value)
