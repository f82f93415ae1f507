"""Undo of the last submit, revisiting a skipped item, and closing flags with a note — services and API, with the
item counters checked after each step (the invariant annotation_count + reserved_count <= overlap must hold)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from annotation.distribution import services as d
from annotation.models import Annotation, Flag, ProjectItem, Reservation, ReservationStatus, Skip
from annotation.quality.services import item_adjudicate
from annotation.services import membership_set

pytestmark = pytest.mark.django_db


def url(project, action: str) -> str:  # type: ignore[no-untyped-def]
    return f"/api/projects/{project.pk}/{action}/"


def counters(project, utterance) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    item = ProjectItem.objects.get(project=project, utterance=utterance)
    return item.annotation_count, item.reserved_count


def submit(client, project, utterance_id, emotion="joy"):  # type: ignore[no-untyped-def]
    body = {"client_id": str(uuid.uuid4()), "utterance": utterance_id, "value": {"emotion": emotion}, "next": True}
    response = client.post(url(project, "submit"), body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_undo_gives_the_item_back_and_releases_the_next_one(make_project, make_items, annotator, make_user, api):
    utterances = make_items(3)
    other = make_user("other")
    project = make_project(overlap=2, members=[annotator, other])
    client = api(annotator)
    first = client.post(url(project, "next")).json()["utterance"]["id"]
    submitted = submit(client, project, first, "anger")
    assert submitted["next"]["utterance"]["id"] == utterances[1].pk
    assert counters(project, utterances[0]) == (1, 0) and counters(project, utterances[1]) == (0, 1)

    undone = client.post(url(project, "undo"), {"annotation": submitted["annotation"]["id"]}, format="json")
    assert undone.status_code == 200 and undone.json() == {"utterance": first, "held": True}
    assert not Annotation.objects.filter(pk=submitted["annotation"]["id"]).exists()
    assert counters(project, utterances[0]) == (0, 1) and counters(project, utterances[1]) == (0, 0)
    # The next call (PostgreSQL's SQL function) returns the undone item as the one I hold.
    again = client.post(url(project, "next")).json()
    assert again["utterance"]["id"] == first and again["reservation"]["resumed"] is True
    # Answering it anew works, and the released item comes back to me afterwards.
    resubmitted = submit(client, project, first, "joy")
    assert resubmitted["next"]["utterance"]["id"] == utterances[1].pk
    assert counters(project, utterances[0]) == (1, 0)
    # Someone else's annotation, or one not in this project, is not mine to undo.
    assert api(other).post(url(project, "undo"), {"annotation": resubmitted["annotation"]["id"]}, format="json").status_code == 404
    assert client.post(url(project, "undo"), {}, format="json").json() == {"annotation": ["This field is required."]}


def test_undo_recomputes_disagreement(make_project, make_items, annotator, make_user):
    utterances = make_items(1)
    other = make_user("other")
    project = make_project(overlap=2, members=[annotator, other])
    for user, label in ((annotator, "joy"), (other, "anger")):
        held = d.next_item_reserve(project=project, user=user)
        assert held is not None
        last = d.annotation_submit(project=project, user=user, utterance_id=utterances[0].pk, client_id=uuid.uuid4(), value={"emotion": label})
    assert ProjectItem.objects.get(project=project).disagreement == 0.5
    d.annotation_undo(project=project, user=other, annotation_id=last.annotation.pk)
    item = ProjectItem.objects.get(project=project)
    assert (item.disagreement, item.annotation_count, item.reserved_count) == (0.0, 1, 1)


def test_undo_is_refused_late_or_after_review(make_project, make_items, annotator, lead, api):
    make_items(2)
    project = make_project(members=[annotator])
    client = api(annotator)
    first = client.post(url(project, "next")).json()["utterance"]["id"]
    made = submit(client, project, first)["annotation"]["id"]
    Annotation.objects.filter(pk=made).update(created_at=Annotation.objects.get(pk=made).created_at - timedelta(seconds=d.UNDO_WINDOW_SECONDS + 1))
    late = client.post(url(project, "undo"), {"annotation": made}, format="json")
    assert late.status_code == 409 and late.json()["code"] == "undo_too_late" and "history" in late.json()["detail"]
    second = submit(client, project, client.post(url(project, "next")).json()["utterance"]["id"])["annotation"]["id"]
    item_adjudicate(project=project, utterance_id=Annotation.objects.get(pk=second).utterance_id, user=lead, value={"emotion": "joy"})
    reviewed = client.post(url(project, "undo"), {"annotation": second}, format="json")
    assert reviewed.status_code == 409 and reviewed.json()["code"] == "already_reviewed"
    assert Annotation.objects.filter(pk__in=[made, second]).count() == 2


def test_revisit_a_skipped_item_while_it_needs_answers(make_project, make_items, annotator, make_user, api):
    utterances = make_items(3)
    project = make_project(overlap=1, members=[annotator])
    client = api(annotator)
    first = client.post(url(project, "next")).json()["utterance"]["id"]
    skipped = client.post(url(project, "skip"), {"utterance": first, "reason": "later", "next": True}, format="json").json()
    assert skipped["next"]["utterance"]["id"] == utterances[1].pk
    mine = client.get(url(project, "my-skips")).json()["results"]
    assert [(s["utterance"], s["reason"], s["language"]) for s in mine] == [(first, "later", "en")]

    revisit = client.post(f"{url(project, 'my-skips')}{first}/revisit/")
    assert revisit.status_code == 200 and revisit.json()["utterance"] == first
    assert counters(project, utterances[0]) == (0, 1) and counters(project, utterances[1]) == (0, 0)
    assert not Skip.objects.filter(project=project).exists()
    assert client.post(url(project, "next")).json()["utterance"]["id"] == first
    assert client.get(url(project, "my-skips")).json()["results"] == []
    # Not skipped (any more): nothing to revisit.
    assert client.post(f"{url(project, 'my-skips')}{first}/revisit/").status_code == 404


def test_a_skipped_item_others_finished_cannot_be_revisited(make_project, make_items, annotator, make_user, api):
    utterances = make_items(2)
    other = make_user("other")
    project = make_project(overlap=1, members=[annotator, other])
    client = api(annotator)
    client.post(url(project, "next"))
    client.post(url(project, "skip"), {"utterance": utterances[0].pk, "reason": "unsure"}, format="json")
    submit(api(other), project, api(other).post(url(project, "next")).json()["utterance"]["id"])
    assert client.get(url(project, "my-skips")).json()["results"] == []  # complete: not listed
    refused = client.post(f"{url(project, 'my-skips')}{utterances[0].pk}/revisit/")
    assert refused.status_code == 409 and refused.json()["code"] == "item_complete"
    assert Reservation.objects.get(project=project, annotator=annotator, utterance=utterances[0]).status == ReservationStatus.SKIPPED


def test_reviewers_close_flags_with_a_note_or_dismiss_them(make_project, make_items, annotator, reviewer, lead, api):
    utterances = make_items(2)
    project = make_project(members=[annotator])
    membership_set(project=project, user=reviewer, role="reviewer")
    client = api(annotator)
    client.post(url(project, "next"))
    flags = [
        client.post(url(project, "flag"), {"utterance": utterances[0].pk, "note": note}, format="json").json()["id"]
        for note in ("wrong language", "typo in the text")
    ]
    resolve = f"{url(project, 'flags')}{flags[0]}/resolve/"
    assert client.post(resolve, {"note": "mine"}, format="json").status_code == 404  # annotators cannot
    assert api(reviewer).post(resolve, {"note": "x" * 2001}, format="json").status_code == 400
    done = api(reviewer).post(resolve, {"note": "Moved to the Hindi corpus"}, format="json")
    assert done.status_code == 200
    assert (done.json()["resolved"], done.json()["dismissed"], done.json()["resolution_note"]) == (True, False, "Moved to the Hindi corpus")
    dismissed = api(lead).post(f"{url(project, 'flags')}{flags[1]}/resolve/", {"dismiss": True, "note": "It is fine"}, format="json")
    assert dismissed.json()["dismissed"] is True
    flag = Flag.objects.get(pk=flags[1])
    assert flag.resolved and flag.resolved_by == lead and flag.resolution_note == "It is fine"
    # Closing again keeps the first closing; a later note is still recorded.
    again = api(reviewer).post(f"{url(project, 'flags')}{flags[1]}/resolve/", {"note": "Checked twice"}, format="json").json()
    assert again["dismissed"] is True and again["resolution_note"] == "Checked twice"
    assert Flag.objects.get(pk=flags[1]).resolved_by == lead
