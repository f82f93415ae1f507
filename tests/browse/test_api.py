"""The item browser's API: who may use it, every filter, keyset pages, one item with its history, bad parameters."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotation.models import ProjectQualityPolicy
from tests.browse.conftest import BrowseWorld

pytestmark = pytest.mark.django_db


def items(client, world: BrowseWorld, **params) -> list[dict]:  # type: ignore[no-untyped-def]
    response = client.get(f"/api/projects/{world.project.pk}/items/", params)
    assert response.status_code == 200, response.content
    return response.json()["results"]


def ids(rows: list[dict]) -> list[int]:
    return [row["utterance_id"] for row in rows]


def test_only_leads_reviewers_and_staff_browse(browse_world, client_for, make_user):
    url = f"/api/projects/{browse_world.project.pk}/items/"
    assert client_for(browse_world.outsider).get(url).status_code == 404
    assert client_for(browse_world.raters[0]).get(url).status_code == 403
    assert client_for(browse_world.reviewer).get(url).status_code == 200
    assert client_for(browse_world.lead).get(url).status_code == 200
    assert client_for(make_user("root", is_staff=True)).get(url).status_code == 200
    detail = f"/api/projects/{browse_world.project.pk}/items/{browse_world.utterances[0].pk}/"
    assert client_for(browse_world.outsider).get(detail).status_code == 404
    assert client_for(browse_world.raters[0]).get(detail).status_code == 403


def test_every_item_once_in_id_order_with_its_row(browse_world, client_for):
    rows = items(client_for(browse_world.lead), browse_world)
    assert ids(rows) == [u.pk for u in browse_world.utterances]
    first = rows[0]
    assert first["text"] == "Line 0 of the talk about the harbour"
    assert (first["language"], first["direction"], first["speaker"], first["conversation"], first["split"]) == (
        "en", "ltr", "ravi", "talk-1", "train"
    )
    assert (first["annotation_count"], first["target_count"], first["agreement"], first["status"]) == (2, 2, 1.0, "complete")
    by_id = {row["utterance_id"]: row for row in rows}
    assert by_id[browse_world.utterances[3].pk]["agreement"] == 0.5
    assert by_id[browse_world.utterances[4].pk]["status"] == "in_progress"
    assert by_id[browse_world.utterances[4].pk]["agreement"] is None
    assert by_id[browse_world.flagged.pk]["status"] == "flagged" and by_id[browse_world.flagged.pk]["open_flags"] == 1
    assert by_id[browse_world.adjudicated.pk]["status"] == "adjudicated"
    assert by_id[browse_world.gold.pk]["status"] == "gold" and by_id[browse_world.gold.pk]["is_gold"]
    assert by_id[browse_world.utterances[8].pk]["status"] == "unassigned"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"q": "HARBOUR"}, lambda w: [u.pk for u in w.utterances if u.language.code == "en"]),
        ({"q": "खुशी"}, lambda w: [u.pk for u in w.utterances if u.language.code == "hi"]),
        ({"language": "hi"}, lambda w: [u.pk for u in w.utterances if u.language.code == "hi"]),
        ({"speaker": "asha"}, lambda w: [u.pk for i, u in enumerate(w.utterances) if i % 2]),
        ({"conversation": "talk-1"}, lambda w: [u.pk for u in w.utterances]),
        ({"conversation": "another"}, lambda w: []),
        ({"split": "test"}, lambda w: [u.pk for u in w.utterances[9:]]),
        ({"status": "complete"}, lambda w: [u.pk for u in w.utterances[:4]]),
        ({"status": "in_progress"}, lambda w: [w.utterances[4].pk]),
        ({"status": "unassigned"}, lambda w: [u.pk for u in w.utterances[5:11]]),
        ({"status": "gold"}, lambda w: [w.gold.pk]),
        ({"status": "flagged"}, lambda w: [w.flagged.pk]),
        ({"status": "adjudicated"}, lambda w: [w.adjudicated.pk]),
        ({"label": "anger"}, lambda w: [w.utterances[1].pk, w.utterances[3].pk, w.gold.pk]),
        ({"label": "joy", "language": "en"}, lambda w: [w.utterances[0].pk, w.utterances[1].pk, w.utterances[4].pk]),
        ({"agreement_below": "0.75"}, lambda w: [w.utterances[1].pk, w.utterances[3].pk]),
        ({"uncertainty_above": "0.5"}, lambda w: [w.utterances[3].pk]),
        ({"sort": "uncertainty"}, lambda w: [w.utterances[3].pk, w.utterances[7].pk]),
    ],
)
def test_filters(browse_world, client_for, params, expected):
    assert ids(items(client_for(browse_world.reviewer), browse_world, **params)) == expected(browse_world)


def test_multi_label_answers_match_the_label_filter(browse_world, client_for):
    """Item 0's first answer chose "joy" in the multi-label question too; item 2's only in no question: label=joy
    finds item 0 through either question, never item 2 (sadness twice)."""
    found = ids(items(client_for(browse_world.lead), browse_world, label="joy"))
    assert browse_world.utterances[0].pk in found and browse_world.utterances[2].pk not in found


def test_keyset_pages_cover_every_item_once_in_each_sort(browse_world, client_for):
    client = client_for(browse_world.lead)
    for sort in ("id", "agreement", "uncertainty"):
        seen, cursor, pages = [], "", 0
        while True:
            response = client.get(f"/api/projects/{browse_world.project.pk}/items/", {"sort": sort, "page_size": 3, "cursor": cursor})
            assert response.status_code == 200
            body = response.json()
            seen += ids(body["results"])
            pages += 1
            if body["next_cursor"] is None:
                break
            cursor = body["next_cursor"]
        whole = ids(items(client, browse_world, sort=sort, page_size=200))
        assert seen == whole and len(set(seen)) == len(seen), sort
        assert pages == -(-len(whole) // 3) or len(whole) % 3 == 0
    agreement = items(client, browse_world, sort="agreement")
    assert [row["utterance_id"] for row in agreement[:2]] == [browse_world.utterances[3].pk, browse_world.utterances[1].pk]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "done"}, "status"),
        ({"sort": "random"}, "sort"),
        ({"agreement_below": "high"}, "agreement_below"),
        ({"uncertainty_above": "2"}, "uncertainty_above"),
        ({"q": "x" * 201}, "q"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "WzEsMl0"}, "cursor"),  # [1, 2]: a cursor of another sort
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "many"}, "page_size"),
    ],
)
def test_bad_parameters_are_named(browse_world, client_for, params, field):
    response = client_for(browse_world.lead).get(f"/api/projects/{browse_world.project.pk}/items/", params)
    assert response.status_code == 400
    assert field in response.json()


def test_one_item_with_context_annotations_gold_and_history(browse_world, client_for):
    lead = client_for(browse_world.lead)
    gold = lead.get(f"/api/projects/{browse_world.project.pk}/items/{browse_world.gold.pk}/").json()
    assert gold["gold"] == {"expected": {"emotion": "joy"}, "numeric_tolerance": 0.0}
    assert [(a["rater"], a["gold_correct"]) for a in gold["annotations"]] == [("bilal_annotator", False)]
    assert [e["kind"] for e in gold["history"]] == ["gold_set", "handed", "annotated"]
    assert gold["item"]["is_gold"] and not gold["item"]["can_make_gold"]

    flagged = lead.get(f"/api/projects/{browse_world.project.pk}/items/{browse_world.flagged.pk}/").json()
    kinds = [e["kind"] for e in flagged["history"]]
    assert kinds == ["handed", "flagged", "skipped"]
    assert flagged["history"][-1]["note"] == "cannot tell"
    assert len(flagged["context"]) == 5 and flagged["context"][-1]["turn_index"] == flagged["item"]["turn_index"] - 1
    assert flagged["flags"][0]["note"] == "The audio cuts off" and not flagged["flags"][0]["resolved"]

    adjudicated = lead.get(f"/api/projects/{browse_world.project.pk}/items/{browse_world.adjudicated.pk}/").json()
    assert adjudicated["adjudications"][0]["value"] == {"emotion": "joy"}
    assert [a["lead_time_ms"] for a in adjudicated["annotations"]] == [4000, 4000]
    assert adjudicated["history"][-1]["kind"] == "adjudicated" and adjudicated["history"][-1]["note"] == "context says joy"

    predicted = lead.get(f"/api/projects/{browse_world.project.pk}/items/{browse_world.utterances[3].pk}/").json()
    assert predicted["predictions"][0]["model_version"] == "xlm-emo@1" and predicted["item"]["uncertainty"] == 0.9

    fresh = lead.get(f"/api/projects/{browse_world.project.pk}/items/{browse_world.utterances[8].pk}/").json()
    assert fresh["item"]["can_make_gold"] and fresh["annotations"] == [] and fresh["history"] == []
    # A reviewer may browse, but only leads make gold.
    as_reviewer = client_for(browse_world.reviewer).get(f"/api/projects/{browse_world.project.pk}/items/{browse_world.utterances[8].pk}/")
    assert not as_reviewer.json()["item"]["can_make_gold"]
    assert lead.get(f"/api/projects/{browse_world.project.pk}/items/99999999/").status_code == 404


def test_reviewers_see_letters_unless_the_policy_shows_names(browse_world, client_for):
    url = f"/api/projects/{browse_world.project.pk}/items/{browse_world.utterances[1].pk}/"
    hidden = client_for(browse_world.reviewer).get(url).json()
    assert [a["rater"] for a in hidden["annotations"]] == ["Annotator A", "Annotator B"]
    assert {e["who"] for e in hidden["history"]} == {"Annotator A", "Annotator B", "a reviewer"}
    ProjectQualityPolicy.objects.create(project=browse_world.project, show_annotator_names_to_reviewers=True)
    shown = client_for(browse_world.reviewer).get(url).json()
    assert [a["rater"] for a in shown["annotations"]] == ["anika_annotator", "bilal_annotator"]
    assert shown["history"][-1]["who"] == "lena_lead"


def test_facts_name_the_schema_languages_and_role(browse_world, client_for):
    facts = client_for(browse_world.reviewer).get(f"/api/projects/{browse_world.project.pk}/items/facts/").json()
    assert facts["role"] == "reviewer" and not facts["can_manage"]
    assert [q["key"] for q in facts["questions"]] == ["emotion", "also", "valence"]
    assert [lang["code"] for lang in facts["languages"]] == ["en", "hi"]
    assert facts["items"] == 12
    assert client_for(browse_world.lead).get(f"/api/projects/{browse_world.project.pk}/items/facts/").json()["can_manage"]


def test_the_list_query_count_does_not_grow_with_rows(browse_world, client_for):
    client = client_for(browse_world.lead)
    url = f"/api/projects/{browse_world.project.pk}/items/"

    def count(**params) -> tuple[int, int]:  # type: ignore[no-untyped-def]
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url, params)
        assert response.status_code == 200
        return len(queries), len(response.json()["results"])

    few, rows_few = count(page_size=1, label="joy", status="complete")
    many, rows_many = count(page_size=200, label="joy", status="complete")
    assert rows_few < rows_many
    assert few == many
    plain_few, _ = count(page_size=2)
    plain_many, rows = count(page_size=200)
    assert rows == 12 and plain_few == plain_many
    # Authentication, the project with the caller's role, then one query for the page.
    assert plain_many <= 4


@pytest.mark.postgres("pg_statistic_ext and pg_indexes are PostgreSQL catalogues")
def test_text_search_gets_planner_statistics_and_no_insert_time_index():
    """Migration 0006: statistics on UPPER(text) (the planner's estimate for a search), but no GIN index that every
    imported utterance would pay for (see annotation/browse/README.md)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_statistic_ext WHERE stxname = 'utterance_text_upper_stats'")
        assert cursor.fetchone() is not None
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'corpora_utterance'")
        assert not [row for (row,) in cursor.fetchall() if "gin" in row.lower()]
