"""The review queue's filters (reason, language) and its gold-disagreement reason, as the review screen uses them."""

from __future__ import annotations

import pytest

from annotation.distribution.services import gold_item_set
from tests.browse.conftest import BrowseWorld

pytestmark = pytest.mark.django_db


def queue(client, world: BrowseWorld, **params) -> list[dict]:  # type: ignore[no-untyped-def]
    response = client.get(f"/api/projects/{world.project.pk}/review-queue/", params)
    assert response.status_code == 200, response.content
    return response.json()["results"]


def test_queue_reasons_include_gold_disagreements(browse_world, client_for):
    rows = {row["utterance_id"]: row for row in queue(client_for(browse_world.reviewer), browse_world)}
    w = browse_world
    assert rows[w.flagged.pk]["reasons"] == ["flagged"]
    assert rows[w.utterances[3].pk]["reasons"] == ["low_agreement"]
    assert rows[w.gold.pk]["reasons"] == ["gold"] and rows[w.gold.pk]["gold_disagreement"] is True
    assert w.adjudicated.pk not in rows  # decided: out of the queue
    assert w.utterances[0].pk not in rows  # two answers that agree


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"reason": "flagged"}, lambda w: [w.flagged.pk]),
        ({"reason": "gold"}, lambda w: [w.gold.pk]),
        ({"reason": "low_agreement"}, lambda w: [w.utterances[3].pk]),
        ({"reason": "tie"}, lambda w: []),
        ({"reason": "flagged,gold"}, lambda w: [w.flagged.pk, w.gold.pk]),
        ({"language": "hi"}, lambda w: [w.utterances[3].pk, w.gold.pk]),
        ({"language": "en", "reason": "gold"}, lambda w: []),
    ],
)
def test_queue_filters(browse_world, client_for, params, expected):
    assert [row["utterance_id"] for row in queue(client_for(browse_world.lead), browse_world, **params)] == expected(browse_world)


def test_an_unknown_reason_is_named(browse_world, client_for):
    response = client_for(browse_world.lead).get(f"/api/projects/{browse_world.project.pk}/review-queue/", {"reason": "late"})
    assert response.status_code == 400 and "late" in response.json()["reason"][0]


def test_correcting_the_gold_answer_takes_the_item_out(browse_world, client_for):
    """The annotator said anger; the lead decides the known answer was wrong and sets it to anger."""
    w = browse_world
    gold_item_set(project=w.project, utterance_id=w.gold.pk, expected={"emotion": "anger"}, created_by=w.lead)
    assert w.gold.pk not in [row["utterance_id"] for row in queue(client_for(w.lead), w)]


def test_the_review_page_names_the_first_item_of_the_queue(browse_world, client):
    client.force_login(browse_world.reviewer)
    html = client.get(f"/projects/{browse_world.project.pk}/review/").content.decode()
    assert f'data-first-item="{browse_world.flagged.pk}"' in html  # flagged items come first
    asked = client.get(f"/projects/{browse_world.project.pk}/review/?item={browse_world.gold.pk}").content.decode()
    assert "data-first-item" not in asked  # the screen opens the item the URL names
