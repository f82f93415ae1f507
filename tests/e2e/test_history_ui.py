"""The annotator's history in Chromium: undo the last submit with u, change an earlier answer from the history panel,
revisit a skipped item before the queue ends, the counter on the "All done" card, the status line after a language
switch, and the annotate screen on a 390 px phone."""

from __future__ import annotations

import hashlib

import pytest
from playwright.sync_api import expect

from annotation.models import Annotation, Project, ProjectItem, Skip
from annotation.services import label_schema_create, membership_set, project_create
from corpora.languages import language_get_or_create
from corpora.models import Corpus, Utterance
from tests.e2e.conftest import screenshot_path, sign_in

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

QUESTIONS = [
    {"key": "emotion", "type": "single_choice", "title": "Emotion", "required": True,
     "labels": ["joy", "sadness", "anger", "fear", "neutral"]},
    {"key": "regions", "type": "segments", "title": "Where in the audio", "labels": ["joy", "anger"]},
]
TEXTS = ["The kettle is finally boiling.", "My bus left without me.", "Someone ate my lunch again!", "Rain all week."]


@pytest.fixture
def text_project(lead, annotator) -> Project:  # type: ignore[no-untyped-def]
    corpus = Corpus.objects.create(name="Days", slug="days", license="CC-BY-4.0", created_by=lead)
    for text in TEXTS:
        Utterance.objects.create(corpus=corpus, text=text, language=language_get_or_create("en"),
                                 content_hash=hashlib.blake2b(text.encode(), digest_size=16).hexdigest())
    version = label_schema_create(name="Day emotions", slug="day-emotions", questions=QUESTIONS)
    project = project_create(name="Ordinary days", corpus=corpus, schema_version=version, created_by=lead)
    membership_set(project=project, user=annotator, role="annotator")
    return project


def _shows(page, text: str) -> None:  # type: ignore[no-untyped-def]
    page.locator("#utterance-text").filter(has_text=text).wait_for()


def _mine(project: Project) -> dict[str, str]:
    return {a.utterance.text: a.value["emotion"] for a in Annotation.objects.filter(project=project).select_related("utterance")}


def test_annotator_undoes_a_submit_and_changes_an_earlier_answer(page, browser_log, text_project, annotator):  # type: ignore[no-untyped-def]
    sign_in(page, annotator.username)
    page.goto(f"/projects/{text_project.pk}/annotate/")
    _shows(page, TEXTS[0])
    # Text-only items leave the audio-segments question out.
    expect(page.locator('[data-question="regions"]')).to_have_count(0)
    page.keyboard.press("1")  # joy
    page.keyboard.press("Enter")
    _shows(page, TEXTS[1])
    page.keyboard.press("2")  # sadness
    page.keyboard.press("Enter")
    _shows(page, TEXTS[2])
    expect(page.locator(".counter")).to_contain_text("2 this session")

    # u: the last answer comes back, still chosen; the item it had moved on to returns to the queue.
    page.keyboard.press("u")
    _shows(page, TEXTS[1])
    expect(page.locator('.choice[data-label="sadness"]')).to_have_attribute("aria-pressed", "true")
    expect(page.locator(".annotate-head .status")).to_contain_text("taken back")
    expect(page.locator(".counter")).to_contain_text("1 this session")
    assert _mine(text_project) == {TEXTS[0]: "joy"}
    page.keyboard.press("3")  # anger instead
    page.keyboard.press("Enter")
    _shows(page, TEXTS[2])
    assert _mine(text_project) == {TEXTS[0]: "joy", TEXTS[1]: "anger"}
    assert ProjectItem.objects.get(project=text_project, utterance__text=TEXTS[2]).reserved_count == 1

    # h: my history; change the first answer; Enter saves and the current item comes back.
    page.keyboard.press("h")
    drawer = page.locator(".history-drawer")
    expect(drawer).to_be_visible()
    expect(drawer.locator(".mine-list li")).to_have_count(2)
    drawer.locator(".mine-list li", has_text=TEXTS[0]).locator("button[data-edit]").click()
    _shows(page, TEXTS[0])
    expect(page.locator(".editing-banner")).to_be_visible()
    expect(page.locator('.choice[data-label="joy"]')).to_have_attribute("aria-pressed", "true")
    page.keyboard.press("5")  # neutral
    page.keyboard.press("Enter")
    _shows(page, TEXTS[2])
    expect(page.locator(".annotate-head .status")).to_contain_text("change was saved")
    assert _mine(text_project) == {TEXTS[0]: "neutral", TEXTS[1]: "anger"}

    # Skip the third, finish the fourth: the "All done" card counts right and offers the skipped item.
    page.keyboard.press("s")
    page.keyboard.type("need to think")
    page.keyboard.press("Enter")
    _shows(page, TEXTS[3])
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    page.locator(".finished-card").wait_for()
    expect(page.locator(".counter")).to_contain_text("3 this session · 3 in total")
    revisit = page.locator("button[data-action=show-skipped]")
    expect(revisit).to_contain_text("1 item")
    revisit.click()
    page.locator(".history-drawer button[data-revisit]").click()
    _shows(page, TEXTS[2])
    assert not Skip.objects.filter(project=text_project).exists()
    page.keyboard.press("3")
    page.keyboard.press("Enter")
    page.locator(".finished-card").wait_for()
    expect(page.locator("button[data-action=show-skipped]")).to_have_count(0)
    assert _mine(text_project) == {TEXTS[0]: "neutral", TEXTS[1]: "anger", TEXTS[2]: "anger", TEXTS[3]: "joy"}
    assert not browser_log.errors and not browser_log.csp_violations()


def test_the_status_line_follows_a_language_switch(page, browser_log, text_project, annotator):  # type: ignore[no-untyped-def]
    sign_in(page, annotator.username)
    page.goto(f"/projects/{text_project.pk}/annotate/")
    _shows(page, TEXTS[0])
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    _shows(page, TEXTS[1])
    expect(page.locator(".annotate-head .status")).to_have_text("Saved.")
    page.locator("#ui-language").select_option("hi")
    expect(page.locator(".annotate-head .status")).not_to_have_text("Saved.")
    expect(page.locator(".annotate-head .status")).to_have_text("सहेजा गया।")


def test_the_annotate_screen_on_a_phone(browser, live_server, text_project, annotator, tmp_path):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 390, "height": 844}, base_url=live_server.url, is_mobile=True, has_touch=True)
    page = context.new_page()
    sign_in(page, annotator.username)
    page.goto(f"/projects/{text_project.pk}/annotate/")
    _shows(page, TEXTS[0])
    # Nothing is wider than the screen: no sideways scrolling, and the labels and Submit are on screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    submit = page.locator('.actions button[data-action="submit"]')
    expect(submit).to_be_in_viewport()
    page.locator('.choice[data-label="anger"]').tap()
    submit.tap()
    _shows(page, TEXTS[1])
    page.screenshot(path=str(screenshot_path(tmp_path, "annotate-phone.png")))
    assert _mine(text_project) == {TEXTS[0]: "anger"}
    context.close()
