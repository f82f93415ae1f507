"""The predictions API: who may register models and start jobs, refusals with reasons, visibility, summaries."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from annotation.models import ProjectModel, SuggestionPolicy
from annotation.predictions.services import preannotation_job_create, preannotation_run
from jobs.models import Job, JobKind


def client_for(user) -> APIClient:  # type: ignore[no-untyped-def]
    client = APIClient()
    client.force_authenticate(user)
    return client


def url(world, tail: str) -> str:  # type: ignore[no-untyped-def]
    return f"/api/projects/{world.project.pk}/{tail}"


def test_register_refuses_unavailable_model_with_400_and_reason(world) -> None:
    response = client_for(world.lead).post(url(world, "models/"), {"card_id": "xlm-emo-t", "question": "emotion"},
                                           format="json")
    assert response.status_code == 400
    assert "not available offline" in response.json()["card_id"][0]
    assert not ProjectModel.objects.exists()


def test_register_and_list_models(world) -> None:
    response = client_for(world.lead).post(url(world, "models/"), {"card_id": "whisper-tiny.en"}, format="json")
    assert response.status_code == 201 and response.json()["task"] == "asr"
    listing = client_for(world.reviewer).get(url(world, "models/")).json()
    assert [m["card_id"] for m in listing["registered"]] == ["whisper-tiny.en"]
    catalogue = {entry["id"]: entry for entry in listing["catalogue"]}
    assert catalogue["whisper-tiny.en"]["available"] and not catalogue["xlm-emo-t"]["available"]
    assert catalogue["xlm-emo-t"]["reason"]


@pytest.mark.parametrize("persona, expected", [("reviewer", 403), ("annotator", 403), ("outsider", 404)])
def test_only_leads_register_and_start_jobs(world, persona, expected) -> None:
    client = client_for(getattr(world, persona))
    assert client.post(url(world, "models/"), {"card_id": "whisper-tiny.en"}, format="json").status_code == expected
    assert client.post(url(world, "preannotate/"), {"train_head": {"question": "emotion"}},
                       format="json").status_code == expected
    assert client.post(url(world, "transcribe/"), {"asr_model": 1}, format="json").status_code == expected
    assert not Job.objects.exists()


def test_preannotate_and_transcribe_answer_202_with_the_job(world) -> None:
    client = client_for(world.lead)
    response = client.post(url(world, "preannotate/"), {"train_head": {"question": "emotion"}}, format="json")
    assert response.status_code == 202
    job = Job.objects.get(pk=response.json()["id"])
    assert job.kind == JobKind.PREANNOTATE and job.project_id == world.project.pk
    assert job.params["train_head"]["question"] == "emotion"
    bad = client.post(url(world, "preannotate/"), {"train_head": {"question": "nope"}}, format="json")
    assert bad.status_code == 400 and "nope" in bad.json()["train_head"][0]
    asr = client.post(url(world, "models/"), {"card_id": "whisper-tiny.en"}, format="json").json()
    response = client.post(url(world, "transcribe/"), {"asr_model": asr["id"]}, format="json")
    assert response.status_code == 202 and Job.objects.get(pk=response.json()["id"]).kind == JobKind.TRANSCRIBE
    wrong = client.post(url(world, "transcribe/"), {"asr_model": asr["id"], "text_model": asr["id"]}, format="json")
    assert wrong.status_code == 400 and "text_emotion" in wrong.json()["text_model"][0]


def test_predictions_follow_the_suggestion_policy_and_summary_has_histograms(world) -> None:
    job = preannotation_job_create(project=world.project, user=world.lead, train_head={"question": "emotion"})
    preannotation_run(job_id=job.pk)
    total = len(world.unlabelled)  # never on the items the head was trained on

    world.project.suggestion_policy = SuggestionPolicy.HIDDEN
    world.project.save(update_fields=["suggestion_policy"])
    assert client_for(world.annotator).get(url(world, "predictions/")).status_code == 403
    assert client_for(world.outsider).get(url(world, "predictions/")).status_code == 404
    assert client_for(world.reviewer).get(url(world, "predictions/")).json()["count"] == total
    world.project.suggestion_policy = SuggestionPolicy.SHOWN
    world.project.save(update_fields=["suggestion_policy"])
    one = client_for(world.annotator).get(url(world, "predictions/"), {"utterance": world.unlabelled[0].pk}).json()
    assert one["count"] == 1 and one["results"][0]["utterance"] == world.unlabelled[0].pk

    assert client_for(world.annotator).get(url(world, "predictions/summary/")).status_code == 403
    assert client_for(world.lead).get(url(world, "predictions/summary/"), {"bins": "0"}).status_code == 400
    summary = client_for(world.lead).get(url(world, "predictions/summary/"), {"bins": 4}).json()
    [model] = summary["models"]
    assert model["count"] == total and set(model["histograms"]) == {"joy", "sadness", "anger", "fear", "neutral"}
    assert all(sum(h["counts"]) == total and len(h["counts"]) == 4 for h in model["histograms"].values())
