"""The LLM labelling API: roles, the write-only key, templates and preview, runs, synthetic labels, evaluation."""

from __future__ import annotations

from unittest import mock

import pytest
from rest_framework.test import APIClient

from tests.llm.conftest import LABELS, LLMProject


def client_for(user) -> APIClient:  # type: ignore[no-untyped-def]
    client = APIClient()
    client.force_authenticate(user)
    return client


def _url(project, rest: str) -> str:  # type: ignore[no-untyped-def]
    return f"/api/projects/{project.pk}/llm/{rest}"


def test_endpoints_are_for_leads_and_the_key_never_comes_back(llm_project: LLMProject, lead, reviewer, outsider,
                                                               allow_loopback) -> None:
    from annotation.models import Membership, Role

    project = llm_project.project
    Membership.objects.create(project=project, user=reviewer, role=Role.REVIEWER)
    body = {"name": "local", "base_url": "http://127.0.0.1:8080/v1", "model": "gemma", "api_key": "sk-secret-42"}
    assert client_for(outsider).post(_url(project, "endpoints/"), body, format="json").status_code == 404
    assert client_for(reviewer).post(_url(project, "endpoints/"), body, format="json").status_code == 403
    made = client_for(lead).post(_url(project, "endpoints/"), body, format="json")
    assert made.status_code == 201, made.content
    assert made.json()["has_api_key"] is True and b"sk-secret-42" not in made.content and "api_key" not in made.json()
    listed = client_for(lead).get(_url(project, "endpoints/"))
    assert b"sk-secret" not in listed.content and listed.json()[0]["name"] == "local"
    refused = client_for(lead).post(_url(project, "endpoints/"), {**body, "name": "meta",
                                                                  "base_url": "http://169.254.169.254/v1"}, format="json")
    assert refused.status_code == 400 and "non-public address" in refused.json()["base_url"][0]


def test_templates_preview_runs_cancel_synthetic_and_evaluation(llm_project: LLMProject, lead, reviewer,
                                                                allow_loopback, django_capture_on_commit_callbacks
                                                                ) -> None:
    from annotation.models import LLMEndpoint, LLMLabel, Membership, Role
    from jobs.models import JobStatus

    project = llm_project.project
    Membership.objects.create(project=project, user=reviewer, role=Role.REVIEWER)
    lead_client = client_for(lead)
    endpoint_id = lead_client.post(_url(project, "endpoints/"), {"name": "a", "base_url": "http://127.0.0.1:9/v1",
                                                                 "model": "m"}, format="json").json()["id"]
    cotr = lead_client.post(_url(project, "templates/"), {"name": "cotr", "kind": "cotr"}, format="json").json()
    direct = lead_client.post(_url(project, "templates/"), {"name": "direct", "kind": "direct"}, format="json").json()
    bad = lead_client.post(_url(project, "templates/"), {"name": "x", "kind": "direct", "user": "no text here"},
                           format="json")
    assert bad.status_code == 400 and "$text" in bad.json()["user"][0]
    preview = lead_client.post(_url(project, f"templates/{cotr['id']}/preview/"), {}, format="json")
    assert preview.status_code == 200 and len(preview.json()) == 5 and "translate" in preview.json()[0]["prompt"]

    with mock.patch("jobs.dispatch.task_send") as send, django_capture_on_commit_callbacks(execute=True):
        started = lead_client.post(_url(project, "runs/"), {"endpoint": endpoint_id, "template": cotr["id"],
                                                            "selection": {"split": "test"}}, format="json")
    assert started.status_code == 202, started.content
    send.assert_called_once()
    run = started.json()
    assert run["job"]["kind"] == "llm_label" and run["selection"]["split"] == "test"
    wrong = lead_client.post(_url(project, "runs/"), {"endpoint": endpoint_id, "template": cotr["id"],
                                                      "selection": {"split": "holdout"}}, format="json")
    assert wrong.status_code == 400 and "selection.split" in wrong.json()
    cancelled = lead_client.post(_url(project, f"runs/{run['id']}/cancel/"))
    assert cancelled.json()["job"]["status"] == JobStatus.CANCELLED
    assert client_for(reviewer).get(_url(project, f"runs/{run['id']}/")).status_code == 200
    assert client_for(reviewer).post(_url(project, f"runs/{run['id']}/cancel/")).status_code == 403

    # Answers as a labelling job stores them: CoTR right on most items, direct always "joy".
    endpoint = LLMEndpoint.objects.get(pk=endpoint_id)
    for index, utterance in enumerate(llm_project.utterances):
        truth = llm_project.truth[utterance.pk]
        LLMLabel.objects.create(utterance=utterance, endpoint=endpoint, template_id=cotr["id"], model="m",
                                labels={"emotion": truth if index % 4 else LABELS[(LABELS.index(truth) + 1) % 4]})
        LLMLabel.objects.create(utterance=utterance, endpoint=endpoint, template_id=direct["id"], model="m",
                                labels={"emotion": "joy"})
    labels = client_for(reviewer).get(_url(project, f"runs/{run['id']}/labels/"))
    assert labels.json()["count"] == 12 and labels.json()["results"][0]["model"] == "m"

    published = lead_client.post(_url(project, "synthetic/"), {"sources": [[endpoint_id, cotr["id"]],
                                                                           [endpoint_id, direct["id"]]],
                                                               "method": "intersection"}, format="json")
    assert published.status_code == 201 and published.json()["method"] == "intersection"

    evaluation = client_for(reviewer).get(_url(project, "evaluation/")).json()
    by_template = {s.get("template_kind") or s["kind"]: s["questions"]["emotion"] for s in evaluation["sources"]}
    cotr_eval, direct_eval = by_template["cotr"], by_template["direct"]
    assert cotr_eval["n_items"] == direct_eval["n_items"] > 0
    assert cotr_eval["macro_f1"] > direct_eval["macro_f1"]
    assert direct_eval["macro_f1"] <= direct_eval["majority_baseline_macro_f1"] + 1e-9
    assert "Not better than always answering the most frequent" in direct_eval["verdict"]
    assert set(cotr_eval["per_label_f1"]) == set(LABELS) and len(cotr_eval["confusion"]["matrix"]) == 4
    assert cotr_eval["kappa_with_human_majority"] > direct_eval["kappa_with_human_majority"]
    assert cotr_eval["alpha_humans"] is not None and "alpha_humans_and_llm" in cotr_eval
    assert set(cotr_eval["per_language"]) == {"mr"}
    side = evaluation["cotr_vs_direct"][0]
    assert side["cotr"]["emotion"]["macro_f1"] == cotr_eval["macro_f1"]
    assert side["direct"]["emotion"]["macro_f1"] == direct_eval["macro_f1"]
    assert any(s["kind"] == "combination" for s in evaluation["sources"])


@pytest.mark.parametrize("role", ["annotator", "outsider"])
def test_evaluation_is_not_for_annotators_or_outsiders(llm_project: LLMProject, annotator, outsider, role) -> None:
    from annotation.models import Membership, Role

    user = annotator if role == "annotator" else outsider
    if role == "annotator":
        Membership.objects.create(project=llm_project.project, user=annotator, role=Role.ANNOTATOR)
    answer = client_for(user).get(_url(llm_project.project, "evaluation/"))
    assert answer.status_code == (403 if role == "annotator" else 404)
