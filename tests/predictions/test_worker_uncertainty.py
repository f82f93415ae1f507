"""A pre-annotation job run by a real Celery worker (GPU queue, real Redis) leaves its items' uncertainty fresh, so
"uncertainty first" ordering hands out the most uncertain item as soon as the job ends, with no refresh by hand."""

from __future__ import annotations

import pytest

from annotation.distribution.services import next_item_reserve, project_items_sync
from annotation.models import OrderingStrategy, Prediction, ProjectItem, ProjectModel
from annotation.predictions.services import preannotation_job_create
from annotation.services import membership_set
from jobs.models import JobStatus
from tests.workers.conftest import WorkerProcess, wait_for_job


@pytest.mark.postgres("the worker process shares the test database, which an in-memory SQLite is not")
def test_a_job_on_a_real_worker_refreshes_item_uncertainty(celery_env, tmp_path, world, make_user) -> None:  # type: ignore[no-untyped-def]
    worker = WorkerProcess(celery_env, tmp_path / "gpu-worker.log", queues="gpu")
    project = world.project
    project.ordering_strategy = OrderingStrategy.UNCERTAINTY
    project.save(update_fields=["ordering_strategy"])
    project_items_sync(project)
    items = ProjectItem.objects.filter(project=project)
    assert items.count() == len(world.labelled) + len(world.unlabelled)
    assert not items.filter(uncertainty__isnull=False).exists()
    try:
        worker.start()
        job = preannotation_job_create(project=project, user=world.lead, train_head={"question": "emotion"})
        wait_for_job(job.pk, worker)
    finally:
        worker.stop()
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.message + worker.log()[-3000:]
    model = ProjectModel.objects.get(pk=job.params["project_model_id"])
    predicted = dict(Prediction.objects.filter(model_version=model.model_version).values_list("utterance_id",
                                                                                              "uncertainty"))
    assert set(predicted) == {u.pk for u in world.unlabelled}
    uncertainty = dict(items.values_list("utterance_id", "uncertainty"))
    assert {pk: uncertainty[pk] for pk in predicted} == predicted  # copied from the job's predictions
    assert all(uncertainty[u.pk] is None for u in world.labelled)  # trained on: no prediction, no uncertainty
    assert job.counts["items_with_uncertainty"] == len(predicted)

    newcomer = make_user("nadia_newcomer")
    membership_set(project=project, user=newcomer, role="annotator")
    handed = next_item_reserve(project=project, user=newcomer)
    assert handed is not None and handed.item.utterance_id == max(predicted, key=predicted.__getitem__)
