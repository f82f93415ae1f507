"""Sentio as a Label Studio ML backend: the requests Label Studio sends (shapes from label-studio-sdk and the
label-studio-ml-backend protocol), authenticated, answered with predictions of the project's real models."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from label_studio_sdk.label_interface import LabelInterface
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotation.export.label_studio import label_config
from annotation.models import Annotation, Origin, Prediction
from annotation.predictions.services import (
    TrainHeadSpec,
    preannotation_job_create,
    preannotation_run,
    project_head_train,
)
from annotation.schema import parse_questions
from jobs.dispatch import Task
from jobs.models import JobKind

pytestmark = pytest.mark.django_db
LS_PROJECT = "3.1714567890"  # Label Studio sends "<project id>.<created_at timestamp>"


def basic(user: Any, secret: str) -> APIClient:
    client = APIClient()
    credentials = base64.b64encode(f"{user.get_username()}:{secret}".encode()).decode()
    client.credentials(HTTP_AUTHORIZATION=f"Basic {credentials}")
    return client


def url(world: Any, tail: str) -> str:
    return f"/api/label-studio/projects/{world.project.pk}/ml/{tail}"


def config_of(world: Any) -> str:
    """The labelling config of a Label Studio project made from Sentio's export of this project."""
    return label_config(parse_questions(world.schema.questions))


def ls_task(task_id: int, data: dict[str, Any]) -> dict[str, Any]:
    """A task as Label Studio's TaskSimpleSerializer sends it to /predict."""
    return {"id": task_id, "data": data, "meta": {}, "created_at": "2024-05-02T10:00:00.000000Z",
            "updated_at": "2024-05-02T10:00:00.000000Z", "is_labeled": False, "overlap": 1, "inner_id": task_id,
            "total_annotations": 0, "cancelled_annotations": 0, "total_predictions": 0, "comment_count": 0,
            "unresolved_comment_count": 0, "last_comment_updated_at": None, "project": 3, "updated_by": None,
            "file_upload": 1, "comment_authors": [], "annotations": [], "predictions": []}


@pytest.fixture
def trained(world):  # type: ignore[no-untyped-def]
    """A head trained on the lead's labels, registered, and run over two unlabelled items (stored predictions; a
    head never predicts the items it was trained on)."""
    model = project_head_train(project=world.project, spec=TrainHeadSpec("emotion"), user=world.lead)
    job = preannotation_job_create(project=world.project, user=world.lead, model_id=model.pk,
                                   utterance_ids=[u.pk for u in world.unlabelled[:2]])
    preannotation_run(job_id=job.pk)
    return model


def test_only_leads_with_their_token_reach_the_backend(world) -> None:
    token = Token.objects.create(user=world.lead).key
    reviewer_token = Token.objects.create(user=world.reviewer).key
    outsider_token = Token.objects.create(user=world.outsider).key
    assert basic(world.lead, token).get(url(world, "health")).json() == {
        "status": "UP", "model_class": "Sentio", "project": world.project.pk}
    assert basic(world.lead, token).get(url(world, "")).status_code == 200  # Label Studio also checks the root
    header = APIClient()
    header.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert header.get(url(world, "health")).status_code == 200
    for client in (APIClient(), basic(world.lead, "correct horse battery"), basic(world.lead, reviewer_token),
                   basic(world.reviewer, token)):
        response = client.get(url(world, "health"))
        assert response.status_code == 401 and response["WWW-Authenticate"].startswith("Basic")
    assert basic(world.reviewer, reviewer_token).get(url(world, "health")).status_code == 403
    assert basic(world.outsider, outsider_token).get(url(world, "health")).status_code == 404
    session = APIClient()
    session.force_login(world.lead)  # a browser session is not how Label Studio connects
    assert session.post(url(world, "setup"), {"schema": config_of(world)}, format="json").status_code == 401


def test_setup_names_the_model_or_says_why_none_fits(world, trained) -> None:
    client = basic(world.lead, Token.objects.create(user=world.lead).key)
    response = client.post(url(world, "setup"), {"project": LS_PROJECT, "schema": config_of(world),
                                                 "hostname": "http://localhost:8080", "access_token": "x"},
                           format="json")
    assert response.status_code == 200 and response.json() == {"model_version": trained.model_version}
    other = '<View><Text name="t" value="$t"/><Choices name="sentiment" toName="t"><Choice value="a"/>' \
            '<Choice value="b"/></Choices></View>'
    refused = client.post(url(world, "setup"), {"project": LS_PROJECT, "schema": other}, format="json")
    assert refused.status_code == 400
    assert "none of this config's questions (sentiment) is answered" in refused.json()["schema"][0]
    broken = client.post(url(world, "setup"), {"project": LS_PROJECT, "schema": "<View><Text"}, format="json")
    assert broken.status_code == 400 and "not well-formed XML" in broken.json()["label_config"][0]


def test_predict_returns_stored_and_freshly_run_predictions_label_studio_accepts(world, trained) -> None:
    client = basic(world.lead, Token.objects.create(user=world.lead).key)
    config = config_of(world)
    stored = world.unlabelled[0]
    unpredicted = world.unlabelled[3]
    tasks = [
        ls_task(1, {"text": stored.text, "utterance_id": stored.pk, "audio": ""}),  # from a Sentio export
        ls_task(2, {"text": "I am so happy and delighted, what a wonderful day", "audio": ""}),  # not in Sentio
        ls_task(3, {"text": "", "audio": "/data/upload/3/x.wav"}),  # nothing a text model can read
        ls_task(4, {"text": unpredicted.text, "utterance_id": unpredicted.pk, "audio": ""}),
        ls_task(5, {"text": "something else entirely", "utterance_id": stored.pk, "audio": ""}),  # id of another text
    ]
    body = {"tasks": tasks, "model_version": trained.model_version, "project": LS_PROJECT, "label_config": config,
            "params": {"login": None, "password": None, "context": None}}
    response = client.post(url(world, "predict"), body, format="json")
    assert response.status_code == 200
    results = response.json()["results"]
    assert len(results) == len(tasks) and results[2] == []
    interface = LabelInterface(config)
    for index in (0, 1, 3, 4):
        [prediction] = results[index]
        assert prediction["model_version"] == trained.model_version and 0 < prediction["score"] <= 1
        assert interface.validate_prediction(prediction, return_errors=True) == []
        [region] = prediction["result"]
        assert (region["from_name"], region["to_name"], region["type"]) == ("emotion", "text", "choices")
    stored_prediction = Prediction.objects.get(utterance=stored, model_version=trained.model_version)
    assert results[0][0]["result"][0]["value"]["choices"] == [stored_prediction.label]
    assert results[0][0]["score"] == pytest.approx(stored_prediction.scores[stored_prediction.label], abs=1e-6)
    assert results[1][0]["result"][0]["value"]["choices"] == ["joy"]  # the head learned joy from the lead's labels
    assert not Prediction.objects.filter(utterance=unpredicted).exists()  # run for the answer, not stored
    bad = client.post(url(world, "predict"), {**body, "tasks": "all"}, format="json")
    assert bad.status_code == 400 and "tasks" in bad.json()


def test_predict_without_a_fitting_model_answers_empty_lists(world) -> None:
    client = basic(world.lead, Token.objects.create(user=world.lead).key)
    response = client.post(url(world, "predict"), {"tasks": [ls_task(1, {"text": "hi", "audio": ""})],
                                                   "label_config": config_of(world), "project": LS_PROJECT},
                           format="json")
    assert response.status_code == 200 and response.json() == {"results": [[]]}


def test_webhook_keeps_label_studio_annotations_in_step_and_starts_training(world, monkeypatch,
                                                                            django_capture_on_commit_callbacks) -> None:
    sent: list[tuple[Task, tuple[int, ...]]] = []
    monkeypatch.setattr("jobs.dispatch.task_send", lambda task, *ids: sent.append((task, ids)))
    client = basic(world.lead, Token.objects.create(user=world.lead).key)
    config = config_of(world)
    utterance = world.labelled[2]
    project = {"id": 3, "title": "Emotions", "label_config": config}
    task = ls_task(9, {"text": utterance.text, "utterance_id": utterance.pk, "audio": ""})
    annotation = {"id": 555, "completed_by": 42, "was_cancelled": False, "lead_time": 4.25,
                  "created_at": "2024-05-02T10:05:00Z", "task": 9, "project": 3, "result": [
                      {"from_name": "emotion", "to_name": "text", "type": "choices", "value": {"choices": ["anger"]}},
                      {"from_name": "valence", "to_name": "text", "type": "number", "value": {"number": 1.5}}]}
    created = client.post(url(world, "webhook"), {"action": "ANNOTATION_CREATED", "annotation": annotation,
                                                  "task": task, "project": project}, format="json")
    assert created.status_code == 201, created.json()
    row = Annotation.objects.get(pk=created.json()["result"]["annotation"])
    assert (row.utterance_id, row.project_id, row.origin, row.external_rater, row.external_id) == (
        utterance.pk, None, Origin.HUMAN, "ls:42", "555")
    assert row.value == {"emotion": "anger", "valence": 1.5} and row.lead_time_ms == 4250
    assert row.created_at.isoformat() == "2024-05-02T10:05:00+00:00"
    annotation["result"][0]["value"]["choices"] = ["joy"]
    updated = client.post(url(world, "webhook"), {"action": "ANNOTATION_UPDATED", "annotation": annotation,
                                                  "task": task, "project": project}, format="json")
    assert updated.json()["result"] == {"annotation": row.pk, "updated": True}
    row.refresh_from_db()
    assert row.value["emotion"] == "joy"
    annotation["result"][0]["value"]["choices"] = ["bored"]
    bad = client.post(url(world, "webhook"), {"action": "ANNOTATION_UPDATED", "annotation": annotation,
                                              "task": task, "project": project}, format="json")
    assert bad.status_code == 400 and "'bored' is not one of the labels" in bad.json()["annotation"][0]
    unknown_task = client.post(url(world, "webhook"), {"action": "ANNOTATION_CREATED", "annotation": annotation,
                                                       "task": ls_task(99, {"text": "new"}), "project": project},
                               format="json")
    assert unknown_task.status_code == 200 and unknown_task.json()["status"] == "ignored"
    deleted = client.post(url(world, "webhook"), {"action": "ANNOTATIONS_DELETED", "annotations": [{"id": 555}],
                                                  "project": project}, format="json")
    assert deleted.json()["result"] == {"deleted": 1} and not Annotation.objects.filter(pk=row.pk).exists()
    assert client.post(url(world, "webhook"), {"action": "PROJECT_UPDATED", "project": project},
                       format="json").json() == {"status": "Unknown event", "result": {}}
    with django_capture_on_commit_callbacks(execute=True):
        training = client.post(url(world, "webhook"), {"action": "START_TRAINING", "project": project}, format="json")
    assert training.status_code == 201
    job_id = training.json()["result"]["job"]
    assert sent == [(Task.PREANNOTATE, (job_id,))]
    from jobs.models import Job

    job = Job.objects.get(pk=job_id)
    assert job.kind == JobKind.PREANNOTATE and job.params["train_head"]["question"] == "emotion"
