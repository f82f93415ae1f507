"""The active-learning API: leads change settings (with a reason per bad field), reviewers read, others are kept
out; switching on orders the project by priority and queues a retrain; the curve lists each retrain's F1."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from annotation.active_learning.retrain import active_learning_run
from annotation.models import ActiveLearningSettings, OrderingStrategy
from jobs.models import JobKind, JobStatus


def client_for(user) -> APIClient:  # type: ignore[no-untyped-def]
    client = APIClient()
    client.force_authenticate(user)
    return client


def url(world, tail: str = "") -> str:  # type: ignore[no-untyped-def]
    return f"/api/projects/{world.project.pk}/active-learning/{tail}"


def test_bad_settings_are_refused_field_by_field(world) -> None:
    response = client_for(world.lead).put(url(world), {"enabled": True, "question_key": "nope", "retrain_every": 0,
                                                       "exploration": 0.9}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert "emotion" in body["question_key"][0] and "from 1" in body["retrain_every"][0]
    assert "0.5" in body["exploration"][0]
    assert client_for(world.lead).put(url(world), {"strategy": "vibes"}, format="json").status_code == 400
    assert not ActiveLearningSettings.objects.exists()  # nothing half-done


def test_who_may_read_and_change(world) -> None:
    data = {"enabled": False, "question_key": "emotion"}
    assert client_for(world.annotator).get(url(world)).status_code == 403
    assert client_for(world.outsider).get(url(world)).status_code == 404
    assert client_for(world.reviewer).put(url(world), data, format="json").status_code == 403
    assert client_for(world.lead).put(url(world), data, format="json").status_code == 200
    assert client_for(world.reviewer).get(url(world)).json()["question_key"] == "emotion"


@pytest.mark.postgres("a retrain job stores embeddings and items with PostgreSQL upserts")
def test_switching_on_queues_a_retrain_and_the_curve_shows_it(world, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    with django_capture_on_commit_callbacks(execute=False):
        response = client_for(world.lead).put(url(world), {"enabled": True, "question_key": "emotion",
                                                           "retrain_every": 5, "strategy": "entropy"}, format="json")
    assert response.status_code == 200
    state = response.json()
    assert state["enabled"] and state["human_labels"] == len(world.labelled) and state["retrain_running"]
    world.project.refresh_from_db()
    assert world.project.ordering_strategy == OrderingStrategy.UNCERTAINTY
    settings = ActiveLearningSettings.objects.get(project=world.project)
    assert settings.job is not None and settings.job.kind == JobKind.ACTIVE_LEARNING
    active_learning_run(job_id=settings.job.pk)
    settings.job.refresh_from_db()
    assert settings.job.status == JobStatus.SUCCEEDED, settings.job.message
    active_learning_run(job_id=settings.job.pk)  # a redelivered message for a finished job changes nothing
    curve = client_for(world.reviewer).get(url(world, "curve/")).json()
    assert len(curve["points"]) == 1 and curve["simulation"] is None
    point = curve["points"][0]
    assert point["human_labels"] == len(world.labelled) and point["method"] == "k_fold"  # no held-out split here
    assert 0.0 <= point["macro_f1"] <= 1.0 and set(point["per_label_f1"]) >= {"joy", "anger"}
