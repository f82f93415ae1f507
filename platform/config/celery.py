"""The Celery application; queues and task names live in jobs.dispatch."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("sentio")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(lambda: ["workers"], related_name="tasks")


def configure_queues() -> None:
    from jobs.dispatch import CeleryQueue, task_routes

    app.conf.task_queues = None
    app.conf.task_default_queue = CeleryQueue.DEFAULT.value
    app.conf.task_routes = task_routes()


configure_queues()
