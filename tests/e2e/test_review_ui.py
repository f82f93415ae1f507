"""The reviewer's and the lead's screens end to end in Chromium: the review queue (resolve a flag, adjudicate a tie
with the keyboard; settle a tie with "None of these" and find the decision in the gold export with label_source
"adjudicated"), the lead's multi-label gold rule on the dashboard, the item browser (search, open an item, make it gold),
importing through the browser (a CSV with a bad row into a project's corpus with a real Celery worker; a per-rater
corpus in one upload from My projects, its ratings' agreement one link away), error pages and the links each role sees.

Export and the one-upload import run their job here (the Celery task only calls export_run / import_run)."""

from __future__ import annotations

import csv
import hashlib
import io
import re
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import expect

from annotation.distribution.services import annotation_submit, item_flag, next_item_reserve
from annotation.export.services import export_job_create, export_run
from annotation.models import Adjudication, Flag, GoldItem, Project, ProjectQualityPolicy
from annotation.quality.selectors import quality_source_for_project
from annotation.quality.services import agreement_report_compute
from annotation.services import annotation_create, label_schema_create, membership_set, project_create
from corpora.languages import language_get_or_create
from corpora.models import Conversation, Corpus, Speaker, Utterance
from jobs.models import Job, JobStatus
from tests.e2e.conftest import screenshot_path, sign_in
from tests.workers.conftest import celery_env, celery_worker_process  # noqa: F401  (a real worker on real Redis)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

QUESTIONS = [
    {"key": "emotion", "type": "single_choice", "title": "Emotion", "required": True,
     "labels": ["joy", "sadness", "anger", "fear", "neutral"]},
    {"key": "valence", "type": "numeric", "title": "Valence", "min": 1, "max": 5, "step": 0.5},
]
LINES = [
    ("Ravi", "We finally sold the old boat at the harbour."),
    ("Meera", "After all those years? I can hardly believe it."),
    ("Ravi", "The buyer wants to sail it to Goa next week."),
    ("Meera", "Then I hope the harbour master lets him leave."),
    ("Ravi", "He laughed when I told him about the leak."),
    ("Meera", "मुझे उस नाव की बहुत याद आएगी।"),
    ("Ravi", "Nobody has looked at this line yet."),
    ("Meera", "Nor at this one."),
]


def _world(lead, reviewer, annotator, make_user) -> tuple[Project, list[Utterance], list]:  # type: ignore[no-untyped-def]
    corpus = Corpus.objects.create(name="Harbour", slug="harbour", license="CC-BY-4.0", created_by=lead)
    talk = Conversation.objects.create(corpus=corpus, external_id="boat-sale")
    speakers = {name: Speaker.objects.create(corpus=corpus, external_id=name.lower(), attributes={"name": name}) for name in ("Ravi", "Meera")}
    utterances = []
    for i, (speaker, text) in enumerate(LINES):
        code = "hi" if "नाव" in text else "en"
        utterances.append(Utterance.objects.create(
            corpus=corpus, text=text, language=language_get_or_create(code), conversation=talk, turn_index=i,
            speaker=speakers[speaker], metadata={"split": "dev"},
            content_hash=hashlib.blake2b(text.encode(), digest_size=16).hexdigest(),
        ))
    version = label_schema_create(name="Harbour emotions", slug="harbour-emotions", questions=QUESTIONS)
    project = project_create(name="Harbour talk", corpus=corpus, schema_version=version, created_by=lead, overlap=2)
    membership_set(project=project, user=reviewer, role="reviewer")
    raters = [annotator, make_user("bilal_annotator")]
    for rater in raters:
        membership_set(project=project, user=rater, role="annotator")
    # Item 0: a tie (joy against anger); items 1-2 agree; item 3 is flagged by Bilal.
    for emotions in (("joy", "anger"), ("sadness", "sadness"), ("neutral", "neutral")):
        for rater, emotion in zip(raters, emotions):
            held = next_item_reserve(project=project, user=rater)
            assert held is not None
            annotation_submit(project=project, user=rater, utterance_id=held.item.utterance_id, client_id=uuid.uuid4(),
                              value={"emotion": emotion, "valence": 3.0}, lead_time_ms=5200)
    held = next_item_reserve(project=project, user=raters[1])
    assert held is not None and held.item.utterance_id == utterances[3].pk
    item_flag(project=project, user=raters[1], utterance_id=utterances[3].pk, note="Is the harbour master a person here?")
    agreement_report_compute(source=quality_source_for_project(project), n_resamples=50)
    return project, utterances, raters


def test_reviewer_resolves_a_flag_and_adjudicates_a_tie_with_the_keyboard(page, browser_log, lead, reviewer, annotator, make_user, tmp_path):  # type: ignore[no-untyped-def]
    project, utterances, _ = _world(lead, reviewer, annotator, make_user)
    sign_in(page, reviewer.username)
    card = page.locator(f'.project-card[data-project="{project.pk}"]')
    expect(card.locator('[data-link="review"]')).to_be_visible()
    expect(card.get_by_role("link", name="Manage")).to_have_count(0)  # reviewers are not offered the lead's page
    expect(page.locator(".site-header nav").get_by_text("New project")).to_have_count(0)
    card.locator('[data-link="review"]').click()
    page.wait_for_url(f"**/projects/{project.pk}/review/**")

    # The flagged item comes first, then the tie; the first is open with its context.
    entries = page.locator(".queue-entry")
    expect(entries).to_have_count(2)
    expect(entries.first).to_contain_text("harbour master lets him leave")
    expect(entries.first).to_contain_text("flagged")
    expect(entries.nth(1)).to_contain_text("sold the old boat")
    expect(entries.nth(1)).to_contain_text("tie")
    item = page.locator(".review-item")
    expect(item.locator(".utterance-text")).to_have_text(LINES[3][1])
    expect(item.locator(".context .turn:not(.current)")).to_have_count(3)
    expect(item.locator(".flags-panel")).to_contain_text("Is the harbour master a person here?")

    # f: answer the flag; Enter resolves it. The item leaves the queue.
    page.keyboard.press("f")
    page.keyboard.type("Yes: the harbour master is the port official.")
    page.keyboard.press("Enter")
    expect(entries).to_have_count(1)
    flag = Flag.objects.get(project=project)
    assert flag.resolved and not flag.dismissed and flag.resolved_by == reviewer
    assert flag.resolution_note == "Yes: the harbour master is the port official."

    # The tie: both answers side by side (names hidden from reviewers), time spent shown.
    page.keyboard.press("n")
    expect(item.locator(".utterance-text")).to_have_text(LINES[0][1])
    table = item.locator("table.side-by-side")
    expect(table.locator("th.annotation-col")).to_have_count(2)
    expect(table.locator("th.annotation-col").first).to_contain_text("Annotator A")
    expect(table.locator("th.annotation-col").first).to_contain_text("5.2 s")
    expect(table).to_contain_text("joy")
    expect(table).to_contain_text("anger")
    expect(table.locator("th.summary-col")).to_contain_text("Aggregated")
    page.screenshot(path=str(screenshot_path(tmp_path, "review.png")), full_page=True)

    # Shift+2 takes Annotator B's answer into the form; c writes a note; Enter decides.
    page.keyboard.press("Shift+Digit2")
    expect(item.locator(".decision-form")).to_contain_text("Taken from Annotator B")
    expect(item.locator('.decision-form .choice[data-label="anger"]')).to_have_attribute("aria-pressed", "true")
    page.keyboard.press("c")
    page.keyboard.type("The speaker is cross about the leak.")
    page.keyboard.press("Escape")
    page.keyboard.press("Enter")
    expect(page.locator(".review-head .status")).to_contain_text("decided")
    expect(page.locator(".queue-list")).to_contain_text("Nothing to review")
    decision = Adjudication.objects.get(project=project, utterance=utterances[0])
    assert decision.value == {"emotion": "anger", "valence": 3.0} and decision.decided_by == reviewer
    assert decision.note == "The speaker is cross about the leak."
    assert not browser_log.errors and not browser_log.csp_violations()


def test_lead_searches_the_item_browser_and_makes_a_gold_item(page, browser_log, lead, reviewer, annotator, make_user, tmp_path):  # type: ignore[no-untyped-def]
    project, utterances, _ = _world(lead, reviewer, annotator, make_user)
    sign_in(page, lead.username)
    page.goto(f"/projects/{project.pk}/manage/")
    expect(page.locator('[data-stat="manage.open_flags"]')).to_have_attribute("href", f"/projects/{project.pk}/review/?reason=flagged")
    page.locator("#project-manage").get_by_role("link", name="Items").first.click()
    page.wait_for_url(f"**/projects/{project.pk}/items/")
    rows = page.locator("table.browse tbody tr")
    expect(rows).to_have_count(len(LINES))
    expect(page.locator(".browse-head")).to_contain_text("8 items")

    # "/" focuses the search; Enter applies it.
    page.keyboard.press("/")
    page.keyboard.type("harbour")
    page.keyboard.press("Enter")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("sold the old boat")
    assert "q=harbour" in page.url

    # Filters compose: the tie has 50% agreement.
    page.select_option('select[name="status"]', "complete")
    expect(rows).to_have_count(1)
    expect(rows.first.locator("td").nth(6)).to_have_text("50%")

    # Open it: side by side, and its history.
    rows.first.click()
    detail = page.locator(".browse-detail")
    expect(detail).to_be_visible()
    expect(detail.locator(".history-list li")).to_have_count(4)  # handed, answered × 2
    expect(detail.locator(".history-list")).to_contain_text("answered by anika_annotator")
    page.keyboard.press("Escape")
    expect(detail).to_be_hidden()

    # An item nobody has seen becomes gold with its reference answer.
    page.locator("button[data-action=reset]").click()
    expect(rows).to_have_count(len(LINES))
    page.select_option('select[name="status"]', "unassigned")
    expect(rows).to_have_count(4)
    rows.last.click()
    expect(detail.locator(".utterance-text")).to_have_text("Nor at this one.")
    detail.locator("button[data-action=gold]").click()
    page.keyboard.press("5")  # neutral, with the keyboard like the annotate screen
    expect(detail.locator('.gold-form .choice[data-label="neutral"]')).to_have_attribute("aria-pressed", "true")
    page.screenshot(path=str(screenshot_path(tmp_path, "items.png")), full_page=True)
    detail.locator("button[data-action=save-gold]").click()
    expect(detail.locator(".item-facts .badge.gold")).to_be_visible()
    gold = GoldItem.objects.get(project=project)
    assert gold.utterance == utterances[7] and gold.expected == {"emotion": "neutral"}
    page.goto(f"/projects/{project.pk}/manage/")
    expect(page.locator('[data-stat="manage.gold_items"]')).to_have_text("1")

    # Changed their mind: the lead makes it ordinary again, with the keyboard, and the count follows.
    page.goto(f"/projects/{project.pk}/items/?q=Nor+at+this")
    expect(rows).to_have_count(1)
    rows.first.focus()
    page.keyboard.press("Enter")
    expect(detail.locator(".item-facts .badge.gold")).to_be_visible()
    detail.locator("button[data-action=unset-gold]").focus()
    page.keyboard.press("Enter")
    expect(detail.locator(".unset-gold")).to_contain_text("Drop the gold answer?")
    expect(detail.locator("button[data-action=confirm-unset-gold]")).to_be_focused()
    page.keyboard.press("Enter")
    expect(detail.locator("button[data-action=gold]")).to_have_text("Make gold")
    expect(detail.locator(".item-facts .badge.gold")).to_have_count(0)
    assert not GoldItem.objects.filter(project=project).exists()
    page.goto(f"/projects/{project.pk}/manage/")
    expect(page.locator('[data-stat="manage.gold_items"]')).to_have_text("0")
    assert not browser_log.errors and not browser_log.csp_violations()


BAD_CSV = "id,text,lang\nh1,The tide is high today.,en\nh2,Where did the ferry go?,xx-nope\nh3,मछुआरे लौट आए।,hi\n"


def test_lead_imports_a_csv_with_a_bad_row_and_sees_it(page, browser_log, lead, reviewer, annotator, make_user, tmp_path, celery_worker_process):  # type: ignore[no-untyped-def]  # noqa: F811
    project, _, _ = _world(lead, reviewer, annotator, make_user)
    sign_in(page, lead.username)
    page.goto(f"/projects/{project.pk}/import/")
    data = tmp_path / "harbour-more.csv"
    data.write_text(BAD_CSV, encoding="utf-8")
    page.locator('input[name="files"]').set_input_files(str(data))

    # The columns are found and mapped by name; the preview shows each row as read, and the bad one's reason.
    expect(page.locator('select[name="mapping.text"]')).to_have_value("text")
    expect(page.locator('select[name="mapping.language"]')).to_have_value("lang")
    page.select_option('select[name="mapping.external_id"]', "id")
    preview = page.locator(".preview-table")
    expect(preview.locator("tbody tr")).to_have_count(3)
    expect(preview.locator("tbody tr").nth(0)).to_contain_text("The tide is high today.")
    expect(preview.locator("tbody tr.invalid")).to_have_count(1)
    expect(preview.locator("tbody tr.invalid")).to_contain_text("lang")
    page.screenshot(path=str(screenshot_path(tmp_path, "import.png")), full_page=True)

    # Skip invalid rows: the job imports two and lists the third with file, row, column and why.
    page.locator('input[name="mode"][value="skip_invalid"]').check()
    page.locator("button[data-action=import]").click()
    job_box = page.locator(".import-job")
    expect(job_box.locator(".job-status")).to_have_attribute("data-status", "succeeded", timeout=60_000)
    errors = job_box.locator("table.job-errors tbody tr")
    expect(errors).to_have_count(1)
    expect(errors.first).to_contain_text("harbour-more.csv")
    expect(errors.first.locator("td").nth(1)).to_have_text("2")
    expect(errors.first.locator("td").nth(2)).to_have_text("lang")
    csv_link = job_box.locator("a[data-action=errors-csv]")
    with page.expect_download() as download:
        csv_link.click()
    assert "xx-nope" in download.value.path().read_text(encoding="utf-8") or "lang" in download.value.path().read_text(encoding="utf-8")
    job = Job.objects.get(kind="import")
    assert job.status == JobStatus.SUCCEEDED and job.counts["created"] == 2
    assert set(Utterance.objects.filter(corpus=project.corpus, external_id__in=["h1", "h2", "h3"]).values_list("external_id", flat=True)) == {"h1", "h3"}
    assert not browser_log.errors and not browser_log.csp_violations()


def test_error_pages_use_the_layout_and_roles_see_their_links(page, browser_log, live_server, lead, reviewer, annotator, make_user, outsider):  # type: ignore[no-untyped-def]
    project, _, _ = _world(lead, reviewer, annotator, make_user)
    sign_in(page, annotator.username)
    expect(page.locator(".site-header nav").get_by_text("New project")).to_have_count(0)
    response = page.goto(f"/projects/{project.pk}/review/")
    assert response is not None and response.status == 403
    expect(page.locator(".error-code")).to_have_text("403")
    expect(page.locator("h1")).to_have_text("You cannot open this page")
    expect(page.locator(".site-header .brand")).to_be_visible()
    assert page.goto("/projects/new/").status == 403
    assert page.goto("/no/such/page/").status == 404
    expect(page.locator("h1")).to_have_text("Page not found")
    page.locator("#ui-language").select_option("ur")
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    expect(page.locator("h1")).to_have_text(re.compile("صفحہ"))
    assert not browser_log.errors and not browser_log.csp_violations()


def test_redoc_renders_under_the_content_security_policy(page, browser_log, live_server):  # type: ignore[no-untyped-def]
    page.goto("/api/redoc/")
    expect(page.locator("h1", has_text="Sentio API")).to_be_visible(timeout=20_000)
    expect(page.get_by_text("Upload files to import into this corpus").first).to_be_attached()
    # Everything ReDoc needs comes from this site; only Redocly's own logo (a CDN image) is refused, and ReDoc hides it.
    blocked = [line for line in browser_log.csp_violations() if "cdn.redoc.ly/redoc/logo-mini.svg" not in line]
    assert not blocked and not browser_log.errors, blocked
    assert not [line for line in browser_log.console if "404" in line]


# --- settling a tie into the gold export, the gold rule, a corpus's imported ratings ------------------------------

TIE_QUESTIONS = [
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
    version = label_schema_create(name="Chat emotions", slug="chat-emotions", questions=TIE_QUESTIONS)
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
    entries = page.locator(".queue-entry")
    entry = page.locator(f'.queue-entry[data-utterance="{tied.pk}"]')
    expect(entry).to_be_visible()
    expect(entry.locator(".badge.reason-tie")).to_have_text("tie")
    expect(entries).to_have_count(1)  # the agreed item is not there
    expect(page.locator(".review-item .utterance-text")).to_have_text(tied.text)  # the queue's first item is open

    # Side by side: both annotations (names hidden from reviewers), the tie left open by the aggregation.
    table = page.locator("table.side-by-side")
    expect(table.locator("th.annotation-col")).to_have_count(2)
    expect(table.locator("th.annotation-col").first).to_contain_text("Annotator A")
    multi = table.locator("tbody tr", has_text="All emotions")
    expect(multi.locator("td").nth(1)).to_have_text("none of these")  # bela said "no emotion" to the multi-label question
    expect(table.locator("tbody tr", has_text="Emotion").first.locator("td.summary-col")).to_contain_text("tie, open")

    decision = page.locator(".decision-form")
    expect(decision).to_contain_text("the gold export takes it instead of the aggregation")
    decision.locator('section[data-question="emotion"] button[data-label="anger"]').click()
    decision.locator('section[data-question="emotions"] button[data-none]').click()  # "None of these"
    decision.locator("input.decision-note").fill("Sarcastic reproach: anger, no felt emotion.")
    page.screenshot(path=str(screenshot_path(tmp_path, "review-adjudicate.png")), full_page=True)
    decision.locator('button[data-action="decide"]').click()
    expect(page.locator(".review-head .status")).to_contain_text(f"Item {tied.pk} decided.")
    expect(page.locator(".queue-list")).to_contain_text("Nothing to review")
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


def test_reviewer_settling_a_tie_sees_the_corpus_imported_ratings(page, browser_log, reviewer, tied_project):  # type: ignore[no-untyped-def]
    """The source's raters (imported with the corpus) show beside the project's answers, marked imported and "not
    counted" under the default policy; the reviewer takes one's answer with ⇧3 and decides with Enter."""
    project, tied = tied_project
    for rater in ("source-rater-1", "source-rater-2"):
        annotation_create(utterance=tied, schema_version=project.schema_version, external_rater=rater,
                          value={"emotion": "sadness", "emotions": ["sadness"]})
    sign_in(page, reviewer.username)
    page.goto(f"/projects/{project.pk}/review/")
    expect(page.locator(".review-item .utterance-text")).to_have_text(tied.text)
    columns = page.locator("table.side-by-side th.annotation-col")
    expect(columns).to_have_count(4)
    expect(columns.locator(".badge.imported")).to_have_count(2)
    imported = page.locator("table.side-by-side th.annotation-col.imported").first
    expect(imported).to_contain_text("imported")
    expect(imported).to_contain_text("not counted")
    expect(columns.first.locator(".badge.imported")).to_have_count(0)  # the project's own answers come first
    page.locator(".review-item .utterance-text").click()
    page.keyboard.press("Shift+Digit3")
    expect(page.locator('.decision-form section[data-question="emotion"] button[data-label="sadness"]')).to_have_attribute("aria-pressed", "true")
    page.keyboard.press("Enter")
    expect(page.locator(".review-head .status")).to_contain_text(f"Item {tied.pk} decided.")
    assert Adjudication.objects.get(project=project, utterance=tied).value["emotion"] == "sadness"
    page.locator("#ui-language").select_option("hi")
    page.goto(f"/projects/{project.pk}/items/?q=believe")
    page.locator("table.browse tbody tr").first.click()
    expect(page.locator(".browse-detail .badge.imported").first).to_have_text("आयातित")
    assert not browser_log.errors and not browser_log.csp_violations()


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
    panel = page.locator("#import-corpus")
    panel.locator('input[name="name"]').fill("BRIGHTER Marathi")
    panel.locator('input[name="license"]').fill("CC-BY-4.0")
    panel.locator('input[name="files"]').set_input_files(str(csv_path))
    expect(panel.locator(".import-preview h2")).to_be_visible()  # the corpus is made and the file's columns read
    panel.locator('select[name="preset"]').select_option("brighter_raters")
    panel.locator('input[name="intensity"]').check()
    panel.locator('button[data-action="import"]').click()
    status = panel.locator(".import-job .job-status")
    expect(status).to_have_attribute("data-status", "pending")
    assert len(queued) == 1
    import_run(job_id=queued[0])
    expect(status).to_have_attribute("data-status", "succeeded", timeout=15_000)
    counts = panel.locator(".import-job .counts")
    expect(counts.locator('[data-count="created"]')).to_have_text("12")
    expect(counts.locator('[data-count="annotations"]')).to_have_text(f"{len(levels):,}")
    expect(counts.locator('[data-count="blank_cells"]')).not_to_have_text("0")
    panel.locator('a[data-link="ratings"]').click()
    corpus = Corpus.objects.get(name="BRIGHTER Marathi")
    page.wait_for_url(f"**/corpora/{corpus.pk}/quality/")
    expect(page.locator("#alpha-headline")).to_contain_text("MASI")
    expect(page.locator("#alpha-headline .alpha-value")).not_to_have_text("—")
    assert not browser_log.errors, browser_log.errors
    assert not browser_log.csp_violations(), browser_log.csp_violations()
