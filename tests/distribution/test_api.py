"""The annotate API over HTTP: payloads, status codes, what outsiders see, and the OpenAPI schema."""

from __future__ import annotations

import uuid

import pytest

from annotation.models import Annotation, Prediction, SuggestionPolicy

pytestmark = pytest.mark.django_db


def url(project, action: str) -> str:  # type: ignore[no-untyped-def]
    return f"/api/projects/{project.pk}/{action}/"


def submit(client, project, utterance_id, value, client_id=None, **extra):  # type: ignore[no-untyped-def]
    body = {"client_id": str(client_id or uuid.uuid4()), "utterance": utterance_id, "value": value, **extra}
    return client.post(url(project, "submit"), body, format="json")


def test_next_item_carries_context_direction_and_speakers(make_project, conversation_corpus, annotator, api):
    project = make_project(members=[(annotator, ["ar"])])
    client = api(annotator)
    response = client.post(url(project, "next"))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["utterance"]["id"] == conversation_corpus[2].pk
    assert body["utterance"]["language"] == {"code": "ar", "name": body["utterance"]["language"]["name"], "script": "Arab", "direction": "rtl"}
    assert [(turn["speaker"], turn["text"], turn["language"]["direction"]) for turn in body["context"]] == [
        ("Ravi", "नमस्कार, कसे आहात?", "ltr"), ("spk-m", "I am fine", "ltr"),
    ]
    assert body["suggestion"] is None and body["suggestion_policy"] == "hidden"
    assert body["schema"]["questions"][0]["key"] == "emotion"
    # HTML in the text comes back as data, in JSON, untouched and never rendered.
    assert response["Content-Type"].startswith("application/json")
    assert body["utterance"]["text"] == "<script>alert(1)</script> & <b>bold</b>"
    again = client.get(url(project, "next")).json()
    assert again["utterance"]["id"] == body["utterance"]["id"] and again["reservation"]["resumed"] is True


@pytest.mark.parametrize(("policy", "shown"), [(SuggestionPolicy.HIDDEN, False), (SuggestionPolicy.SHOWN, True), (SuggestionPolicy.PREFILLED, True)])
def test_suggestions_follow_the_project_policy(make_project, make_items, annotator, api, policy, shown):
    utterances = make_items(1)
    Prediction.objects.create(utterance=utterances[0], model_version="xlm-emo", scores={"joy": 0.8}, label="joy", uncertainty=0.2)
    project = make_project(members=[annotator], suggestion_policy=policy, models=["xlm-emo"])
    body = api(annotator).post(url(project, "next")).json()
    assert body["suggestion_policy"] == policy
    assert (body["suggestion"] is not None) == shown
    if shown:
        assert body["suggestion"]["label"] == "joy" and body["suggestion"]["model_version"] == "xlm-emo"


def test_suggestions_come_only_from_models_registered_on_the_project(make_project, make_items, make_user, api):
    """A head trained in another project (another schema) never pre-fills this one's questions, however the two share
    utterances; nor does a model nobody registered here."""
    from .conftest import register_model

    utterance = make_items(1)[0]
    people = [make_user("pia"), make_user("quinn")]
    other = make_project(members=[people[0]], suggestion_policy=SuggestionPolicy.PREFILLED)
    register_model(other, "head@other")
    Prediction.objects.create(utterance=utterance, model_version="head@other", scores={"joy": 0.9}, label="joy")
    Prediction.objects.create(utterance=utterance, model_version="unregistered", scores={"joy": 0.9}, label="joy")
    project = make_project(members=[people[1]], suggestion_policy=SuggestionPolicy.PREFILLED)
    assert api(people[1]).post(url(project, "next")).json()["suggestion"] is None
    assert api(people[0]).post(url(other, "next")).json()["suggestion"]["model_version"] == "head@other"
    # Registered here (for its question), the project's own model is shown.
    register_model(project, "head@mine")
    Prediction.objects.create(utterance=utterance, model_version="head@mine", scores={"sadness": 0.7}, label="sadness")
    assert api(people[1]).get(url(project, "next")).json()["suggestion"]["model_version"] == "head@mine"


def test_nothing_left_is_204(make_project, annotator, api):
    project = make_project(members=[annotator])
    assert api(annotator).post(url(project, "next")).status_code == 204


def test_submit_then_retry_returns_the_same_annotation(make_project, make_items, annotator, api):
    make_items(2)
    project = make_project(members=[annotator])
    client = api(annotator)
    utterance_id = client.post(url(project, "next")).json()["utterance"]["id"]
    client_id = uuid.uuid4()
    first = submit(client, project, utterance_id, {"emotion": "joy", "rationale": "<img src=x onerror=alert(1)>"}, client_id, lead_time_ms=3100)
    retry = submit(client, project, utterance_id, {"emotion": "joy", "rationale": "<img src=x onerror=alert(1)>"}, client_id, lead_time_ms=3100)
    assert (first.status_code, retry.status_code) == (201, 200)
    assert first.json()["annotation"]["id"] == retry.json()["annotation"]["id"]
    assert first.json()["annotation"]["value"]["rationale"] == "<img src=x onerror=alert(1)>"
    assert Annotation.objects.filter(project=project).count() == 1
    assert Annotation.objects.get(project=project).lead_time_ms == 3100


def test_a_retry_with_another_answer_is_409_with_the_stored_answer(make_project, make_items, annotator, api):
    make_items(2)
    project = make_project(members=[annotator])
    client = api(annotator)
    utterance_id = client.post(url(project, "next")).json()["utterance"]["id"]
    client_id = uuid.uuid4()
    first = submit(client, project, utterance_id, {"emotion": "joy"}, client_id)
    changed = submit(client, project, utterance_id, {"emotion": "anger"}, client_id, next=True)
    assert (first.status_code, changed.status_code) == (201, 409)
    body = changed.json()
    assert body["code"] == "client_id_conflict" and "client_id" in body["detail"]
    assert body["annotation"] == first.json()["annotation"]  # the stored answer, as the first answer showed it
    assert list(Annotation.objects.filter(project=project).values_list("value", flat=True)) == [{"emotion": "joy"}]


def test_submit_can_return_the_next_item(make_project, make_items, annotator, api):
    utterances = make_items(2)
    project = make_project(members=[annotator])
    client = api(annotator)
    client.post(url(project, "next"))
    response = submit(client, project, utterances[0].pk, {"emotion": "joy"}, next=True)
    assert response.status_code == 201
    assert response.json()["next"]["utterance"]["id"] == utterances[1].pk


@pytest.mark.parametrize(("payload", "field"), [
    ({"value": {"emotion": "bored"}}, ("value", "emotion")),
    ({"value": {"valence": 3}}, ("value", "emotion")),  # required question missing
    ({"value": {"emotion": "joy", "valence": 4.2}}, ("value", "valence")),
    ({"value": {"emotion": "joy", "nonsense": 1}}, ("value", "nonsense")),
    ({"value": ["joy"]}, ("value", None)),
    ({"value": {"emotion": "joy"}, "client_id": "not-a-uuid"}, ("client_id", None)),
    ({"value": {"emotion": "joy"}, "lead_time_ms": -5}, ("lead_time_ms", None)),
    ({"value": {"emotion": "joy"}, "perspective": "listener"}, ("perspective", None)),
    ({"value": {"emotion": "joy"}, "utterance": "abc"}, ("utterance", None)),
])
def test_bad_payloads_are_400_naming_the_field(make_project, make_items, annotator, api, payload, field):
    make_items(1)
    project = make_project(members=[annotator])
    client = api(annotator)
    utterance_id = client.post(url(project, "next")).json()["utterance"]["id"]
    body = {"client_id": str(uuid.uuid4()), "utterance": utterance_id, **payload}
    response = client.post(url(project, "submit"), body, format="json")
    assert response.status_code == 400, response.content
    errors = response.json()
    top, inner = field
    assert top in errors
    if inner:
        assert inner in errors[top]
    assert not Annotation.objects.exists()


def test_outsider_and_foreign_items_get_404_without_details(make_project, make_items, annotator, outsider, make_user, api):
    utterances = make_items(2)
    other = make_user("other")
    project = make_project(members=[annotator, other])
    api(other).post(url(project, "next"))  # other holds item 0
    for client, utterance in ((api(outsider), utterances[0]), (api(annotator), utterances[0]), (api(annotator), utterances[1])):
        response = submit(client, project, utterance.pk, {"emotion": "joy"})
        assert response.status_code == 404
        assert "nemotion" not in response.content.decode() and utterance.text not in response.content.decode()
    for action in ("next", "my-annotations", "progress"):
        method = api(outsider).post if action == "next" else api(outsider).get
        assert method(url(project, action)).status_code == 404
    missing = type("P", (), {"pk": 999999})()
    assert api(annotator).post(url(missing, "next")).status_code == 404
    assert not Annotation.objects.exists()


def test_anonymous_is_refused(make_project, client):
    project = make_project()
    assert client.post(url(project, "next")).status_code in (401, 403)


def test_late_submission_refused_with_a_clear_message(make_project, make_items, make_user, api):
    from datetime import timedelta

    from django.utils import timezone

    from annotation.models import Reservation

    make_items(1)
    alice, bob = make_user("alice"), make_user("bob")
    project = make_project(overlap=1, members=[alice, bob])
    utterance_id = api(alice).post(url(project, "next")).json()["utterance"]["id"]
    Reservation.objects.filter(annotator=alice).update(expires_at=timezone.now() - timedelta(seconds=5))
    api(bob).post(url(project, "next"))
    assert submit(api(bob), project, utterance_id, {"emotion": "anger"}).status_code == 201
    late = submit(api(alice), project, utterance_id, {"emotion": "joy", "rationale": "my careful words"})
    assert late.status_code == 409
    assert late.json()["code"] == "item_complete" and "expired" in late.json()["detail"]


def test_skip_flag_history_and_edit(make_project, make_items, annotator, lead, api):
    utterances = make_items(3)
    project = make_project(members=[annotator])
    client = api(annotator)
    first = client.post(url(project, "next")).json()["utterance"]["id"]
    assert client.post(url(project, "skip"), {"utterance": first, "reason": ""}, format="json").json() == {"reason": ["say why you skip this item"]}
    skipped = client.post(url(project, "skip"), {"utterance": first, "reason": "noise only", "next": True}, format="json")
    assert skipped.status_code == 200 and skipped.json()["next"]["utterance"]["id"] == utterances[1].pk
    flag = client.post(url(project, "flag"), {"utterance": utterances[1].pk, "note": "speaker is cut off"}, format="json")
    assert flag.status_code == 201
    made = submit(client, project, utterances[1].pk, {"emotion": "sadness"}).json()["annotation"]
    history = client.get(url(project, "my-annotations")).json()
    assert [row["id"] for row in history["results"]] == [made["id"]] and history["results"][0]["editable"]
    edit_url = f"{url(project, 'my-annotations')}{made['id']}/"
    assert client.patch(edit_url, {"value": {"emotion": "sad"}}, format="json").status_code == 400
    edited = client.patch(edit_url, {"value": {"emotion": "neutral"}, "lead_time_ms": 500}, format="json")
    assert edited.status_code == 200 and edited.json()["value"] == {"emotion": "neutral"}
    assert api(lead).patch(edit_url, {"value": {"emotion": "joy"}}, format="json").status_code == 404
    flags = api(lead).get(url(project, "flags")).json()["results"]
    assert [f["note"] for f in flags] == ["speaker is cut off"]
    assert api(annotator).get(url(project, "flags")).status_code == 403
    resolved = api(lead).post(f"{url(project, 'flags')}{flags[0]['id']}/resolve/")
    assert resolved.status_code == 200 and resolved.json()["resolved"] is True


def test_progress_for_leads_only(make_project, make_items, make_user, lead, api):
    make_items(2, "en")
    make_items(1, "mr")
    alice = make_user("alice")
    project = make_project(overlap=1, members=[alice])
    client = api(alice)
    for _ in range(2):
        utterance_id = client.post(url(project, "next")).json()["utterance"]["id"]
        submit(client, project, utterance_id, {"emotion": "joy"}, lead_time_ms=1000)
    assert client.get(url(project, "progress")).status_code == 403
    progress = api(lead).get(url(project, "progress"))
    assert progress.status_code == 200
    body = progress.json()
    assert (body["items"], body["complete"], body["annotations"]) == (3, 2, 2)
    assert {row["language"]: row["complete"] for row in body["by_language"]} == {"en": 2, "mr": 0}
    alice_row = next(row for row in body["by_annotator"] if row["username"] == "alice")
    assert alice_row["annotations"] == 2 and alice_row["mean_lead_time_ms"] == 1000 and alice_row["by_language"] == {"en": 2}


def test_gold_endpoint_for_leads(make_project, make_items, annotator, lead, api):
    utterances = make_items(2)
    project = make_project(members=[annotator])
    body = {"utterance": utterances[0].pk, "expected": {"emotion": "bored"}}
    assert api(annotator).post(url(project, "gold"), body, format="json").status_code == 403
    bad = api(lead).post(url(project, "gold"), body, format="json")
    assert bad.status_code == 400 and "expected.emotion" in bad.json()
    body["expected"] = {"emotion": "joy"}
    assert api(lead).post(url(project, "gold"), body, format="json").status_code == 201
    # At gold rate 0 gold items are never served; an item already handed out cannot become gold.
    assert api(annotator).post(url(project, "next")).json()["utterance"]["id"] == utterances[1].pk
    handed = api(lead).post(url(project, "gold"), {"utterance": utterances[1].pk, "expected": {"emotion": "joy"}}, format="json")
    assert handed.status_code == 400 and "utterance" in handed.json()
    # Only a lead makes it ordinary again; then it is no gold item to remove.
    one = f"{url(project, 'gold')}{utterances[0].pk}/"
    assert api(annotator).delete(one).status_code == 403
    assert api(lead).delete(one).status_code == 204
    assert api(lead).delete(one).status_code == 404
    assert api(lead).get(url(project, "progress")).json()["gold_items"] == 0


def test_openapi_schema_documents_the_annotate_endpoints(db, lead, api):
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    for action in ("next", "submit", "skip", "flag", "my-annotations", "my-annotations/{annotation_id}", "progress", "gold",
                   "gold/{utterance_id}"):
        assert f"/api/projects/{{project_id}}/{action}/" in schema["paths"], action
    submit_op = schema["paths"]["/api/projects/{project_id}/submit/"]["post"]
    assert {"201", "400", "404", "409"} <= set(submit_op["responses"])


def test_ids_beyond_the_database_range_are_404_and_400_not_500(make_project, make_items, annotator, api):
    make_items(1)
    project = make_project(members=[annotator])
    client = api(annotator)
    huge = 2**64 - 1  # found by schemathesis: a bigint cast error became a 500
    assert client.post(f"/api/projects/{huge}/next/").status_code == 404
    assert client.post(f"/api/projects/{huge}/submit/", {"client_id": str(uuid.uuid4()), "utterance": 1,
                                                         "value": {"emotion": "joy"}}, format="json").status_code == 404
    response = submit(client, project, huge, {"emotion": "joy"})
    assert response.status_code == 400 and "utterance" in response.json()
