"""The distribution engine's rules, exercised through its services on the real database."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from annotation.distribution import services as d
from annotation.distribution.selectors import project_progress_get
from annotation.models import (
    Annotation,
    Flag,
    GoldItem,
    OrderingStrategy,
    Prediction,
    ProjectItem,
    Reservation,
    ReservationStatus,
)
from annotation.schema import SchemaError
from tests.distribution.conftest import utterance_make

pytestmark = pytest.mark.django_db


def take(project, user):  # type: ignore[no-untyped-def]
    handed = d.next_item_reserve(project=project, user=user)
    return None if handed is None else handed.item.utterance_id


def answer(project, user, label="joy", utterance_id=None):  # type: ignore[no-untyped-def]
    utterance_id = utterance_id or take(project, user)
    assert utterance_id is not None
    return d.annotation_submit(
        project=project, user=user, utterance_id=utterance_id, client_id=uuid.uuid4(), value={"emotion": label},
        lead_time_ms=1200,
    )


def expire_holds(project):  # type: ignore[no-untyped-def]
    Reservation.objects.filter(project=project, status=ReservationStatus.HELD).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )


def test_items_are_materialised_once_in_bulk_and_follow_the_corpus(make_project, make_items, corpus):
    make_items(3, "en")
    make_items(2, "mr")
    project = make_project(overlap=2)
    assert ProjectItem.objects.filter(project=project).count() == 5
    assert d.project_items_sync(project) == 0
    make_items(4, "hi")
    assert d.project_items_sync(project) == 4
    assert set(ProjectItem.objects.filter(project=project).values_list("target_count", flat=True)) == {2}


def test_set_based_item_insert_writes_every_model_default(make_project, make_items):
    """_project_items_insert_missing names its columns and values in SQL: a field added to ProjectItem, or a default
    changed, must show up there too (the ORM's defaults are what a single created item would get)."""
    make_items(2, "en")
    project = make_project(overlap=3)
    inserted = ProjectItem.objects.filter(project=project).first()
    assert inserted is not None
    for field in ProjectItem._meta.concrete_fields:
        if field.primary_key or not field.has_default() or callable(field.default):
            continue
        assert getattr(inserted, field.attname) == field.default, field.name
    assert inserted.target_count == 3 and inserted.created_at is not None and inserted.uncertainty is None


def test_project_languages_limit_the_items(make_project, make_items):
    from corpora.languages import language_get_or_create

    make_items(2, "en")
    make_items(3, "mr")
    project = make_project(languages=[language_get_or_create("mr")])  # project_create materialises its items
    assert ProjectItem.objects.filter(project=project).count() == 3
    make_items(1, "mr", prefix="later")
    make_items(1, "en", prefix="later")
    assert d.project_items_sync(project) == 1
    assert ProjectItem.objects.filter(project=project).count() == 4


def test_asking_again_returns_the_held_item(make_project, make_items, annotator):
    make_items(3)
    project = make_project(members=[annotator])
    first = d.next_item_reserve(project=project, user=annotator)
    again = d.next_item_reserve(project=project, user=annotator)
    assert first is not None and again is not None
    assert again.item.pk == first.item.pk and again.resumed
    assert ProjectItem.objects.get(pk=first.item.pk).reserved_count == 1


def test_overlap_gives_each_item_to_n_different_annotators(make_project, make_items, make_user):
    utterances = make_items(2)
    people = [make_user(f"ann{i}") for i in range(3)]
    project = make_project(overlap=2, members=people)
    assert take(project, people[0]) == utterances[0].pk
    assert take(project, people[1]) == utterances[0].pk
    assert take(project, people[2]) == utterances[1].pk  # the first item is fully held


def test_an_annotator_never_gets_an_item_twice(make_project, make_items, annotator):
    make_items(2)
    project = make_project(overlap=3, members=[annotator])
    done = {answer(project, annotator).annotation.utterance_id for _ in range(2)}
    assert len(done) == 2
    assert take(project, annotator) is None


def test_expired_hold_goes_to_someone_else(make_project, make_items, make_user):
    make_items(1)
    alice, bob = make_user("alice"), make_user("bob")
    project = make_project(overlap=1, members=[alice, bob])
    held = take(project, alice)
    assert take(project, bob) is None
    expire_holds(project)
    assert take(project, bob) == held
    assert Reservation.objects.get(project=project, annotator=alice).status == ReservationStatus.EXPIRED
    assert ProjectItem.objects.get(project=project).reserved_count == 1


def test_own_expired_hold_that_nobody_released_is_renewed(make_project, make_items, annotator):
    make_items(2)
    project = make_project(members=[annotator], reservation_seconds=60)
    first = d.next_item_reserve(project=project, user=annotator)
    assert first is not None
    Reservation.objects.filter(pk=first.reservation.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    # The annotator's own hold is renewed before any reaping: the slot was never given away.
    again = d.next_item_reserve(project=project, user=annotator)
    assert again is not None and again.item.utterance_id == first.item.utterance_id
    assert ProjectItem.objects.get(pk=first.item.pk).reserved_count == 1


def test_language_routing(make_project, make_items, make_user):
    make_items(2, "en")
    marathi = make_items(2, "mr")
    reader = make_user("mr_reader")
    anyone = make_user("any_reader")
    project = make_project(overlap=1, members=[(reader, ["mr"]), anyone])
    got = [answer(project, reader).annotation.utterance_id for _ in range(2)]
    assert sorted(got) == sorted(u.pk for u in marathi)
    assert take(project, reader) is None  # English items are never routed to a Marathi-only annotator
    assert take(project, anyone) is not None


def test_sequential_order(make_project, make_items, annotator):
    utterances = make_items(4)
    project = make_project(members=[annotator], ordering_strategy=OrderingStrategy.SEQUENTIAL)
    assert [answer(project, annotator).annotation.utterance_id for _ in range(4)] == [u.pk for u in utterances]


def test_random_order_is_stable_per_annotator_and_covers_everything(make_project, make_items, make_user):
    utterances = make_items(12)
    alice = make_user("alice")
    project = make_project(overlap=2, members=[alice], ordering_strategy=OrderingStrategy.RANDOM)
    first = take(project, alice)
    expire_holds(project)
    Reservation.objects.filter(project=project).delete()
    ProjectItem.objects.filter(project=project).update(reserved_count=0)
    assert take(project, alice) == first  # same annotator, same starting point
    d.item_skip(project=project, user=alice, utterance_id=first, reason="test")
    seen = [first] + [answer(project, alice).annotation.utterance_id for _ in range(11)]
    assert sorted(seen) == sorted(u.pk for u in utterances)
    assert seen != [u.pk for u in utterances]  # not simply the corpus order


def test_least_annotated_first(make_project, make_items, make_user):
    utterances = make_items(3)
    alice, bob = make_user("alice"), make_user("bob")
    project = make_project(overlap=2, members=[alice, bob], ordering_strategy=OrderingStrategy.LEAST_ANNOTATED)
    answer(project, alice)  # item 0 now has one annotation
    assert take(project, bob) == utterances[1].pk


def test_disagreement_first(make_project, make_items, make_user):
    utterances = make_items(3)
    people = [make_user(f"p{i}") for i in range(3)]
    project = make_project(overlap=3, members=people, ordering_strategy=OrderingStrategy.DISAGREEMENT)
    # Items 0 and 2 get two annotations each; only item 2's disagree.
    answer(project, people[0], "joy", utterance_id=take(project, people[0]))
    answer(project, people[1], "joy", utterance_id=take(project, people[1]))
    item2 = ProjectItem.objects.get(project=project, utterance=utterances[2])
    for person, label in ((people[0], "joy"), (people[1], "anger")):
        Reservation.objects.create(project=project, item=item2, utterance=utterances[2], annotator=person,
                                   expires_at=timezone.now() + timedelta(minutes=5))
        ProjectItem.objects.filter(pk=item2.pk).update(reserved_count=1)
        answer(project, person, label, utterance_id=utterances[2].pk)
    assert ProjectItem.objects.get(pk=item2.pk).disagreement == pytest.approx(0.5)
    assert take(project, people[2]) == utterances[2].pk


def test_uncertainty_first(make_project, make_items, annotator):
    utterances = make_items(3)
    for utterance, uncertainty in zip(utterances, [0.1, 0.9, 0.5]):
        Prediction.objects.create(utterance=utterance, model_version="m1", scores={"joy": 0.5}, uncertainty=uncertainty)
    project = make_project(members=[annotator], ordering_strategy=OrderingStrategy.UNCERTAINTY, prediction_model_version="m1",
                           models=["m1"])
    assert [answer(project, annotator).annotation.utterance_id for _ in range(3)] == [
        utterances[1].pk, utterances[2].pk, utterances[0].pk
    ]


def test_uncertainty_comes_only_from_the_projects_models(make_project, make_items, annotator):
    utterances = make_items(2)
    Prediction.objects.create(utterance=utterances[1], model_version="elsewhere", scores={"joy": 0.5}, uncertainty=0.9)
    project = make_project(members=[annotator], ordering_strategy=OrderingStrategy.UNCERTAINTY)
    assert set(ProjectItem.objects.filter(project=project).values_list("uncertainty", flat=True)) == {None}


def test_gold_items_are_mixed_in_and_scored(make_project, make_items, make_user, lead):
    utterances = make_items(4)
    alice, bob = make_user("alice"), make_user("bob")
    project = make_project(overlap=1, members=[alice, bob], gold_rate=1.0)
    d.gold_item_set(project=project, utterance_id=utterances[3].pk, expected={"emotion": "sadness"}, created_by=lead)
    # With rate 1 the gold item comes first, to everyone (gold items are not capped by the overlap).
    assert take(project, alice) == utterances[3].pk
    assert take(project, bob) == utterances[3].pk
    answer(project, alice, "sadness", utterance_id=utterances[3].pk)
    answer(project, bob, "joy", utterance_id=utterances[3].pk)
    answer(project, alice)  # ordinary items follow once the gold ones are done
    progress = project_progress_get(project=project, user=lead)
    rows = {row["username"]: row for row in progress["by_annotator"]}
    assert (rows["alice"]["gold_answered"], rows["alice"]["gold_accuracy"]) == (1, 1.0)
    assert (rows["bob"]["gold_answered"], rows["bob"]["gold_accuracy"]) == (1, 0.0)
    assert progress["gold_items"] == 1 and progress["items"] == 3


def test_unmarking_gold_drops_its_scores_and_makes_it_ordinary(make_project, make_items, make_user, lead):
    utterances = make_items(3)
    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    project = make_project(overlap=1, members=[alice, bob, carol], gold_rate=1.0)
    d.gold_item_set(project=project, utterance_id=utterances[2].pk, expected={"emotion": "sadness"}, created_by=lead)
    for user, label in ((alice, "sadness"), (bob, "joy")):
        assert take(project, user) == utterances[2].pk
        answer(project, user, label, utterance_id=utterances[2].pk)

    item = d.gold_item_unset(project=project, utterance_id=utterances[2].pk)

    # Two answers at overlap 1: the item counts as complete (the constraint caps ordinary items at their target).
    assert (item.is_gold, item.annotation_count, item.target_count) == (False, 2, 2)
    assert not GoldItem.objects.filter(project=project).exists()
    progress = project_progress_get(project=project, user=lead)
    rows = {row["username"]: row for row in progress["by_annotator"]}
    assert (rows["alice"]["gold_answered"], rows["alice"]["gold_accuracy"]) == (0, None)
    assert (progress["gold_items"], progress["items"], progress["complete"]) == (0, 3, 1)
    assert take(project, carol) in (utterances[0].pk, utterances[1].pk)  # no longer served as gold
    with pytest.raises(d.NotFoundError):
        d.gold_item_unset(project=project, utterance_id=utterances[2].pk)  # not gold any more


def test_gold_answer_must_fit_the_schema(make_project, make_items):
    utterances = make_items(1)
    project = make_project()
    with pytest.raises(SchemaError) as excinfo:
        d.gold_item_set(project=project, utterance_id=utterances[0].pk, expected={"emotion": "bored"})
    assert "emotion" in excinfo.value.errors


def test_skip_gives_the_item_to_others_and_never_back(make_project, make_items, make_user):
    utterances = make_items(2)
    alice, bob = make_user("alice"), make_user("bob")
    project = make_project(overlap=1, members=[alice, bob])
    assert take(project, alice) == utterances[0].pk
    with pytest.raises(SchemaError):
        d.item_skip(project=project, user=alice, utterance_id=utterances[0].pk, reason="  ")
    skip = d.item_skip(project=project, user=alice, utterance_id=utterances[0].pk, reason="audio is silent")
    assert skip.reason == "audio is silent"
    assert take(project, alice) == utterances[1].pk
    assert take(project, bob) == utterances[0].pk


def test_flag_for_the_lead(make_project, make_items, annotator, lead):
    utterances = make_items(1)
    project = make_project(members=[annotator])
    with pytest.raises(d.NotFoundError):  # never handed to them
        d.item_flag(project=project, user=annotator, utterance_id=utterances[0].pk, note="wrong language")
    take(project, annotator)
    flag = d.item_flag(project=project, user=annotator, utterance_id=utterances[0].pk, note="wrong language")
    assert not flag.resolved
    with pytest.raises(d.NotFoundError):
        d.flag_resolve(project=project, user=annotator, flag_id=flag.pk)
    d.flag_resolve(project=project, user=lead, flag_id=flag.pk)
    assert Flag.objects.get(pk=flag.pk).resolved


def test_edit_own_annotation_until_reviewed(make_project, make_items, annotator, make_user, lead):
    make_items(1)
    project = make_project(members=[annotator])
    annotation = answer(project, annotator, "joy").annotation
    edited = d.annotation_update(project=project, user=annotator, annotation_id=annotation.pk, value={"emotion": "anger"})
    assert edited.value == {"emotion": "anger"}
    other = make_user("other")
    with pytest.raises(d.NotFoundError):
        d.annotation_update(project=project, user=other, annotation_id=annotation.pk, value={"emotion": "joy"})
    d.annotation_mark_reviewed(annotation=edited, reviewer=lead)
    with pytest.raises(d.SubmissionRefusedError) as excinfo:
        d.annotation_update(project=project, user=annotator, annotation_id=annotation.pk, value={"emotion": "joy"})
    assert excinfo.value.code == "already_reviewed"
    assert Annotation.objects.get(pk=annotation.pk).value == {"emotion": "anger"}


def test_submission_is_idempotent_by_client_id(make_project, make_items, annotator):
    make_items(2)
    project = make_project(members=[annotator])
    utterance_id = take(project, annotator)
    client_id = uuid.uuid4()
    kwargs = dict(project=project, user=annotator, utterance_id=utterance_id, client_id=client_id,
                  value={"emotion": "joy"}, lead_time_ms=2500)
    first = d.annotation_submit(**kwargs)
    retry = d.annotation_submit(**kwargs)
    assert first.created and not retry.created and retry.annotation.pk == first.annotation.pk
    assert Annotation.objects.filter(project=project).count() == 1
    assert first.annotation.lead_time_ms == 2500
    item = ProjectItem.objects.get(project=project, utterance_id=utterance_id)
    assert (item.annotation_count, item.reserved_count) == (1, 0)


def test_a_replayed_client_id_with_a_different_answer_is_refused_with_the_stored_one(make_project, make_items, annotator):
    make_items(2)
    project = make_project(members=[annotator])
    utterance_id = take(project, annotator)
    kwargs = dict(project=project, user=annotator, utterance_id=utterance_id, client_id=uuid.uuid4())
    first = d.annotation_submit(**kwargs, value={"emotion": "joy"})
    with pytest.raises(d.SubmissionRefusedError) as excinfo:
        d.annotation_submit(**kwargs, value={"emotion": "sadness"})
    assert excinfo.value.code == "client_id_conflict"
    assert excinfo.value.details["annotation"].pk == first.annotation.pk
    assert excinfo.value.details["annotation"].value == {"emotion": "joy"}
    assert list(Annotation.objects.filter(project=project).values_list("value", flat=True)) == [{"emotion": "joy"}]


def test_reused_client_id_for_another_item_is_refused(make_project, make_items, annotator):
    make_items(2)
    project = make_project(members=[annotator])
    first = answer(project, annotator)
    second = take(project, annotator)
    with pytest.raises(d.SubmissionRefusedError) as excinfo:
        d.annotation_submit(project=project, user=annotator, utterance_id=second,
                            client_id=first.annotation.client_id, value={"emotion": "joy"})
    assert excinfo.value.code == "client_id_reused"


def test_late_submission_is_kept_while_the_item_still_needs_it(make_project, make_items, make_user):
    make_items(1)
    alice = make_user("alice")
    project = make_project(overlap=1, members=[alice])
    utterance_id = take(project, alice)
    expire_holds(project)
    d.reservations_release_expired(project)
    result = d.annotation_submit(project=project, user=alice, utterance_id=utterance_id, client_id=uuid.uuid4(),
                                 value={"emotion": "joy"})
    assert result.created and result.late
    item = ProjectItem.objects.get(project=project)
    assert (item.annotation_count, item.reserved_count) == (1, 0)


def test_releasing_lapsed_holds_stamps_when_they_lapsed(make_project, make_items, make_user):
    make_items(1)
    alice = make_user("alice")
    project = make_project(overlap=1, members=[alice])
    take(project, alice)
    long_ago = timezone.now() - timedelta(days=1)
    Reservation.objects.filter(project=project).update(updated_at=long_ago)
    expire_holds(project)
    before = timezone.now()
    assert d.reservations_release_expired(project) == 1
    hold = Reservation.objects.get(project=project)
    assert hold.status == ReservationStatus.EXPIRED and hold.updated_at >= before


def test_late_submission_is_refused_with_a_reason_when_others_completed_the_item(make_project, make_items, make_user):
    make_items(1)
    alice, bob = make_user("alice"), make_user("bob")
    project = make_project(overlap=1, members=[alice, bob])
    utterance_id = take(project, alice)
    expire_holds(project)
    answer(project, bob)  # the reaper released Alice's hold and Bob completed the item
    with pytest.raises(d.SubmissionRefusedError) as excinfo:
        d.annotation_submit(project=project, user=alice, utterance_id=utterance_id, client_id=uuid.uuid4(),
                            value={"emotion": "joy"})
    assert excinfo.value.code == "item_complete" and "expired" in excinfo.value.message
    assert Annotation.objects.filter(project=project).count() == 1


def test_submission_for_an_item_never_given_or_as_outsider_is_not_found(make_project, make_items, annotator, outsider):
    utterances = make_items(2)
    project = make_project(members=[annotator])
    take(project, annotator)
    for user, utterance in ((annotator, utterances[1]), (outsider, utterances[0])):
        with pytest.raises(d.NotFoundError):
            d.annotation_submit(project=project, user=user, utterance_id=utterance.pk, client_id=uuid.uuid4(),
                                value={"emotion": "joy"})
    with pytest.raises(d.NotFoundError):
        d.next_item_reserve(project=project, user=outsider)
    assert not Annotation.objects.exists()


def test_bad_answers_change_nothing(make_project, make_items, annotator):
    make_items(1)
    project = make_project(members=[annotator])
    utterance_id = take(project, annotator)
    with pytest.raises(SchemaError) as excinfo:
        d.annotation_submit(project=project, user=annotator, utterance_id=utterance_id, client_id=uuid.uuid4(),
                            value={"emotion": "joy", "valence": 9})
    assert set(excinfo.value.errors) == {"valence"}
    item = ProjectItem.objects.get(project=project)
    assert (item.annotation_count, item.reserved_count) == (0, 1)


def test_database_refuses_more_than_the_overlap(make_project, make_items):
    make_items(1)
    project = make_project(overlap=2)
    item = ProjectItem.objects.get(project=project)
    with pytest.raises(IntegrityError), transaction.atomic():
        ProjectItem.objects.filter(pk=item.pk).update(annotation_count=2, reserved_count=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        Reservation.objects.bulk_create([
            Reservation(project=project, item=item, utterance_id=item.utterance_id, annotator=project.created_by,
                        expires_at=timezone.now()),
            Reservation(project=project, item=item, utterance_id=item.utterance_id, annotator=project.created_by,
                        expires_at=timezone.now()),
        ])


def test_corpus_growth_reaches_the_queue(make_project, make_items, annotator, corpus):
    make_items(1)
    project = make_project(members=[annotator])
    answer(project, annotator)
    assert take(project, annotator) is None
    utterance_make(corpus, "a new line", "en")
    assert d.project_items_for_corpus_sync(corpus.pk) == 1
    assert take(project, annotator) is not None
