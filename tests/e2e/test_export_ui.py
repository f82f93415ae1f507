"""The lead's "Export gold splits" panel end to end: a refused option shows next to its field, an export starts,
its progress is polled until the files appear, a download link serves the stored bytes, the panel speaks Hindi,
and reviewers read it without the form.

The live server runs in this process: enqueueing records the job id, and the test runs the job here while the page
polls (the Celery task only calls export_run)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from playwright.sync_api import expect

from annotation.export.services import export_run
from annotation.models import Role
from annotation.services import membership_set
from jobs.models import Job, JobStatus
from tests.e2e.conftest import screenshot_path, sign_in
from tests.export.conftest import build_meld_like

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_lead_exports_gold_splits_and_downloads_a_file(page, browser_log, lead, reviewer, settings, tmp_path,
                                                      monkeypatch):  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = str(tmp_path / "media")
    meld = build_meld_like(lead=lead, shows=4, conversations_per_show=3)
    membership_set(project=meld.project, user=reviewer, role=Role.REVIEWER)
    from jobs import dispatch

    queued: list[int] = []
    monkeypatch.setattr(dispatch, "task_send", lambda task, job_id: queued.append(job_id))

    sign_in(page, lead.username)
    page.goto(f"/projects/{meld.project.pk}/manage/")
    panel = page.locator("#project-exports")
    expect(panel).to_be_visible()
    expect(panel.locator("#exports-title")).to_have_text("Export gold splits")
    expect(panel.locator("#export-jobs")).to_have_text("No export yet.")

    # A refused option: the API's reason appears next to the ratios, and no job is made.
    form = panel.locator("#export-form")
    form.locator('input[name="ratio-train"]').fill("0")
    form.locator("button[type=submit]").click()
    expect(form.locator('[data-field="splits"] .field-error')).to_contain_text("train ratio must be positive")
    assert not queued and not Job.objects.exists()

    # Start one: CSV only, 70/15/15, seed 7, conversations kept whole.
    form.locator('input[name="ratio-train"]').fill("0.7")
    form.locator('input[name="ratio-dev"]').fill("0.15")
    form.locator('input[name="ratio-test"]').fill("0.15")
    form.locator('input[name="formats"][value="parquet"]').uncheck()
    form.locator('input[name="formats"][value="jsonl"]').uncheck()
    form.locator('input[name="seed"]').fill("7")
    page.select_option('select[name="grouping"]', "conversation")
    form.locator("button[type=submit]").click()
    job_card = panel.locator("#export-jobs li.export-job").first
    expect(job_card).to_have_attribute("data-status", "pending")
    expect(job_card).to_contain_text("queued")
    assert len(queued) == 1
    job = Job.objects.get(pk=queued[0])
    assert job.params["options"]["formats"] == ["csv"] and job.params["options"]["seed"] == 7
    assert job.params["options"]["grouping"] == "conversation"

    export_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.message

    # The page polls the job until it is done: split sizes and the download links appear without a reload.
    expect(job_card).to_have_attribute("data-status", "succeeded", timeout=15_000)
    expect(job_card).to_contain_text(f"{job.result['splits']['train']['utterances']} utterances")
    links = job_card.locator("a[data-file]")
    expect(links).to_have_count(4)  # the data card and one CSV per split
    link = job_card.locator('a[data-file="csv/dev.csv"]')
    href = link.get_attribute("href") or ""
    assert href.endswith(f"/api/projects/{meld.project.pk}/exports/{job.pk}/files/csv/dev.csv")
    with page.expect_download() as download_info:
        link.click()
    download = download_info.value
    assert download.suggested_filename == f"sentio-export-{job.pk}-csv-dev.csv"
    stored = next(f["storage_name"] for f in job.result["files"] if f["name"] == "csv/dev.csv")
    assert Path(download.path()).read_bytes() == Path(default_storage.path(stored)).read_bytes()
    page.screenshot(path=str(screenshot_path(tmp_path, "export-panel.png")), full_page=True)

    # Or every file at once: one zip, reached with the keyboard like any link.
    archive_link = job_card.locator(f'a[data-archive="{job.pk}"]')
    expect(archive_link).to_have_text("Download all 4 files (.zip)")
    archive_link.focus()
    with page.expect_download() as archive_info:
        page.keyboard.press("Enter")
    assert archive_info.value.suggested_filename == f"sentio-export-{job.pk}.zip"
    with zipfile.ZipFile(archive_info.value.path()) as archive:
        assert archive.read(f"sentio-export-{job.pk}/csv/dev.csv") == Path(default_storage.path(stored)).read_bytes()
        assert len(archive.namelist()) == 4

    # The panel follows the UI language.
    page.select_option("#ui-language", "hi")
    expect(panel.locator("#exports-title")).to_have_text("गोल्ड स्प्लिट निर्यात करें")
    expect(job_card.locator(".export-status")).to_have_text("पूरा हुआ")
    expect(archive_link).to_have_text("सभी 4 फ़ाइलें डाउनलोड करें (.zip)")

    assert not browser_log.errors, browser_log.errors
    assert not browser_log.csp_violations(), browser_log.csp_violations()


def test_reviewers_read_the_export_panel_without_the_form(page, browser_log, lead, reviewer, annotator, settings,
                                                         tmp_path):  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = str(tmp_path / "media")
    meld = build_meld_like(lead=lead, shows=2, conversations_per_show=2)
    membership_set(project=meld.project, user=reviewer, role=Role.REVIEWER)
    membership_set(project=meld.project, user=annotator, role=Role.ANNOTATOR)

    sign_in(page, reviewer.username)
    page.goto(f"/projects/{meld.project.pk}/manage/")
    expect(page.locator("#project-exports #exports-title")).to_have_text("Export gold splits")
    expect(page.locator("#export-jobs")).to_have_text("No export yet.")
    expect(page.locator("#export-form")).to_have_count(0)
    assert not browser_log.errors, browser_log.errors

    page.context.clear_cookies()
    sign_in(page, annotator.username)
    page.goto(f"/projects/{meld.project.pk}/manage/")
    page.wait_for_load_state("networkidle")
    expect(page.locator("#project-exports")).to_be_hidden()
