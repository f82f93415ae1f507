"""LLM labelling jobs run by a real Celery worker on Redis against the real llama.cpp server (Gemma 3 270M).

Gemma 270M's labels are poor; these tests hold the machinery: results cached per (utterance, endpoint, template
version) with their provenance, tokens and cost counted, a killed worker's job resumed without asking the server
again for what it stored.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

from jobs.models import Job, JobStatus
from tests.fixtures.llm_server import LlamaServer
from tests.llm.conftest import LABELS, RecordingProxy
from tests.workers.conftest import WorkerProcess, wait_for_job, wait_until

pytestmark = [pytest.mark.postgres("the worker shares the test database"), pytest.mark.slow]


def _endpoint(project, lead, url: str, server: LlamaServer, **extra):  # type: ignore[no-untyped-def]
    from annotation.llm.services import llm_endpoint_register

    return llm_endpoint_register(project=project, user=lead, name=extra.pop("name", "gemma"), base_url=url,
                                 model=server.model, api_key=server.api_key, structured_output="json_object",
                                 price_input_per_1k=Decimal("0.10"), price_output_per_1k=Decimal("0.40"),
                                 timeout_s=300, max_tokens=160, **extra)


def test_llm_job_runs_on_a_real_worker_with_provenance_and_a_cache(celery_env, tmp_path, llm_project, lead,
                                                                     llama_server, allow_loopback):
    from annotation.llm.services import llm_run_create, llm_template_save
    from annotation.models import LLMLabel

    env = {**celery_env, "SENTIO_OUTBOUND_ALLOWED_HOSTS": "127.0.0.1"}
    project = llm_project.project
    endpoint = _endpoint(project, lead, llama_server.base_url, llama_server, max_concurrency=2)
    cotr = llm_template_save(project=project, user=lead, name="cotr", kind="cotr")
    worker = WorkerProcess(env, tmp_path / "worker.log", queues="llm")
    worker.start()
    try:
        with transaction.atomic():
            first = llm_run_create(project=project, user=lead, endpoint=endpoint, template=cotr,
                                   selection={"split": "test"})
        done = wait_for_job(first.job_id, worker)
        assert done.status == JobStatus.SUCCEEDED, done.message
        labels = LLMLabel.objects.filter(run=first)
        assert labels.count() == 4 and done.progress_done == done.progress_total == 4
        for label in labels:
            assert label.labels["emotion"] in LABELS and label.translation and label.raw.startswith("{")
            assert label.model == llama_server.model and label.prompt_tokens > 0 and label.completion_tokens > 0
            assert label.cost == (label.prompt_tokens * Decimal("0.10") + label.completion_tokens * Decimal("0.40")) / 1000
        assert done.counts["labelled"] == 4 and done.counts["prompt_tokens"] == sum(x.prompt_tokens for x in labels)
        assert Decimal(done.counts["cost"]) == sum(x.cost for x in labels) > 0

        # The same endpoint and template version on a wider selection asks only for the new items.
        with transaction.atomic():
            second = llm_run_create(project=project, user=lead, endpoint=endpoint, template=cotr,
                                    selection={"split": "test", "unlabelled": False, "limit": 4})
            third = llm_run_create(project=project, user=lead, endpoint=endpoint, template=cotr,
                                   selection={"unlabelled": True})
        assert wait_for_job(second.job_id, worker).counts["cached"] == 4
        finished = wait_for_job(third.job_id, worker)
    finally:
        worker.stop()
    assert LLMLabel.objects.filter(run=second).count() == 0
    assert finished.status == JobStatus.SUCCEEDED and finished.counts["cached"] == 2  # the two test items unlabelled
    assert LLMLabel.objects.filter(endpoint=endpoint, template=cotr).count() == 4


def test_a_killed_worker_s_job_resumes_without_asking_again_for_what_it_stored(celery_env, tmp_path, llm_project,
                                                                                 lead, llama_server,
                                                                                 recording_proxy: RecordingProxy,
                                                                                 allow_loopback):
    from annotation.llm.services import llm_run_create, llm_template_save
    from annotation.models import LLMLabel
    from jobs.services import jobs_reap_stuck

    env = {**celery_env, "SENTIO_OUTBOUND_ALLOWED_HOSTS": "127.0.0.1", "SENTIO_JOB_STALE_AFTER_SECONDS": "10"}
    project = llm_project.project
    endpoint = _endpoint(project, lead, recording_proxy.base_url, llama_server, max_concurrency=1)
    direct = llm_template_save(project=project, user=lead, name="direct", kind="direct")
    texts = [u.text for u in llm_project.utterances]
    with transaction.atomic():
        run = llm_run_create(project=project, user=lead, endpoint=endpoint, template=direct, selection={})
    worker = WorkerProcess(env, tmp_path / "worker.log", queues="llm")
    worker.start()
    stored = LLMLabel.objects.filter(run=run)
    wait_until(lambda: stored.count() >= 3, describe=lambda: f"{stored.count()} labels stored", processes=[worker])
    worker.kill()
    before_kill = {label.utterance.text: (label.pk, label.raw) for label in stored.select_related("utterance")}
    asked_before = len(recording_proxy.seen)
    assert Job.objects.get(pk=run.job_id).status == JobStatus.RUNNING

    Job.objects.filter(pk=run.job_id).update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    with transaction.atomic():
        reaped = jobs_reap_stuck(stale_after=timedelta(seconds=10))
    assert run.job_id in reaped.requeued
    second = WorkerProcess(env, tmp_path / "worker2.log", queues="llm")
    second.start()
    try:
        done = wait_for_job(run.job_id, second)
    finally:
        second.stop()
    assert done.status == JobStatus.SUCCEEDED and done.attempts == 2, done.message
    asked_after = recording_proxy.asked_texts(texts, since=asked_before)
    assert not set(asked_after) & set(before_kill), "a stored answer was asked for again"
    assert sorted(before_kill) + sorted(asked_after) and set(before_kill) | set(asked_after) == set(texts)
    assert done.counts["cached"] == len(before_kill) and done.counts["labelled"] + done.counts["failed"] == len(texts)
    after = {label.utterance.text: (label.pk, label.raw) for label in LLMLabel.objects.filter(
        endpoint=endpoint, template=direct).select_related("utterance")}
    assert all(after[text] == kept for text, kept in before_kill.items())  # untouched, not made again
    assert len(after) == len(texts)
