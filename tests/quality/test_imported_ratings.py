"""Agreement on any corpus: the imported ratings (project = none) through the corpus API, a project that counts
them as raters, "none of these" answers over the annotate API, and the gold rule chosen through the policy API."""

from __future__ import annotations

import pytest

from annotation.models import AggregatedLabel, Annotation, LabelSchemaVersion
from annotation.quality.selectors import quality_source_for_project
from annotation.quality.services import agreement_report_compute, quality_policy_update
from annotation.services import annotation_create, label_schema_create, membership_set, project_create

from .conftest import utterance_make

pytestmark = pytest.mark.django_db

QUESTIONS = [{"key": "emotions", "type": "multi_label", "labels": ["anger", "joy", "sadness"], "intensity": True}]


@pytest.fixture
def imported(quality_world):  # type: ignore[no-untyped-def]
    """Four external raters' intensities on a second schema, imported with the quality world's corpus."""
    version = label_schema_create(name="Graded", slug="graded", questions=QUESTIONS)
    answers = [
        ({"anger": 2, "joy": 0, "sadness": 0}, {"anger": 3, "joy": 0, "sadness": 0}, {"anger": 0, "joy": 0, "sadness": 0},
         {"anger": 2, "joy": 1, "sadness": 0}),
        ({"anger": 0, "joy": 0, "sadness": 0}, {"anger": 0, "joy": 0, "sadness": 0}, {"anger": 0, "joy": 0, "sadness": 0},
         {"anger": 0, "joy": 2, "sadness": 0}),
        ({"anger": 0, "joy": 3, "sadness": 0}, {"anger": 0, "joy": 2, "sadness": None}, {"anger": 0, "joy": 3, "sadness": 0},
         {"anger": 0, "joy": 0, "sadness": 1}),
    ]
    utterances = []
    for i, row in enumerate(answers):
        utterance = utterance_make(quality_world.corpus, f"imported {i}", "mr")
        utterances.append(utterance)
        for rater, value in zip(("a1", "a2", "a3", "a4"), row):
            annotation_create(utterance=utterance, schema_version=version, external_rater=rater,
                              value={"emotions": value})
    return version, utterances


def test_leads_read_the_corpus_report_others_do_not(quality_world, imported, api):  # type: ignore[no-untyped-def]
    version, _ = imported
    url = f"/api/corpora/{quality_world.corpus.pk}/agreement/"
    response = api(quality_world.lead).get(url, {"schema_version": version.pk, "n_resamples": 50})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["corpus_id"] == quality_world.corpus.pk and body["schema_version"] == version.pk
    assert {v["id"]: v["annotations"] for v in body["schema_versions"]} == {version.pk: 12}
    block = body["report"]["questions"][0]["perspectives"][0]
    assert block["level"] == "masi" and block["alpha"]["interval"] is not None
    assert {row["rater"] for row in block["annotators"]} == {"a1", "a2", "a3", "a4"}
    assert set(block["by_label_language"]["anger"][0]) >= {"language", "alpha", "interval_low", "interval_high"}
    assert block["aggregation"]["n_none_of_these"] == 1  # three of four said "no emotion" on the second item
    assert block["counts"]["n_unknown_label_sets"] == 1  # a2 left sadness blank where others answered it
    # Without a version the one with the most imported ratings is reported.
    assert api(quality_world.lead).get(url).json()["schema_version"] == version.pk
    bad = api(quality_world.lead).get(url, {"schema_version": 999999})
    assert bad.status_code == 400 and "schema_version" in bad.json()
    assert api(quality_world.annotator).get(url).status_code == 403  # sees the corpus, is not its lead
    assert api(quality_world.outsider).get(url).status_code == 404


def test_corpus_page_is_for_the_same_people(quality_world, imported, client):  # type: ignore[no-untyped-def]
    for user, code in ((quality_world.lead, 200), (quality_world.annotator, 403), (quality_world.outsider, 404)):
        client.force_login(user)
        assert client.get(f"/corpora/{quality_world.corpus.pk}/quality/").status_code == code


def test_a_project_can_count_the_imported_ratings(quality_world, imported, lead):  # type: ignore[no-untyped-def]
    version, utterances = imported
    project = project_create(name="On imported", corpus=quality_world.corpus, schema_version=version,
                             created_by=lead, overlap=4)
    source = quality_source_for_project(project)
    report = agreement_report_compute(source=source, n_resamples=0).result
    assert report["totals"]["annotations"] == 0  # imported ratings are not the project's by default
    quality_policy_update(project=project, include_imported_ratings=True)
    source = quality_source_for_project(project)
    report = agreement_report_compute(source=source, n_resamples=0).result
    assert report["totals"]["annotations"] == 12 and report["totals"]["human_raters"] == 4
    gold = {a.utterance_id: a for a in AggregatedLabel.objects.filter(project=project)}
    assert gold[utterances[0].pk].value == {"anger": 2}  # anger by 3 of 4 (levels 2, 3, 2: lower median 2)
    assert gold[utterances[1].pk].value == {}  # "no emotion" by three of four
    # The mean-intensity rule: anger's mean over four raters is 1.75; joy's on the third item is 2.0.
    quality_policy_update(project=project, multi_label_rule="mean_intensity", intensity_threshold=1.5)
    agreement_report_compute(source=source, n_resamples=0)
    gold = {a.utterance_id: a for a in AggregatedLabel.objects.filter(project=project)}
    assert gold[utterances[0].pk].value == {"anger": 2} and gold[utterances[2].pk].value == {"joy": 2}
    assert gold[utterances[0].pk].method == "mean>=1.5"


def test_the_policy_api_takes_the_gold_rules(quality_world, api):  # type: ignore[no-untyped-def]
    url = f"/api/projects/{quality_world.project.pk}/quality-policy/"
    changed = api(quality_world.lead).patch(url, {"multi_label_rule": "mean_intensity", "intensity_threshold": 1.0,
                                                  "intensity_threshold_inclusive": False, "multi_label_share": 0.25,
                                                  "include_imported_ratings": True}, format="json")
    assert changed.status_code == 200, changed.content
    assert changed.json()["multi_label_rule"] == "mean_intensity" and changed.json()["include_imported_ratings"]
    for body, field in (({"multi_label_rule": "vote"}, "multi_label_rule"), ({"intensity_threshold": 4}, "intensity_threshold"),
                        ({"multi_label_share": 1}, "multi_label_share")):
        refused = api(quality_world.lead).patch(url, body, format="json")
        assert refused.status_code == 400 and field in refused.json(), refused.content
    assert api(quality_world.reviewer).patch(url, {"multi_label_rule": "share"}, format="json").status_code == 403


def test_none_of_these_through_the_annotate_api(quality_world, api, lead):  # type: ignore[no-untyped-def]
    from corpora.models import Corpus

    corpus = Corpus.objects.create(name="Fresh", slug="fresh", license="CC0-1.0")
    utterance_make(corpus, "nothing to feel here", "en")
    project = project_create(name="Fresh", corpus=corpus, schema_version=quality_world.schema, created_by=lead)
    annotator = quality_world.annotator
    membership_set(project=project, user=annotator, role="annotator")
    client = api(annotator)
    item = client.post(f"/api/projects/{project.pk}/next/").json()
    submitted = client.post(f"/api/projects/{project.pk}/submit/", {
        "client_id": "6f1c1d55-55b6-4f2b-9a55-2f8f1a1c0001", "utterance": item["utterance"]["id"],
        "value": {"emotion": "neutral", "emotions": {}}}, format="json")
    assert submitted.status_code == 201, submitted.content
    stored = Annotation.objects.get(pk=submitted.json()["annotation"]["id"])
    assert stored.value == {"emotion": "neutral", "emotions": {}}  # an answer, not a missing question
    assert LabelSchemaVersion.objects.get(pk=project.schema_version_id).questions[1]["type"] == "multi_label"


def test_reviewers_see_imported_ratings_side_by_side_when_counted(quality_world, imported, api, lead):  # type: ignore[no-untyped-def]
    version, utterances = imported
    project = project_create(name="Imported review", corpus=quality_world.corpus, schema_version=version,
                             created_by=lead, overlap=4)
    membership_set(project=project, user=quality_world.reviewer, role="reviewer")
    quality_policy_update(project=project, include_imported_ratings=True)
    item = api(quality_world.reviewer).get(f"/api/projects/{project.pk}/review-queue/{utterances[0].pk}/").json()
    assert len(item["annotations"]) == 4
    decided = api(quality_world.reviewer).post(
        f"/api/projects/{project.pk}/review-queue/{utterances[0].pk}/adjudicate/", {"value": {"emotions": {"anger": 3}}},
        format="json")
    assert decided.status_code == 200, decided.content
