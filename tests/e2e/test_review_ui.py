"""A reviewer settles a tie in the browser and the gold export shows the decision: the review queue names the tie,
the side-by-side view shows both annotations, the decision form (the schema's own widgets, "None of these"
included) saves, the item leaves the queue, and the reviewer downloads an export whose row carries the adjudicated
label with label_source "adjudicated". Also: a lead chooses the multi-label gold rule on the dashboard.

The live server runs in this process: the export job is run here (the Celery task only calls export_run)."""

from __future__ import annotations

import csv
import hashlib
import io
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import expect

from annotation.distribution.services import annotation_submit, next_item_reserve
from annotation.export.services import export_job_create, export_run
from annotation.models import Adjudication, ProjectQualityPolicy
from annotation.quality.selectors import quality_source_for_project
from annotation.quality.services import agreement_report_compute
from annotation.services import label_schema_create, membership_set, project_create
from corpora.languages import language_get_or_create
from corpora.models import Corpus, Utterance
from jobs.models import JobStatus
from tests.e2e.conftest import screenshot_path, sign_in

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

QUESTIONS = [
    {"key": "emotion", "type": "single_choice", "title": "Emotion", "labels": ["joy", "anger", "sadness"]},
    {"key": "emotions", "type": "multi_label", "title": "All emotions", "labels": ["joy", "anger", "sadness"]},
]


@pytest.fixture
def tied_project(lead, reviewer, annotator, make_user):  # type: ignore[no-untyped-def]
    """Two annotators through the distribution service: they agree on one item and split on the other."""
    corpus = Corpus.objects.create(name="Chats", slug="chats", license="CC-BY-4.0", created_by=lead)
    texts = ["What a wonderful surprise!", "I cannot believe you did that."]
    for text in texts:
        Utterance.objects.create(corpus=corpus, text=text, language=language_get_or_create("en"),
                                 content_hash=hashlib.blake2b(text.encode(), digest_size=16).hexdigest())
    version = label_schema_create(name="Chat emotions", slug="chat-emotions", questions=QUESTIONS)
    project = project_create(name="Chat study", corpus=corpus, schema_version=version, created_by=lead, overlap=2)
    membership_set(project=project, user=reviewer, role="reviewer")
    second = make_user("bela_annotator")
    answers = {
        annotator: {texts[0]: {"emotion": "joy", "emotions": ["joy"]}, texts[1]: {"emotion": "anger", "emotions": ["anger"]}},
        second: {texts[0]: {"emotion": "joy", "emotions": ["joy"]}, texts[1]: {"emotion": "sadness", "emotions": []}},
    }
    for person, given in answers.items():
        membership_set(project=project, user=person, role="annotator")
        for _ in texts:
            held = next_item_reserve(project=project, user=person)
            assert held is not None
            annotation_submit(project=project, user=person, utterance_id=held.item.utterance_id, client_id=uuid.uuid4(),
                              value=given[Utterance.objects.get(pk=held.item.utterance_id).text])
    agreement_report_compute(source=quality_source_for_project(project), n_resamples=0)
    return project, Utterance.objects.get(text=texts[1])


def test_reviewer_adjudicates_a_tie_and_the_export_shows_it(page, browser_log, lead, reviewer, tied_project, settings,
                                                            tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = str(tmp_path / "media")
    project, tied = tied_project
    from jobs import dispatch

    monkeypatch.setattr(dispatch, "task_send", lambda task, job_id: None)
    sign_in(page, reviewer.username)
    page.goto(f"/projects/{project.pk}/review/")
    queue = page.locator("#review-queue")
    entry = queue.locator(f'button[data-utterance="{tied.pk}"]')
    expect(entry).to_be_visible()
    expect(entry.locator('[data-reason="tie"]')).to_have_text("tie")
    expect(queue.locator("button.review-entry")).to_have_count(1)  # the agreed item is not there
    entry.click()

    # Side by side: both annotations (names hidden from reviewers), the tie left open by the aggregation.
    annotations = page.locator("table.review-annotations tbody tr")
    expect(annotations).to_have_count(2)
    expect(annotations.nth(0)).to_contain_text("Annotator A")
    expect(annotations.nth(1)).to_contain_text("none of these")  # bela said "no emotion" to the multi-label question
    expect(page.locator("table.review-annotations tfoot")).to_contain_text("tie, open")

    decision = page.locator("#review-decision")
    decision.locator('section[data-question="emotion"] button[data-label="anger"]').click()
    decision.locator('section[data-question="emotions"] button[data-none]').click()  # "None of these"
    decision.locator('textarea[name="note"]').fill("Sarcastic reproach: anger, no felt emotion.")
    page.screenshot(path=str(screenshot_path(tmp_path, "review-adjudicate.png")), full_page=True)
    decision.locator('button[data-action="adjudicate"]').click()
    expect(page.locator(".review-status")).to_contain_text(f"Decision for item {tied.pk} saved.")
    expect(page.locator("#review-queue")).to_have_text("Nothing to review.")
    adjudication = Adjudication.objects.get(project=project, utterance=tied)
    assert adjudication.value == {"emotion": "anger", "emotions": []} and adjudication.decided_by == reviewer

    # A lead exports; the reviewer reads the export on the manage page and downloads it.
    job = export_job_create(created_by=lead, project=project, options={
        "formats": ["csv"], "splits": {"train": 1, "dev": 0, "test": 0}})
    export_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.message
    page.goto(f"/projects/{project.pk}/manage/")
    panel = page.locator("#project-exports")
    expect(panel.locator("#export-jobs li.export-job").first).to_have_attribute("data-status", "succeeded")
    expect(panel.locator("#export-form")).to_have_count(0)  # reviewers do not start exports
    expect(panel.locator("[data-sources]").first).to_contain_text("adjudicated 1")
    with page.expect_download() as download_info:
        panel.locator('a[data-file="csv/train.csv"]').click()
    rows = {row["utterance_id"]: row for row in csv.DictReader(io.StringIO(Path(download_info.value.path()).read_text()))}
    decided = rows[str(tied.pk)]
    assert (decided["emotion"], decided["emotions"], decided["label_source"]) == ("anger", "[]", "adjudicated")
    assert decided["n_human_annotations"] == "2"
    agreed = next(row for uid, row in rows.items() if uid != str(tied.pk))
    assert (agreed["emotion"], agreed["label_source"]) == ("joy", "aggregated")

    assert not browser_log.errors, browser_log.errors
    assert not browser_log.csp_violations(), browser_log.csp_violations()


def test_lead_chooses_the_multi_label_gold_rule(page, browser_log, lead, tied_project):  # type: ignore[no-untyped-def]
    project, _ = tied_project
    sign_in(page, lead.username)
    page.goto(f"/projects/{project.pk}/dashboard/")
    form = page.locator("#quality-policy")
    expect(form).to_be_visible()
    form.locator('select[name="multi_label_rule"]').select_option("mean_intensity")
    form.locator('input[name="intensity_threshold"]').fill("0.5")
    form.locator('select[name="tie_policy"]').select_option("random")
    form.locator('button[data-action="save-policy"]').click()
    expect(form.locator('select[name="multi_label_rule"]')).to_have_value("mean_intensity")
    page.wait_for_function(
        "() => !document.querySelector('[data-action=save-policy]')?.disabled")
    policy = ProjectQualityPolicy.objects.get(project=project)
    assert (policy.multi_label_rule, policy.intensity_threshold, policy.tie_policy) == ("mean_intensity", 0.5, "random")
    expect(page.locator('a[data-link="review"]')).to_have_attribute("href", f"/projects/{project.pk}/review/")
    # Reviewers read the rule but cannot change it.
    assert not browser_log.errors, browser_log.errors


def test_lead_reads_the_agreement_of_a_corpus_imported_ratings(page, browser_log, lead):  # type: ignore[no-untyped-def]
    from annotation.services import annotation_create

    corpus = Corpus.objects.create(name="BRIGHTER-like", slug="brighter-like", license="CC-BY-4.0", created_by=lead)
    version = label_schema_create(name="Graded emotions", slug="graded-emotions", questions=[
        {"key": "emotions", "type": "multi_label", "labels": ["anger", "joy"], "intensity": True}])
    levels = [(2, 0), (0, 3), (0, 0), (1, 1), (3, 0), (0, 2)]
    for i, (anger, joy) in enumerate(levels):
        for code in ("mr", "hi"):
            text = f"{code} line {i}"
            utterance = Utterance.objects.create(corpus=corpus, text=text, language=language_get_or_create(code),
                                                 content_hash=hashlib.blake2b(text.encode(), digest_size=16).hexdigest())
            for rater, shift in (("a1", 0), ("a2", 1), ("a3", 0)):
                value = {"anger": min(3, anger + shift * (i % 2)), "joy": joy if rater != "a3" or i != 1 else None}
                annotation_create(utterance=utterance, schema_version=version, external_rater=f"{code}:{rater}",
                                  value={"emotions": value})
    sign_in(page, lead.username)
    # The corpus the lead made is listed on "My projects", with its ratings' agreement one click away.
    page.locator(f'#my-corpora li[data-corpus="{corpus.pk}"] a').click()
    page.wait_for_url(f"**/corpora/{corpus.pk}/quality/")
    expect(page.locator("h1")).to_have_text("BRIGHTER-like: imported ratings")
    expect(page.locator("#dash-version option")).to_have_text(["Graded emotions v1 (36 ratings)"])
    expect(page.locator("#alpha-headline .alpha-value")).not_to_have_text("—")
    expect(page.locator("#alpha-headline")).to_contain_text("MASI")
    table = page.locator("#label-language table")
    expect(table.locator("thead th")).to_have_text(["Label", "hi", "mr"])
    expect(table.locator("tbody tr")).to_have_count(2)
    expect(page.locator("#progress, #quality-policy")).to_have_count(0)  # a corpus has no progress or policy
    assert not browser_log.errors, browser_log.errors
    assert not browser_log.csp_violations(), browser_log.csp_violations()


def test_lead_imports_a_per_rater_corpus_in_one_browser_upload(page, browser_log, lead, settings, tmp_path,
                                                               monkeypatch):  # type: ignore[no-untyped-def]
    from corpora.importing.services import import_run
    from jobs import dispatch
    from tests.corpora.test_per_rater_import import long_per_rater_file

    settings.MEDIA_ROOT = str(tmp_path / "media")
    queued: list[int] = []
    monkeypatch.setattr(dispatch, "task_send", lambda task, job_id: queued.append(job_id))
    data, levels = long_per_rater_file(seed=5, items=12)
    csv_path = tmp_path / "mar.csv"
    csv_path.write_text(data, encoding="utf-8")

    sign_in(page, lead.username)
    form = page.locator("#import-form")
    form.locator('input[name="name"]').fill("BRIGHTER Marathi")
    form.locator('input[name="license"]').fill("CC-BY-4.0")
    form.locator('input[name="files"]').set_input_files(str(csv_path))
    form.locator('select[name="preset"]').select_option("brighter_raters")
    form.locator('input[name="intensity"]').check()
    form.locator('button[data-action="import"]').click()
    status = page.locator(".import-status")
    expect(status).to_have_attribute("data-status", "pending")
    assert len(queued) == 1
    import_run(job_id=queued[0])
    expect(status).to_have_attribute("data-status", "succeeded", timeout=15_000)
    expect(status.locator('[data-count="created"]')).to_have_text("12 utterances")
    expect(status.locator('[data-count="annotations"]')).to_have_text(f"{len(levels)} labels")
    expect(status.locator('[data-count="blank_cells"]')).to_contain_text("blank cells")
    status.locator('a[data-link="ratings"]').click()
    corpus = Corpus.objects.get(name="BRIGHTER Marathi")
    page.wait_for_url(f"**/corpora/{corpus.pk}/quality/")
    expect(page.locator("#alpha-headline")).to_contain_text("MASI")
    expect(page.locator("#alpha-headline .alpha-value")).not_to_have_text("—")
    assert not browser_log.errors, browser_log.errors
    assert not browser_log.csp_violations(), browser_log.csp_violations()
