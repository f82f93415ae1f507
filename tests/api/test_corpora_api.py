"""Languages, corpora and utterances: payloads, filters, pagination and input errors."""

from __future__ import annotations

import pytest

from annotation.services import annotation_create
from corpora.languages import language_get_or_create
from tests.api.conftest import ids, make_utterance

pytestmark = pytest.mark.django_db


def external_ids(response):
    assert response.status_code == 200, response.content
    return {row["external_id"] for row in response.json()["results"]}


def test_languages_are_listed_with_direction(world, client_for):
    language_get_or_create("ar-EG")
    client = client_for(world.annotator)
    rows = client.get("/api/languages/").json()["results"]
    assert {"code": "ar-EG", "name": rows[0]["name"], "script": "Arab", "direction": "rtl"} in rows
    assert client.get("/api/languages/mr/").json()["direction"] == "ltr"
    assert client.get("/api/languages/xx/").status_code == 404


def test_utterance_payload(world, client_for):
    client = client_for(world.annotator)
    first, second = world.utterances[0], world.utterances[1]
    body = client.get(f"/api/utterances/{first.pk}/").json()
    assert body["conversation"] == world.conversation.pk and body["conversation_external_id"] == "dia1"
    assert body["speaker"] == world.speaker.pk and body["speaker_external_id"] == "Joey"
    assert body["language"] == {"code": "mr", "script": "Deva", "direction": "ltr"}
    assert body["text"] == "मी खूप आनंदी आहे" and body["audio_url"] is None and body["turn_index"] == 0
    with_audio = client.get(f"/api/utterances/{second.pk}/").json()
    assert with_audio["audio_url"] == f"/media/{second.audio.name}"
    assert with_audio["speaker"] is None and with_audio["speaker_external_id"] is None


def test_markup_in_text_is_returned_as_data(world, client_for):
    response = client_for(world.annotator).get(f"/api/utterances/{world.utterances[2].pk}/")
    assert response["Content-Type"] == "application/json"
    assert response.json()["text"] == "<script>alert('x')</script>"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("language=en", {"u2", "x3"}),
        ("language=mr", {"u1"}),
        ("has_audio=true", {"u2"}),
        ("has_audio=false", {"u1", "x3"}),
        ("external_id=u2", {"u2"}),
        ("search=u", {"u1", "u2"}),
        ("language=en&has_audio=false", {"x3"}),
    ],
)
def test_utterance_filters(world, client_for, query, expected):
    assert external_ids(client_for(world.annotator).get(f"/api/utterances/?{query}")) == expected


def test_utterance_filters_by_corpus_speaker_conversation(world, client_for, make_user):
    staff = client_for(make_user("sam_staff", is_staff=True))
    assert external_ids(staff.get(f"/api/utterances/?corpus={world.corpus.pk}")) == {"u1", "u2", "x3"}
    assert external_ids(staff.get(f"/api/utterances/?corpus={world.private_corpus.pk}")) == {"p1"}
    assert external_ids(staff.get(f"/api/utterances/?speaker={world.speaker.pk}")) == {"u1"}
    assert external_ids(staff.get(f"/api/utterances/?conversation={world.conversation.pk}")) == {"u1", "u2"}
    assert ids(staff.get(f"/api/conversations/?corpus={world.private_corpus.pk}")) == set()
    assert ids(staff.get(f"/api/speakers/?corpus={world.corpus.pk}")) == {world.speaker.pk}


@pytest.mark.parametrize("query", ["corpus=abc", "speaker=x", "has_audio=maybe", "conversation=1.5x"])
def test_bad_filter_values_are_400_naming_the_filter(world, client_for, query):
    response = client_for(world.annotator).get(f"/api/utterances/?{query}")
    assert response.status_code == 400
    assert query.split("=")[0] in response.json()


def test_label_filter_covers_single_choice_and_multi_label_answers(world, client_for, emotion_schema):
    from annotation.services import label_schema_create

    listy = label_schema_create(
        name="Tags", slug="tags", questions=[{"key": "tags", "type": "multi_label", "labels": ["joy", "fear", "anger"]}]
    )
    extra = make_utterance(world.corpus, "भीती", external_id="u4")
    annotation_create(utterance=extra, schema_version=listy, value={"tags": ["fear", "anger"]}, external_rater="r2")
    client = client_for(world.lead)  # leads read the project's labels and the corpus's imported ones
    assert external_ids(client.get("/api/utterances/?label=joy")) == {"u1"}  # single choice
    assert external_ids(client.get("/api/utterances/?label=anger")) == {"u2", "u4"}  # single choice + list
    assert external_ids(client.get("/api/utterances/?label=fear")) == {"u2", "u4"}  # intensity mapping + list
    assert external_ids(client.get("/api/utterances/?label=sadness")) == set()  # only in the private corpus
    assert external_ids(client.get("/api/utterances/?label=nonexistent")) == set()
    assert external_ids(client.get("/api/utterances/?label=anger&language=mr")) == {"u4"}
    # Annotators find only what they answered themselves: others' labels, imported ones included, stay hidden.
    blind = client_for(world.annotator)
    assert external_ids(blind.get("/api/utterances/?label=anger")) == {"u2"}
    assert external_ids(blind.get("/api/utterances/?label=joy")) == set()


def test_label_filter_ignores_annotations_of_projects_the_user_is_not_in(world, client_for):
    # The curator sees the corpus but is no member of its project: its annotations do not count for him.
    assert external_ids(client_for(world.curator).get("/api/utterances/?label=anger")) == set()
    assert external_ids(client_for(world.curator).get("/api/utterances/?label=joy")) == {"u1"}  # imported


def test_pagination(world, client_for):
    for i in range(60):
        make_utterance(world.corpus, f"line {i}", external_id=f"bulk{i:02d}")
    client = client_for(world.annotator)
    first = client.get("/api/utterances/").json()
    assert first["count"] == 63 and len(first["results"]) == 50 and first["previous"] is None
    second = client.get(first["next"]).json()
    assert len(second["results"]) == 13 and second["next"] is None
    assert not {r["id"] for r in first["results"]} & {r["id"] for r in second["results"]}
    assert client.get("/api/utterances/?page=99").status_code == 404


def test_corpus_create_errors_name_the_field(world, client_for):
    client = client_for(world.outsider)
    missing = client.post("/api/corpora/", {"name": "X"}, format="json")
    assert missing.status_code == 400 and "license" in missing.json()
    blank = client.post("/api/corpora/", {"name": "   ", "license": "MIT"}, format="json")
    assert blank.status_code == 400 and "name" in blank.json()
    taken = client.post("/api/corpora/", {"name": "Main", "license": "MIT"}, format="json")
    assert taken.status_code == 400 and "already exists" in taken.json()["slug"][0]
    bad_slug = client.post("/api/corpora/", {"name": "Y", "license": "MIT", "slug": "not a slug!"}, format="json")
    assert bad_slug.status_code == 400 and "slug" in bad_slug.json()
    not_json = client.post("/api/corpora/", "{nope", content_type="application/json")
    assert not_json.status_code == 400 and "detail" in not_json.json()


def test_corpus_update(world, client_for):
    client = client_for(world.curator)
    response = client.patch(f"/api/corpora/{world.corpus.pk}/", {"languages": ["mr", "en"], "license": "CC-BY-SA-4.0"}, format="json")
    assert response.status_code == 200, response.content
    assert sorted(response.json()["languages"]) == ["en", "mr"] and response.json()["license"] == "CC-BY-SA-4.0"
    unknown = client.patch(f"/api/corpora/{world.corpus.pk}/", {"languages": ["zz"]}, format="json")
    assert unknown.status_code == 400 and "languages" in unknown.json()
    blank = client.patch(f"/api/corpora/{world.corpus.pk}/", {"license": " "}, format="json")
    assert blank.status_code == 400 and "license" in blank.json()
    # The slug is fixed once made.
    client.patch(f"/api/corpora/{world.corpus.pk}/", {"slug": "renamed"}, format="json")
    world.corpus.refresh_from_db()
    assert world.corpus.slug == "main"
