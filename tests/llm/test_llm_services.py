"""LLM endpoints, templates, runs in-process against the real llama.cpp server, synthetic labels and the export rule."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from django.core.files.storage import default_storage

from tests.fixtures.llm_server import LlamaServer
from tests.llm.conftest import LABELS, LLMProject


def _register(project, lead, url, **extra):  # type: ignore[no-untyped-def]
    from annotation.llm.services import llm_endpoint_register

    return llm_endpoint_register(project=project, user=lead, name=extra.pop("name", "gemma"), base_url=url,
                                 model=extra.pop("model", "gemma3-270m"), **extra)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/v1", "http://169.254.169.254/latest/v1", "http://10.0.0.5/v1",
                                 "http://[::1]:8000/v1", "file:///etc/passwd", "http://user:pw@example.org/v1"])
def test_the_ssrf_guard_refuses_private_link_local_and_odd_urls(llm_project: LLMProject, lead, url) -> None:
    from annotation.llm.services import LLMSetupError

    with pytest.raises(LLMSetupError) as refused:
        _register(llm_project.project, lead, url)
    assert "base_url" in refused.value.errors


def test_loopback_needs_the_operator_s_allow_and_the_host_allow_list_binds(llm_project: LLMProject, lead,
                                                                            settings) -> None:
    from annotation.llm.services import LLMSetupError

    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    assert _register(llm_project.project, lead, "http://127.0.0.1:8080/v1/").base_url == "http://127.0.0.1:8080/v1"
    settings.LLM_ENDPOINT_HOSTS = ["gpu-box.internal"]
    with pytest.raises(LLMSetupError, match="not among the hosts"):
        _register(llm_project.project, lead, "http://127.0.0.1:8081/v1", name="other")


def test_the_api_key_is_stored_encrypted_and_read_back_only_by_the_caller(llm_project: LLMProject, lead,
                                                                          allow_loopback, monkeypatch) -> None:
    from annotation.llm.services import LLMSetupError, endpoint_api_key
    from annotation.models import LLMEndpoint

    endpoint = _register(llm_project.project, lead, "http://127.0.0.1:8080/v1", api_key="sk-very-secret-123")
    stored = LLMEndpoint.objects.get(pk=endpoint.pk)
    assert "sk-very-secret" not in stored.api_key_encrypted and stored.api_key_encrypted
    assert endpoint_api_key(stored) == "sk-very-secret-123"
    monkeypatch.setenv("GEMMA_KEY", "from-the-environment")
    by_name = _register(llm_project.project, lead, "http://127.0.0.1:8080/v1", name="env", api_key_env="GEMMA_KEY")
    assert by_name.api_key_encrypted == "" and endpoint_api_key(by_name) == "from-the-environment"
    with pytest.raises(LLMSetupError) as both:
        _register(llm_project.project, lead, "http://127.0.0.1:8080/v1", name="both", api_key="x", api_key_env="K")
    assert set(both.value.errors) == {"api_key_env"}
    with pytest.raises(LLMSetupError, match="already has an endpoint"):
        _register(llm_project.project, lead, "http://127.0.0.1:8080/v1")


def test_the_client_s_own_transport_is_the_guarded_one(settings) -> None:
    """Even a client made without the registration's check connects only where the guard allows; the services
    turn the refusal into a permanent request error (a run stops at once instead of retrying)."""
    from annotation.llm.services import guarded_complete
    from config.outbound import outbound_client
    from models_zoo.llm import DIRECT, AnswerSchema, LLMClient, LLMRequestError, PromptItem, render_prompt
    from models_zoo.llm import LLMEndpoint as EndpointConfig

    settings.OUTBOUND_ALLOWED_HOSTS = []
    schema = AnswerSchema.from_questions([{"key": "emotion", "type": "single_choice", "labels": LABELS}])
    client = LLMClient(EndpointConfig(base_url="http://169.254.169.254/v1", model="m", max_retries=0),
                       http_client=outbound_client())
    rendered = render_prompt(DIRECT, PromptItem("hi"), schema)
    with pytest.raises(LLMRequestError, match="refused by the SSRF guard.*non-public address 169.254.169.254"):
        guarded_complete(client, rendered, 8)


def test_templates_are_versioned_by_content_and_checked(llm_project: LLMProject, lead) -> None:
    from annotation.llm.services import LLMSetupError, llm_template_preview, llm_template_save

    project = llm_project.project
    first = llm_template_save(project=project, user=lead, name="cotr", kind="cotr")
    assert first.version == 1 and first.translate
    assert llm_template_save(project=project, user=lead, name="cotr", kind="cotr").pk == first.pk  # same content
    edited = llm_template_save(project=project, user=lead, name="cotr", kind="cotr",
                               user_text=first.user.replace("You label", "Please label"))
    assert edited.version == 2 and edited.content_hash != first.content_hash
    with pytest.raises(LLMSetupError, match="unknown placeholders"):
        llm_template_save(project=project, user=lead, name="bad", kind="direct", user_text="Label $text for $who")
    with pytest.raises(LLMSetupError, match="examples"):
        llm_template_save(project=project, user=lead, name="fs", kind="few_shot")
    previews = llm_template_preview(template=edited)
    assert len(previews) == 5 and "Please label" in previews[0]["prompt"]
    assert llm_project.utterances[0].text in previews[0]["prompt"] and '"enum"' in previews[0]["prompt"]


def test_few_shot_examples_come_from_human_gold_in_train(llm_project: LLMProject, lead) -> None:
    from django.utils import timezone

    from annotation.llm.services import LLMSetupError, llm_template_preview, llm_template_save
    from annotation.models import AggregatedLabel

    project = llm_project.project
    few = llm_template_save(project=project, user=lead, name="fs", kind="few_shot", examples_count=2)
    with pytest.raises(LLMSetupError, match="has 0"):
        llm_template_preview(template=few)
    for utterance in llm_project.utterances[:8]:  # train and dev; only train may give examples
        AggregatedLabel.objects.create(project=project, schema_version=project.schema_version, utterance=utterance,
                                       question_key="emotion", value=llm_project.truth[utterance.pk], method="majority",
                                       n_ratings=2, computed_at=timezone.now())
    prompt = llm_template_preview(template=few, utterance_ids=[llm_project.utterances[11].pk])[0]["prompt"]
    assert "Example 2" in prompt and "Example 3" not in prompt
    assert llm_project.utterances[0].text in prompt and llm_project.utterances[7].text not in prompt


def test_combining_two_sources_by_intersection_and_union(llm_project: LLMProject, lead, allow_loopback) -> None:
    from annotation.llm.services import LLMSetupError, llm_synthetic_publish, llm_template_save
    from annotation.models import Annotation, LLMLabel, Origin

    project = llm_project.project
    first = _register(project, lead, "http://127.0.0.1:8080/v1", name="a")
    second = _register(project, lead, "http://127.0.0.1:8081/v1", name="b", model="other")
    cotr = llm_template_save(project=project, user=lead, name="cotr", kind="cotr")
    u = llm_project.utterances
    for endpoint, answers in ((first, ["joy", "anger", "neutral"]), (second, ["joy", "sadness", None])):
        for utterance, label in zip(u, answers):
            LLMLabel.objects.create(utterance=utterance, endpoint=endpoint, template=cotr, model=endpoint.model,
                                    labels=None if label is None else {"emotion": label})
    combined = llm_synthetic_publish(project=project, user=lead, sources=[(first.pk, cotr.pk), (second.pk, cotr.pk)],
                                     method="intersection")
    made = {a.utterance_id: a.value for a in Annotation.objects.filter(project=project, origin=Origin.LLM)}
    assert made == {u[0].pk: {"emotion": "joy"}}  # they disagree on u1; b failed u2
    assert combined.model_version.startswith("llm:intersection(a/gemma3-270m@cotr v1 + b/other@cotr v1)")
    assert combined.counts == {"items": 3, "labelled": 1, "no_label": 2}
    llm_synthetic_publish(project=project, user=lead, sources=[(first.pk, cotr.pk)], method="single")
    assert Annotation.objects.filter(project=project, origin=Origin.LLM).count() == 3  # replaced, not added
    with pytest.raises(LLMSetupError, match="two or more"):
        llm_synthetic_publish(project=project, user=lead, sources=[(first.pk, cotr.pk)], method="union")


@pytest.mark.slow
def test_a_run_labels_then_the_export_puts_synthetic_labels_in_train_only(
        llm_project: LLMProject, lead, llama_server: LlamaServer, allow_loopback,
        django_capture_on_commit_callbacks) -> None:
    from unittest import mock

    from annotation.export.services import export_job_create, export_run
    from annotation.llm.services import (
        llm_endpoint_test,
        llm_run_create,
        llm_run_execute,
        llm_synthetic_publish,
        llm_template_preview,
        llm_template_save,
    )
    from annotation.models import LLMLabel
    from jobs.models import JobStatus

    project = llm_project.project
    endpoint = _register(project, lead, llama_server.base_url, model=llama_server.model, api_key=llama_server.api_key,
                         structured_output="json_object", timeout_s=300, max_tokens=160, max_concurrency=2,
                         price_input_per_1k=Decimal("0.1"))
    tested = llm_endpoint_test(endpoint=endpoint)
    assert tested["ok"] and tested["labels"]["emotion"] in LABELS and tested["translation"], tested
    direct = llm_template_save(project=project, user=lead, name="direct", kind="direct")
    answered = llm_template_preview(template=direct, endpoint=endpoint, utterance_ids=[llm_project.utterances[0].pk])
    assert answered[0]["answer"]["labels"]["emotion"] in LABELS
    assert not LLMLabel.objects.exists()  # previews and tests store nothing

    with mock.patch("jobs.dispatch.task_send"), django_capture_on_commit_callbacks(execute=True):
        run = llm_run_create(project=project, user=lead, endpoint=endpoint, template=direct, selection={})
    llm_run_execute(job_id=run.job_id)
    run.job.refresh_from_db()
    assert run.job.status == JobStatus.SUCCEEDED, run.job.message
    assert LLMLabel.objects.filter(run=run).count() == 12 and Decimal(run.job.counts["cost"]) > 0
    combination = llm_synthetic_publish(project=project, user=lead, sources=[(endpoint.pk, direct.pk)])

    with mock.patch("jobs.dispatch.task_send"), django_capture_on_commit_callbacks(execute=True):
        job = export_job_create(created_by=lead, project=project,
                                options={"formats": ["jsonl"], "heldout_min_annotations": 1, "bootstrap_resamples": 0})
    export_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.message
    frames = {}
    for split in ("train", "dev", "test"):
        entry = next((f for f in job.result["files"] if f["name"] == f"jsonl/{split}.jsonl"), None)
        frames[split] = (pd.read_json(Path(default_storage.path(entry["storage_name"])), lines=True)
                         if entry and entry.get("rows") else pd.DataFrame(columns=["label_origin", "utterance_id"]))
    # Synthetic gold where no human gold is: the unlabelled items, and those whose two raters tied.
    synthetic = set(frames["train"].loc[frames["train"]["label_origin"] == "llm", "utterance_id"])
    assert {u.pk for u in llm_project.utterances[10:]} <= synthetic
    for split in ("dev", "test"):
        assert set(frames[split]["label_origin"]) <= {"human"}
    assert len(frames["dev"]) + len(frames["test"]) > 0
    card = Path(default_storage.path(job.result["card"]["storage_name"])).read_text()
    assert f"Synthetic (LLM-made) gold labels: train {len(synthetic)} of {len(frames['train'])}, dev 0, test 0" in card
    assert f"| {combination.model_version} | {len(synthetic)} | 0 | 0 |" in card
