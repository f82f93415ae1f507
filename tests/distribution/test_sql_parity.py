"""The PostgreSQL hot path (SQL functions) must hand out, count and describe items exactly as the ORM services do.

Two twin projects over one corpus, with the same shuffle and the same scores, are driven through the same script:
one through ``annotation.distribution`` (what SQLite runs), one through ``annotation.distribution.postgres``.
"""

from __future__ import annotations

import json
import uuid

import pytest
from django.db import connection

from annotation.distribution import postgres as distribution_pg
from annotation.distribution import services as distribution
from annotation.distribution.api import NextItemSerializer
from annotation.distribution.selectors import item_view_get
from annotation.models import Prediction, ProjectItem, SuggestionPolicy
from annotation.schema import SchemaError
from annotation.services import label_schema_version_create
from corpora.models import Utterance

pytestmark = pytest.mark.postgres("the SQL functions exist on PostgreSQL only")

STRATEGIES = ["sequential", "random", "least_annotated", "disagreement", "uncertainty"]
LABELS = ["joy", "sadness", "anger"]


def _twin_projects(make_project, members, **options):  # type: ignore[no-untyped-def]
    orm_project = make_project(overlap=2, members=members, models=["m1", "m2"], **options)
    sql_project = make_project(overlap=2, members=members, models=["m1", "m2"], **options)
    for item in ProjectItem.objects.filter(project=orm_project):
        ProjectItem.objects.filter(project=sql_project, utterance_id=item.utterance_id).update(
            random_key=item.random_key, uncertainty=item.uncertainty
        )
    return orm_project, sql_project


def _answer(utterance_id: int, annotator_index: int) -> dict[str, str]:
    # Annotators disagree on some items, so the disagreement ordering has something to order by.
    return {"emotion": LABELS[(utterance_id + annotator_index * (utterance_id % 2)) % len(LABELS)]}


def _state(project) -> list[tuple[int, int, int, float]]:  # type: ignore[no-untyped-def]
    return sorted(
        ProjectItem.objects.filter(project=project).values_list(
            "utterance_id", "annotation_count", "reserved_count", "disagreement"
        )
    )


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_sql_functions_hand_out_and_count_like_the_orm(strategy, make_project, make_items, make_user, monkeypatch):  # type: ignore[no-untyped-def]
    utterances = make_items(9, "en") + make_items(3, "hi")
    for rank, utterance in enumerate(utterances):
        Prediction.objects.create(
            utterance=utterance, model_version="m1", label="joy", scores={"joy": 0.5}, uncertainty=(rank * 7 % 12) / 12
        )
    people = [make_user(f"parity{i}") for i in range(3)]
    members = [people[0], (people[1], ("en",)), people[2]]
    orm_project, sql_project = _twin_projects(make_project, members, ordering_strategy=strategy)
    for project in (orm_project, sql_project):
        distribution.project_items_uncertainty_refresh(project)
    # Each annotator enters the shuffle at a point derived from the project id; give the twin the same points.
    entry = distribution.random_offset
    monkeypatch.setattr(distribution, "random_offset", lambda _project_id, user_id: entry(sql_project.pk, user_id))

    handed: dict[str, list[tuple[str, int | None]]] = {"orm": [], "sql": []}
    for round_number in range(10):
        for index, person in enumerate(people):
            orm_next = distribution.next_item_reserve(project=orm_project, user=person)
            sql_next = distribution_pg.next_item(project_id=sql_project.pk, user_id=person.pk)
            orm_id = orm_next.item.utterance_id if orm_next else None
            sql_id = sql_next["utterance"]["id"] if sql_next else None
            handed["orm"].append((person.username, orm_id))
            handed["sql"].append((person.username, sql_id))
            assert orm_id == sql_id, f"round {round_number}, {person.username}: ORM gave {orm_id}, SQL gave {sql_id}"
            if orm_id is None:
                continue
            if (round_number + index) % 5 == 4:
                distribution.item_skip(project=orm_project, user=person, utterance_id=orm_id, reason="unsure")
                distribution.item_skip(project=sql_project, user=person, utterance_id=orm_id, reason="unsure")
                continue
            value = _answer(orm_id, index)
            orm_result = distribution.annotation_submit(
                project=orm_project, user=person, utterance_id=orm_id, client_id=uuid.uuid4(), value=value
            )
            sql_result = distribution_pg.submit(
                project_id=sql_project.pk, user_id=person.pk, utterance_id=orm_id, client_id=uuid.uuid4(), value=value,
                lead_time_ms=None, perspective="", want_next=False,
            )
            assert (orm_result.created, orm_result.late) == (sql_result.created, sql_result.late)
            assert _state(orm_project) == _state(sql_project)
    assert any(utterance_id for _, utterance_id in handed["sql"])


def test_sql_payload_equals_the_orm_payload(make_project, make_user, conversation_corpus):  # type: ignore[no-untyped-def]
    annotator = make_user("payload")
    orm_project, sql_project = _twin_projects(
        make_project, [annotator], suggestion_policy=SuggestionPolicy.SHOWN, ordering_strategy="sequential"
    )
    last_turn: Utterance = conversation_corpus[-1]
    Prediction.objects.create(utterance=last_turn, model_version="m2", label="anger", scores={"anger": 0.9}, uncertainty=0.1)
    # Newer, but no model of these projects: neither path may show it.
    Prediction.objects.create(utterance=last_turn, model_version="stranger", label="joy", scores={"joy": 1.0})
    # Its text is an automatic transcript: both paths name the model, its confidence and the words' probabilities.
    Utterance.objects.filter(pk=last_turn.pk).update(
        transcript_source="asr", transcript_model="whisper-base@1", transcript_confidence=0.8,
        metadata={"asr": {"model": "whisper-base", "language": "ar", "language_source": "tag",
                          "words": [["<script>alert(1)</script>", 0.0, 0.4, 0.31]]}})
    for utterance in conversation_corpus[:-1]:
        for project in (orm_project, sql_project):
            ProjectItem.objects.filter(project=project, utterance=utterance).delete()

    orm_next = distribution.next_item_reserve(project=orm_project, user=annotator)
    assert orm_next is not None
    orm_payload = json.loads(json.dumps(NextItemSerializer(
        item_view_get(project=orm_project, item=orm_next.item, reservation=orm_next.reservation, resumed=orm_next.resumed)
    ).data))
    sql_payload = json.loads(json.dumps(NextItemSerializer(
        distribution_pg.next_item(project_id=sql_project.pk, user_id=annotator.pk)
    ).data))
    for payload in (orm_payload, sql_payload):
        payload.pop("project_id")
        payload["reservation"].pop("expires_at")
    assert orm_payload == sql_payload
    assert [turn["speaker"] for turn in sql_payload["context"]] == ["Ravi", "spk-m"]
    assert sql_payload["suggestion"]["label"] == "anger"
    assert sql_payload["utterance"]["text"] == "<script>alert(1)</script> & <b>bold</b>"
    assert sql_payload["utterance"]["transcript"] == {
        "source": "asr", "model": "whisper-base", "model_version": "whisper-base@1", "confidence": 0.8,
        "language": "ar", "language_source": "tag",
        "words": [{"word": "<script>alert(1)</script>", "start": 0.0, "end": 0.4, "probability": 0.31}]}


def test_gold_draw_is_the_same_in_python_and_sql(db):  # type: ignore[no-untyped-def]
    with connection.cursor() as cursor:
        for project_id, user_id, handed in [(1, 1, 0), (7, 42, 3), (123456, 99, 1000)]:
            cursor.execute(
                "SELECT ('x' || substr(md5(%s::bigint || ':' || %s::integer || ':' || %s::bigint), 1, 8))::bit(32)::bigint"
                " / 4294967296.0",
                [project_id, user_id, handed],
            )
            assert float(cursor.fetchone()[0]) == pytest.approx(distribution.gold_draw(project_id, user_id, handed))


def test_stale_schema_version_is_noticed(make_project, make_items, make_user, simple_schema):  # type: ignore[no-untyped-def]
    """A lead switching the project's schema version between two submits: the answer is checked against the new one."""
    make_items(2, "en")
    annotator = make_user("stale")
    project = make_project(overlap=1, members=[annotator])
    handed = distribution_pg.next_item(project_id=project.pk, user_id=annotator.pk)
    assert handed is not None
    stricter = label_schema_version_create(
        schema=simple_schema.schema,
        questions=[{"key": "emotion", "type": "single_choice", "labels": ["calm", "storm"], "required": True}],
    )
    project.schema_version = stricter
    project.save(update_fields=["schema_version"])
    with pytest.raises(SchemaError) as raised:
        distribution_pg.submit(
            project_id=project.pk, user_id=annotator.pk, utterance_id=handed["utterance"]["id"], client_id=uuid.uuid4(),
            value={"emotion": "joy"}, lead_time_ms=None, perspective="", want_next=False,
        )
    assert "emotion" in raised.value.errors


@pytest.mark.parametrize(
    ("retried", "perspective"),
    [({"emotion": "sadness"}, ""), ({"emotion": "joy", "valence": 2}, ""), ({"emotion": "joy", "rationale": "on second thought"}, "")],
)
def test_a_replayed_client_id_with_another_answer_is_refused_the_same_way(  # type: ignore[no-untyped-def]
    make_project, make_items, make_user, retried, perspective
):
    make_items(2, "en")
    annotator = make_user("replayer")
    orm_project, sql_project = _twin_projects(make_project, [annotator], ordering_strategy="sequential")
    refusals = []
    for submit in (_orm_submit, _sql_submit):
        project = orm_project if submit is _orm_submit else sql_project
        utterance_id = distribution.next_item_reserve(project=project, user=annotator).item.utterance_id
        client_id = uuid.uuid4()
        stored = submit(project, annotator, utterance_id, client_id, {"emotion": "joy"}, "")
        assert submit(project, annotator, utterance_id, client_id, {"emotion": "joy"}, "")["id"] == stored["id"]
        with pytest.raises(distribution.SubmissionRefusedError) as refused:
            submit(project, annotator, utterance_id, client_id, retried, perspective)
        annotation = refused.value.details["annotation"]
        if not isinstance(annotation, dict):
            annotation = {"id": annotation.pk, "value": annotation.value, "perspective": annotation.perspective}
        refusals.append((refused.value.code, annotation["id"] == stored["id"], annotation["value"],
                         annotation["perspective"]))
    assert refusals[0] == refusals[1] == ("client_id_conflict", True, {"emotion": "joy"}, "")
    assert _state(orm_project) == _state(sql_project)


def _orm_submit(project, user, utterance_id, client_id, value, perspective):  # type: ignore[no-untyped-def]
    result = distribution.annotation_submit(
        project=project, user=user, utterance_id=utterance_id, client_id=client_id, value=value, perspective=perspective
    )
    return {"id": result.annotation.pk, "value": result.annotation.value}


def _sql_submit(project, user, utterance_id, client_id, value, perspective):  # type: ignore[no-untyped-def]
    result = distribution_pg.submit(
        project_id=project.pk, user_id=user.pk, utterance_id=utterance_id, client_id=client_id, value=value,
        lead_time_ms=None, perspective=perspective, want_next=False,
    )
    return {"id": result.annotation["id"], "value": result.annotation["value"]}
