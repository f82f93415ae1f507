"""Agreement, review queue and adjudication over HTTP: permissions by persona, names hidden by policy, 400s."""

from __future__ import annotations

import json

import pytest

from annotation.distribution.services import project_items_sync
from annotation.models import (
    Adjudication,
    Annotation,
    Flag,
    Origin,
    ProjectItem,
    ProjectQualityPolicy,
)
from annotation.quality.selectors import quality_source_for_project
from annotation.quality.services import agreement_report_compute, quality_policy_update
from annotation.services import annotation_create, label_schema_create
from jobs import dispatch
from workers.tasks import compute_agreement

from .conftest import utterance_make

pytestmark = pytest.mark.django_db


def _url(world, tail: str = "agreement/") -> str:  # type: ignore[no-untyped-def]
    return f"/api/projects/{world.project.pk}/{tail}"


@pytest.fixture
def no_delay(monkeypatch):  # type: ignore[no-untyped-def]
    """Record what would go to the broker; the job itself is run by calling the task with its id."""
    sent: list[int] = []
    monkeypatch.setattr(dispatch, "task_send", lambda task, job_id: sent.append(job_id))
    return sent


def _a_disputed_item(world):  # type: ignore[no-untyped-def]
    """An utterance where two annotators disagree completely, so its aggregated emotion is an open tie."""
    utterance = utterance_make(world.corpus, "disputed", "en")
    for rater, emotion in zip(world.raters[:2], ["joy", "anger"]):
        annotation_create(utterance=utterance, schema_version=world.schema, project=world.project, annotator=rater,
                          value={"emotion": emotion})
    return utterance


def _an_agreed_item(world):  # type: ignore[no-untyped-def]
    utterance = utterance_make(world.corpus, "agreed", "en")
    for rater in world.raters:
        annotation_create(utterance=utterance, schema_version=world.schema, project=world.project, annotator=rater,
                          value={"emotion": "fear", "emotions": {"fear": 2}, "valence": 2.0})
    return utterance


@pytest.mark.parametrize("tail", ["agreement/", "review-queue/", "quality-policy/"])
def test_outsiders_get_404_and_annotators_403(quality_world, api, tail):  # type: ignore[no-untyped-def]
    assert api(quality_world.outsider).get(_url(quality_world, tail)).status_code == 404
    assert api(quality_world.annotator).get(_url(quality_world, tail)).status_code == 403
    assert api(quality_world.reviewer).get(_url(quality_world, tail)).status_code == 200


def test_small_project_is_computed_in_the_request_and_cached(quality_world, api, settings):  # type: ignore[no-untyped-def]
    settings.AGREEMENT_SYNC_MAX_ANNOTATIONS = 10_000
    settings.AGREEMENT_N_RESAMPLES = 100
    client = api(quality_world.lead)
    first = client.get(_url(quality_world))
    assert first.status_code == 200
    assert first.data["computed_now"] is True and first.data["stale"] is False and first.data["job"] is None
    emotion = next(q for q in first.data["report"]["questions"] if q["key"] == "emotion")
    assert emotion["perspectives"][0]["alpha"]["n_resamples"] == 100
    second = client.get(_url(quality_world))
    assert second.data["computed_now"] is False and second.data["computed_at"] == first.data["computed_at"]

    _a_disputed_item(quality_world)
    third = client.get(_url(quality_world))
    assert third.data["computed_now"] is True
    assert third.data["report_annotation_count"] == first.data["report_annotation_count"] + 2


def test_large_project_goes_to_the_job(quality_world, api, settings, django_capture_on_commit_callbacks, no_delay):  # type: ignore[no-untyped-def]
    settings.AGREEMENT_SYNC_MAX_ANNOTATIONS = 0
    client = api(quality_world.reviewer)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.get(_url(quality_world))
    assert response.status_code == 202 and response.data["report"] is None
    job_id = response.data["job"]["id"]
    assert no_delay == [job_id] and response.data["job"]["kind"] == "agreement"
    with django_capture_on_commit_callbacks(execute=True):
        assert client.get(_url(quality_world)).data["job"]["id"] == job_id  # still running: not enqueued again
    assert no_delay == [job_id]

    compute_agreement(job_id)
    fresh = client.get(_url(quality_world))
    assert fresh.status_code == 200 and fresh.data["stale"] is False and fresh.data["job"] is None
    assert fresh.data["report"]["questions"][0]["perspectives"][0]["alpha"]["alpha"] is not None

    _a_disputed_item(quality_world)
    with django_capture_on_commit_callbacks(execute=True):
        stale = client.get(_url(quality_world))
    assert stale.status_code == 200 and stale.data["stale"] is True  # the old report meanwhile, and a new job
    assert stale.data["job"]["id"] != job_id and no_delay[-1] == stale.data["job"]["id"]


def test_refresh_enqueues_a_job_with_the_requested_resamples(quality_world, api, django_capture_on_commit_callbacks, no_delay):  # type: ignore[no-untyped-def]
    with django_capture_on_commit_callbacks(execute=True):
        response = api(quality_world.lead).get(_url(quality_world) + "?refresh=1&n_resamples=20&seed=4")
    assert response.status_code == 202
    assert response.data["job"]["status"] == "pending" and no_delay == [response.data["job"]["id"]]
    compute_agreement(response.data["job"]["id"])
    done = api(quality_world.lead).get(_url(quality_world))
    assert done.data["params"]["n_resamples"] == 20 and done.data["params"]["seed"] == 4


def test_bad_parameters_name_the_field(quality_world, api):  # type: ignore[no-untyped-def]
    response = api(quality_world.lead).get(_url(quality_world) + "?n_resamples=lots")
    assert response.status_code == 400 and "n_resamples" in response.data
    response = api(quality_world.lead).get(_url(quality_world) + "?refresh=1&n_resamples=999999999")
    assert response.status_code == 400 and "n_resamples" in response.data


def test_reviewers_see_pseudonyms_unless_the_policy_shows_names(quality_world, api, settings):  # type: ignore[no-untyped-def]
    settings.AGREEMENT_N_RESAMPLES = 0
    usernames = [rater.username for rater in quality_world.raters]
    hidden = json.dumps(api(quality_world.reviewer).get(_url(quality_world)).data["report"])
    assert not any(name in hidden for name in usernames) and "Annotator 1" in hidden
    assert not any(f"user:{rater.pk}" in hidden for rater in quality_world.raters)
    as_lead = json.dumps(api(quality_world.lead).get(_url(quality_world)).data["report"])
    assert all(name in as_lead for name in usernames)

    quality_policy_update(project=quality_world.project, show_annotator_names_to_reviewers=True)
    shown = json.dumps(api(quality_world.reviewer).get(_url(quality_world)).data["report"])
    assert all(name in shown for name in usernames)


def test_review_queue_holds_flagged_and_disputed_items_not_agreed_ones(quality_world, api, settings, django_assert_max_num_queries):  # type: ignore[no-untyped-def]
    settings.AGREEMENT_N_RESAMPLES = 0
    disputed, agreed = _a_disputed_item(quality_world), _an_agreed_item(quality_world)
    flagged = quality_world.utterances[1]
    item, _ = ProjectItem.objects.get_or_create(  # the project may already have made its items
        project=quality_world.project, utterance=flagged,
        defaults={"language": flagged.language, "target_count": 4, "annotation_count": 0, "random_key": 1},
    )
    Flag.objects.create(project=quality_world.project, item=item, created_by=quality_world.annotator, note="audio broken")
    agreement_report_compute(source=quality_source_for_project(quality_world.project), n_resamples=0)

    with django_assert_max_num_queries(8):  # a page costs the same few queries however long the queue is
        response = api(quality_world.reviewer).get(_url(quality_world, "review-queue/"))
    assert response.status_code == 200
    entries = {row["utterance_id"]: row for row in response.data["results"]}
    assert response.data["results"][0]["utterance_id"] == flagged.pk  # flags first
    assert "flagged" in entries[flagged.pk]["reasons"]
    assert entries[disputed.pk]["reasons"] == ["tie"] and entries[disputed.pk]["open_ties"] >= 1
    assert agreed.pk not in entries


def test_side_by_side_hides_names_by_policy(quality_world, api, settings):  # type: ignore[no-untyped-def]
    disputed = _a_disputed_item(quality_world)
    url = _url(quality_world, f"review-queue/{disputed.pk}/")
    hidden = api(quality_world.reviewer).get(url)
    assert hidden.status_code == 200
    assert [a["rater"] for a in hidden.data["annotations"]] == ["Annotator A", "Annotator B"]
    assert not any(r.username in json.dumps(hidden.data, default=str) for r in quality_world.raters[:2])
    assert [a["value"]["emotion"] for a in hidden.data["annotations"]] == ["joy", "anger"]
    assert [a["rater"] for a in api(quality_world.lead).get(url).data["annotations"]] == [
        r.username for r in quality_world.raters[:2]
    ]
    ProjectQualityPolicy.objects.create(project=quality_world.project, show_annotator_names_to_reviewers=True)
    shown = api(quality_world.reviewer).get(url)
    assert [a["rater"] for a in shown.data["annotations"]] == [r.username for r in quality_world.raters[:2]]
    assert api(quality_world.annotator).get(url).status_code == 403
    assert api(quality_world.outsider).get(url).status_code == 404
    assert api(quality_world.reviewer).get(_url(quality_world, "review-queue/99999999/")).status_code == 404


def test_side_by_side_shows_the_corpus_imported_ratings_marked(quality_world, api):  # type: ignore[no-untyped-def]
    """A reviewer settling a tie sees what the source's raters said: imported ratings come after the project's own
    answers, marked imported, and counted only when the policy includes them."""
    disputed = _a_disputed_item(quality_world)
    for rater, emotion in (("src-7", "anger"), ("src-9", "anger")):
        annotation_create(utterance=disputed, schema_version=quality_world.schema, external_rater=rater,
                          value={"emotion": emotion})
    other_version = label_schema_create(name="Other", slug="other-emotions",
                                        questions=[{"key": "mood", "type": "single_choice", "labels": ["up", "down"]}])
    annotation_create(utterance=disputed, schema_version=other_version, external_rater="src-1", value={"mood": "up"})
    url = _url(quality_world, f"review-queue/{disputed.pk}/")

    body = api(quality_world.reviewer).get(url).data
    rows = [(a["rater"], a["imported"], a["counted"], a["value"]["emotion"]) for a in body["annotations"]]
    assert rows == [("Annotator A", False, True, "joy"), ("Annotator B", False, True, "anger"),
                    ("Annotator C", True, False, "anger"), ("Annotator D", True, False, "anger")]
    assert [a["rater"] for a in api(quality_world.lead).get(url).data["annotations"]][2:] == ["src-7", "src-9"]

    ProjectQualityPolicy.objects.create(project=quality_world.project, include_imported_ratings=True)
    counted = api(quality_world.reviewer).get(url).data["annotations"]
    assert [(a["imported"], a["counted"]) for a in counted] == [(False, True)] * 2 + [(True, True)] * 2
    project_items_sync(quality_world.project)  # the utterance came after the project: make it an item
    detail = api(quality_world.reviewer).get(f"/api/projects/{quality_world.project.pk}/items/{disputed.pk}/").data
    assert [a["imported"] for a in detail["annotations"]] == [False, False, True, True]
    assert [e["kind"] for e in detail["history"]].count("annotated") == 2  # imported ratings are not item events


def test_adjudication_stores_provenance_and_leaves_the_queue(quality_world, api, settings):  # type: ignore[no-untyped-def]
    settings.AGREEMENT_N_RESAMPLES = 0
    disputed = _a_disputed_item(quality_world)
    agreement_report_compute(source=quality_source_for_project(quality_world.project), n_resamples=0)
    url = _url(quality_world, f"review-queue/{disputed.pk}/adjudicate/")
    response = api(quality_world.reviewer).post(url, {"value": {"emotion": "anger"}, "note": "tone is angry"}, format="json")
    assert response.status_code == 200, response.data
    human = list(Annotation.objects.filter(utterance=disputed, origin=Origin.HUMAN).order_by("id"))
    assert response.data["resolved_annotations"] == [a.pk for a in human]
    adjudication = Adjudication.objects.get(project=quality_world.project, utterance=disputed)
    assert adjudication.value == {"emotion": "anger"} and adjudication.decided_by == quality_world.reviewer
    assert all(a.reviewed_by == quality_world.reviewer and a.reviewed_at is not None for a in human)
    queue = api(quality_world.reviewer).get(_url(quality_world, "review-queue/")).data["results"]
    assert disputed.pk not in [row["utterance_id"] for row in queue]

    again = api(quality_world.lead).post(url, {"value": {"emotion": "joy"}, "annotation_ids": [human[0].pk]}, format="json")
    assert again.status_code == 200 and again.data["resolved_annotations"] == [human[0].pk]
    assert Adjudication.objects.filter(utterance=disputed).count() == 1  # a new decision replaces the old one
    assert Adjudication.objects.get(utterance=disputed).value == {"emotion": "joy"}


def test_adjudication_errors_and_permissions(quality_world, api):  # type: ignore[no-untyped-def]
    disputed = _a_disputed_item(quality_world)
    url = _url(quality_world, f"review-queue/{disputed.pk}/adjudicate/")
    reviewer = api(quality_world.reviewer)
    bad_label = reviewer.post(url, {"value": {"emotion": "bliss"}}, format="json")
    assert bad_label.status_code == 400 and "emotion" in bad_label.data["value"]
    bad_perspective = reviewer.post(url, {"value": {"emotion": "joy"}, "perspective": "listener"}, format="json")
    assert bad_perspective.status_code == 400 and "perspective" in bad_perspective.data
    foreign = Annotation.objects.exclude(utterance=disputed).first()
    bad_ids = reviewer.post(url, {"value": {"emotion": "joy"}, "annotation_ids": [foreign.pk]}, format="json")
    assert bad_ids.status_code == 400 and "annotation_ids" in bad_ids.data
    missing = reviewer.post(url, {"note": "no value"}, format="json")
    assert missing.status_code == 400 and "value" in missing.data
    assert not Adjudication.objects.exists()  # nothing was written by the bad requests

    assert api(quality_world.annotator).post(url, {"value": {"emotion": "joy"}}, format="json").status_code == 403
    assert api(quality_world.outsider).post(url, {"value": {"emotion": "joy"}}, format="json").status_code == 404
    unannotated = utterance_make(quality_world.corpus, "nobody labelled me", "en")
    response = reviewer.post(_url(quality_world, f"review-queue/{unannotated.pk}/adjudicate/"),
                             {"value": {"emotion": "joy"}}, format="json")
    assert response.status_code == 404
    assert not Adjudication.objects.exists()


def test_only_leads_change_the_policy(quality_world, api):  # type: ignore[no-untyped-def]
    url = _url(quality_world, "quality-policy/")
    assert api(quality_world.reviewer).patch(url, {"tie_policy": "random"}, format="json").status_code == 403
    bad = api(quality_world.lead).patch(url, {"review_confidence_below": 3}, format="json")
    assert bad.status_code == 400 and "review_confidence_below" in bad.data
    ok = api(quality_world.lead).patch(url, {"aggregation_method": "dawid_skene"}, format="json")
    assert ok.status_code == 200 and ok.data["aggregation_method"] == "dawid_skene"
    report = agreement_report_compute(source=quality_source_for_project(quality_world.project), n_resamples=0)
    emotion = next(q for q in report.result["questions"] if q["key"] == "emotion")
    assert emotion["perspectives"][0]["aggregation"]["method"] == "dawid_skene"


def test_openapi_schema_lists_the_quality_endpoints(quality_world, api):  # type: ignore[no-untyped-def]
    response = api(quality_world.lead).get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    paths = json.loads(response.content)["paths"]
    for tail in ("agreement/", "review-queue/", "review-queue/{utterance_id}/", "review-queue/{utterance_id}/adjudicate/"):
        assert f"/api/projects/{{project_id}}/{tail}" in paths
