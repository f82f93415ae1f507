"""The lead's "LLM labelling" panel in Chromium against the real llama.cpp server (Gemma 3 270M): register an endpoint
(the key never comes back), test it with one item, save and preview a CoTR template, start a run and watch it
finish, publish synthetic labels, and read the evaluation — also on the dashboard, and in Hindi.

The live server runs in this process: enqueueing records the job id and the test runs the job here while the page
polls (the Celery task only calls llm_run_execute; tests/llm/test_llm_worker.py runs it on a real worker)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import screenshot_path, sign_in
from tests.fixtures.llm_server import LlamaServer

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_lead_registers_tests_previews_runs_publishes_and_reads_the_evaluation(
        page, browser_log, llm_project, lead, llama_server: LlamaServer, allow_loopback, monkeypatch,
        tmp_path):  # type: ignore[no-untyped-def]
    from annotation.llm.services import llm_run_execute
    from annotation.models import Annotation, LLMEndpoint, LLMRun, Origin
    from jobs import dispatch
    from jobs.models import JobStatus

    queued: list[int] = []
    monkeypatch.setattr(dispatch, "task_send", lambda task, job_id: queued.append(job_id))
    project = llm_project.project
    sign_in(page, lead.username)
    page.goto(f"/projects/{project.pk}/manage/")
    panel = page.locator("#project-llm")
    expect(panel.locator("#llm-title")).to_have_text("LLM labelling")

    # Register: a metadata address is refused with the guard's reason; the loopback server (allowed here) is taken.
    form = panel.locator("#llm-endpoint-form")
    form.locator('input[name="name"]').fill("gemma")
    form.locator('input[name="base_url"]').fill("http://169.254.169.254/v1")
    form.locator('input[name="model"]').fill(llama_server.model)
    form.locator('input[name="api_key"]').fill(llama_server.api_key)
    form.locator('select[name="structured_output"]').select_option("json_object")
    form.locator('input[name="max_concurrency"]').fill("1")
    form.locator("button[type=submit]").click()
    expect(form.locator(".llm-status")).to_contain_text("non-public address")
    form.locator('input[name="base_url"]').fill(llama_server.base_url)
    form.locator("button[type=submit]").click()
    endpoints = panel.locator("#llm-endpoints")
    expect(endpoints).to_contain_text("key stored")
    assert llama_server.api_key not in page.content()
    LLMEndpoint.objects.filter(project=project).update(timeout_s=300, max_tokens=160)

    # Test with one item: the answer, translation, tokens and cost come back.
    endpoints.locator("button.llm-test").click()
    expect(endpoints.locator(".llm-test-result")).to_contain_text("tokens", timeout=300_000)

    # Save the CoTR template (prefilled with the built-in text), preview it on 5 items, keyboard only for the kind.
    template_form = panel.locator("#llm-template-form")
    template_form.locator('select[name="kind"]').focus()
    page.keyboard.press("Home")
    assert "translate" in template_form.locator('textarea[name="user"]').input_value()
    template_form.locator("button[type=submit]").click()
    expect(template_form.locator(".llm-status")).to_contain_text("Saved cotr version 1")
    preview = panel.locator("#llm-preview")
    preview.locator("button").click()
    expect(preview.locator("details.llm-preview-item")).to_have_count(5)
    preview.locator("details.llm-preview-item summary").first.click()
    expect(preview.locator("details.llm-preview-item pre").first).to_contain_text(llm_project.utterances[0].text)

    # Start a run over the test split; the page polls it to "done" with tokens and cost.
    run_form = panel.locator("#llm-run-form")
    run_form.locator('select[name="split"]').select_option("test")
    run_form.locator("button[type=submit]").click()
    run_item = panel.locator("#llm-runs li.llm-run").first
    expect(run_item).to_have_attribute("data-status", "pending")
    assert len(queued) == 1
    llm_run_execute(job_id=queued[0])
    run = LLMRun.objects.get(job_id=queued[0])
    run.job.refresh_from_db()
    assert run.job.status == JobStatus.SUCCEEDED, run.job.message
    expect(run_item).to_have_attribute("data-status", "succeeded", timeout=15_000)
    expect(run_item.locator(".llm-run-counts")).to_contain_text("4 of 4 items")

    # Publish the run's answers as synthetic labels, then read the evaluation.
    combine = panel.locator("#llm-combine-form")
    combine.locator('input[name="source"]').first.check()
    combine.locator("button[type=submit]").click()
    expect(combine.locator(".llm-status")).to_contain_text("synthetic labels published")
    assert Annotation.objects.filter(project=project, origin=Origin.LLM).count() == 4
    evaluation = panel.locator(".llm-evaluation table").first
    expect(evaluation).to_contain_text("gemma · cotr v1")
    expect(evaluation).to_contain_text("Chain-of-Translation")
    page.screenshot(path=str(screenshot_path(tmp_path, "llm-panel.png")), full_page=True)

    page.select_option("#ui-language", "hi")
    expect(panel.locator("#llm-title")).to_have_text("LLM से लेबलिंग")

    page.goto(f"/projects/{project.pk}/dashboard/")
    expect(page.locator("#llm-evaluation")).to_contain_text("gemma · cotr v1", timeout=30_000)
    assert not browser_log.errors, browser_log.errors
    assert not browser_log.csp_violations(), browser_log.csp_violations()
