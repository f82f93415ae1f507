"""Every Celery queue in one place; torch work stays on its own queue."""

from __future__ import annotations

from enum import StrEnum


class CeleryQueue(StrEnum):
    DEFAULT = "default"  # imports, exports, statistics
    GPU = "gpu"  # model inference and training
    LLM = "llm"  # rate-limited calls to LLM servers


def task_routes() -> dict[str, dict[str, str]]:
    return {
        "workers.tasks.run_import_job": {"queue": CeleryQueue.DEFAULT.value},
        "workers.tasks.run_export_job": {"queue": CeleryQueue.DEFAULT.value},
        "workers.tasks.compute_agreement": {"queue": CeleryQueue.DEFAULT.value},
        "workers.tasks.reap_stuck_jobs": {"queue": CeleryQueue.DEFAULT.value},
        "workers.tasks.sync_project_items": {"queue": CeleryQueue.DEFAULT.value},
        "workers.tasks.sync_corpus_project_items": {"queue": CeleryQueue.DEFAULT.value},
        "workers.tasks.run_preannotation_job": {"queue": CeleryQueue.GPU.value},
        "workers.tasks.run_transcription_job": {"queue": CeleryQueue.GPU.value},
    }
