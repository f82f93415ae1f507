"""The lead dashboard end to end: progress, alpha with its interval, the pairwise heatmap, label distribution per
language, the table views, recomputing through the agreement job, access for annotators and outsiders, and CSP."""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from playwright.sync_api import expect

from annotation.distribution.services import annotation_submit, next_item_reserve
from annotation.models import Annotation, Origin, Project
from annotation.quality.selectors import agreement_report_find, quality_source_for_project
from annotation.services import annotation_create, label_schema_create, membership_set, project_create
from corpora.languages import language_get_or_create
from corpora.models import Corpus, Utterance
from jobs.models import Job, JobKind, JobStatus
from tests.e2e.conftest import screenshot_path, sign_in

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

EMOTIONS = ["joy", "sadness", "anger", "fear", "neutral"]
QUESTIONS = [
    {"key": "emotion", "type": "single_choice", "title": "Emotion", "required": True, "labels": EMOTIONS},
    {"key": "valence", "type": "numeric", "title": "Valence", "min": 1, "max": 5, "step": 0.5},
]
ITEMS = 18


def _answer(rng: np.random.Generator, truth: int, accuracy: float) -> dict[str, object]:
    emotion = EMOTIONS[truth] if rng.random() < accuracy else EMOTIONS[int(rng.integers(0, len(EMOTIONS)))]
    valence = float(np.clip(round((1 + truth + rng.normal(0, 0.5)) * 2) / 2, 1, 5))
    return {"emotion": emotion, "valence": valence}


@pytest.fixture
def dashboard_project(lead, reviewer, annotator, make_user) -> tuple[Project, list]:  # type: ignore[no-untyped-def]
    """18 items in English and Hindi, each labelled by three annotators through the distribution service, a model on
    half of them, and the annotations spread over two weeks."""
    corpus = Corpus.objects.create(name="Diaries", slug="diaries", license="CC-BY-4.0", created_by=lead)
    for i in range(ITEMS):
        code = "hi" if i % 3 == 0 else "en"
        text = f"मैं आज बहुत खुश हूँ {i}" if code == "hi" else f"Entry {i}: what a day it has been"
        Utterance.objects.create(
            corpus=corpus, text=text, language=language_get_or_create(code),
            content_hash=hashlib.blake2b(text.encode(), digest_size=16).hexdigest(),
        )
    version = label_schema_create(name="Diary emotions", slug="diary-emotions", questions=QUESTIONS)
    project = project_create(name="Diary study", corpus=corpus, schema_version=version, created_by=lead, overlap=3)
    membership_set(project=project, user=reviewer, role="reviewer")
    raters = [annotator, make_user("bilal_annotator"), make_user("chitra_annotator")]
    for rater in raters:
        membership_set(project=project, user=rater, role="annotator")
    rng = np.random.default_rng(3)
    truth = {u.pk: i % len(EMOTIONS) for i, u in enumerate(Utterance.objects.filter(corpus=corpus).order_by("id"))}
    for rater, accuracy in zip(raters, (0.9, 0.8, 0.6)):
        while (held := next_item_reserve(project=project, user=rater)) is not None:
            utterance_id = held.item.utterance_id
            annotation_submit(
                project=project, user=rater, utterance_id=utterance_id, client_id=uuid.uuid4(),
                value=_answer(rng, truth[utterance_id], accuracy), lead_time_ms=int(rng.integers(2000, 9000)),
            )
    for utterance_id in list(truth)[::2]:
        annotation_create(
            utterance=Utterance.objects.get(pk=utterance_id), schema_version=version, project=project,
            origin=Origin.MODEL, model_version="xlm-r-emotion@2", value=_answer(rng, truth[utterance_id], 0.75),
        )
    # The first half of the items were finished a week before the rest: two points on the time axis.
    start = datetime(2025, 3, 4, 10, tzinfo=UTC)
    early = list(truth)[: ITEMS // 2]
    Annotation.objects.filter(project=project, utterance_id__in=early).update(created_at=start)
    Annotation.objects.filter(project=project).exclude(utterance_id__in=early).update(created_at=start + timedelta(days=7))
    assert Annotation.objects.filter(project=project, origin=Origin.HUMAN).count() == ITEMS * 3
    return project, raters


def test_lead_reads_the_dashboard_and_recomputes(page, browser_log, dashboard_project, lead, monkeypatch, tmp_path):  # type: ignore[no-untyped-def]
    project, raters = dashboard_project
    queued: list[int] = []
    from jobs import dispatch

    # The live server runs in this process: record the job instead of sending it to a broker, then run it here.
    monkeypatch.setattr(dispatch, "task_send", lambda task, job_id: queued.append(job_id))

    sign_in(page, lead.username)
    page.locator(f'a[href="/projects/{project.pk}/dashboard/"]').click()
    page.wait_for_url(f"**/projects/{project.pk}/dashboard/")
    headline = page.locator("#alpha-headline")
    expect(headline).to_contain_text("Krippendorff")

    # The headline is the cached report's alpha and interval for the first question.
    report = agreement_report_find(quality_source_for_project(project))
    assert report is not None
    block = report.result["questions"][0]["perspectives"][0]
    alpha = block["alpha"]
    assert 0 < alpha["alpha"] < 1 and alpha["interval"][0] < alpha["alpha"] < alpha["interval"][1]
    expect(headline.locator(".alpha-value")).to_have_text(f"{alpha['alpha']:.3f}")
    low, high = alpha["interval"]
    expect(headline.locator(".alpha-interval")).to_contain_text(f"[{low:.3f}, {high:.3f}]")

    # Progress: every item complete, one bar per annotator.
    expect(page.locator(".stats").first).to_contain_text("100%")
    assert page.locator("#fig-progress-annotators g.bar").count() >= 3

    # Forest plots: one row per question, and the breakdown by language and label with intervals.
    expect(page.locator("#fig-questions g.forest-row")).to_have_count(2)
    breakdown = page.locator("#fig-breakdown g.forest-row")
    assert breakdown.count() == 1 + 2 + len(EMOTIONS)  # overall, en + hi, five labels
    assert "[" in (breakdown.first.get_attribute("aria-label") or "")

    # The pairwise heatmap: 3 x 3 cells, each pair's alpha in its tooltip, the diagonal empty.
    cells = page.locator("#fig-pairwise g.cell")
    expect(cells).to_have_count(9)
    names = [r.username for r in raters]
    pair = block["pairwise"]
    i, j = pair["raters"].index(f"user:{raters[0].pk}"), pair["raters"].index(f"user:{raters[1].pk}")
    cell = page.locator(f'#fig-pairwise g.cell[data-row="{i}"][data-column="{j}"]')
    assert f"α {pair['alpha'][i][j]:.3f}" in (cell.get_attribute("aria-label") or "")
    for name in names:
        expect(page.locator("#fig-pairwise svg")).to_contain_text(name)
    assert page.locator('#fig-pairwise g.cell[data-row="0"][data-column="0"] text').text_content() == "—"

    # Confusion between annotators and label distribution per language (stacked bars with a legend).
    assert page.locator("#fig-confusion g.cell").count() >= 4
    segments = page.locator("#fig-distribution g.segment")
    assert segments.count() >= 4
    expect(page.locator("#fig-distribution svg")).to_contain_text("joy")
    expect(page.locator("#fig-distribution svg")).to_contain_text("hi")
    hi_counts = next(row for row in block["label_distribution"]["languages"] if row["language"] == "hi")
    assert hi_counts["n_ratings"] == 6 * 3

    # Agreement over time: the two weeks.
    expect(page.locator("#fig-time g.point")).to_have_count(2)
    expect(page.locator("#fig-time svg")).to_contain_text("2025-03-03")

    # The model against humans.
    expect(page.locator("#models")).to_contain_text("xlm-r-emotion@2")
    expect(page.locator("#models")).to_contain_text("macro-F1")

    # The table view of the heatmap lists the three pairs; the chart comes back.
    toggle = page.locator("#fig-pairwise .table-toggle")
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#fig-pairwise table tbody tr")).to_have_count(3)
    assert page.locator("#fig-pairwise .chart-box").is_hidden()
    toggle.click()
    expect(page.locator("#fig-pairwise .chart-box svg")).to_be_visible()

    # Every chart is an accessible image with a title.
    for chart in page.locator("svg.chart").all():
        assert chart.get_attribute("role") == "img"
        assert (chart.locator("title").first.text_content() or "").strip()

    page.screenshot(path=str(screenshot_path(tmp_path, "dashboard.png")), full_page=True)

    # Recompute: the button asks for ?refresh=1, shows the queued job, and the page reloads once it has run.
    page.locator("[data-action=recompute]").click()
    expect(page.locator("[data-state=computing]")).to_be_visible()
    expect(page.locator("[data-action=recompute]")).to_be_disabled()
    assert len(queued) == 1
    job = Job.objects.get(pk=queued[0])
    assert job.kind == JobKind.AGREEMENT and job.project_id == project.pk
    from annotation.quality.services import agreement_job_run

    agreement_job_run(job_id=job.pk)
    assert Job.objects.get(pk=job.pk).status == JobStatus.SUCCEEDED
    expect(page.locator("[data-state=computing]")).to_have_count(0, timeout=10_000)
    expect(page.locator("[data-action=recompute]")).to_be_enabled()
    assert agreement_report_find(quality_source_for_project(project)).job_id == job.pk  # type: ignore[union-attr]

    # The Urdu UI: the page's strings come from the catalog, right to left.
    page.select_option("#ui-language", "ur")
    expect(page.locator("h1")).to_contain_text("ڈیش بورڈ")
    assert page.evaluate("document.documentElement.dir") == "rtl"

    assert browser_log.csp_violations() == []
    assert browser_log.errors == []
    assert browser_log.dialogs == []


def test_reviewer_sees_the_dashboard_without_progress(page, browser_log, dashboard_project, reviewer):  # type: ignore[no-untyped-def]
    project, _raters = dashboard_project
    sign_in(page, reviewer.username)
    expect(page.locator(f'a[href="/projects/{project.pk}/dashboard/"]')).to_be_visible()
    page.goto(f"/projects/{project.pk}/dashboard/")
    expect(page.locator("#fig-pairwise g.cell")).to_have_count(9)
    expect(page.locator("#dashboard")).to_contain_text("Progress is shown to the project's leads.")
    # The project hides annotator names from reviewers by default.
    expect(page.locator("#fig-pairwise svg")).to_contain_text("Annotator 1")
    assert browser_log.csp_violations() == [] and browser_log.errors == []


def test_annotators_and_outsiders_cannot_open_the_dashboard(page, dashboard_project, annotator, outsider):  # type: ignore[no-untyped-def]
    project, _raters = dashboard_project
    sign_in(page, annotator.username)
    page.locator(".project-card").wait_for()
    assert page.locator(f'a[href="/projects/{project.pk}/dashboard/"]').count() == 0
    response = page.goto(f"/projects/{project.pk}/dashboard/")
    assert response is not None and response.status == 403
    assert page.request.get(f"/api/projects/{project.pk}/agreement/").status == 403

    page.context.clear_cookies()
    sign_in(page, outsider.username)
    response = page.goto(f"/projects/{project.pk}/dashboard/")
    assert response is not None and response.status == 404
    assert re.search(r"/accounts/login/", page.url) is None
