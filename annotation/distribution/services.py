"""Task distribution: which project item an annotator gets next, holds, skips, flags and submissions.

The algorithm and its invariants are explained in ``annotation/distribution/README.md``. In short: every
utterance of a project is a ``ProjectItem`` row with counters; handing an item out and taking an
answer in both lock that row (PostgreSQL ``FOR UPDATE``, ``SKIP LOCKED`` while searching), so the
database itself keeps ``annotation_count + reserved_count <= overlap`` true under any concurrency.
On SQLite, writers are serialised by ``BEGIN IMMEDIATE`` (settings), which gives the same result.
"""

from __future__ import annotations

import hashlib
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Exists, F, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from annotation.active_learning.services import labels_arrived
from annotation.models import (
    ActiveLearningSettings,
    Annotation,
    Flag,
    GoldItem,
    LabelSchemaVersion,
    Membership,
    OrderingStrategy,
    Origin,
    Prediction,
    Project,
    ProjectItem,
    ProjectModel,
    Reservation,
    ReservationStatus,
    Role,
    Skip,
)
from annotation.schema import SchemaError, annotation_value_clean, label_schema_version_questions
from corpora.models import Utterance

REAP_BATCH_SIZE = 500
_RANDOM_KEY_SPACE = 2**31
_DONE_STATUSES = (ReservationStatus.SKIPPED, ReservationStatus.SUBMITTED)


class DistributionError(Exception):
    """Base of the errors an annotator's request can cause; ``code`` is stable for clients."""

    code = "distribution_error"

    def __init__(self, message: str, **details: Any):
        self.message = message
        self.details = details
        super().__init__(message)


class NotFoundError(DistributionError):
    """The project or item does not exist *for this user*; never says which, so nothing leaks."""

    code = "not_found"

    def __init__(self, message: str = "Not found."):
        super().__init__(message)


class LeadOnlyError(DistributionError):
    code = "lead_only"

    def __init__(self) -> None:
        super().__init__("Only the project's leads can see this.")


class SubmissionRefusedError(DistributionError):
    """The answer could not be kept; the message says why, and the client still holds the answer."""

    code = "submission_refused"

    def __init__(self, message: str, *, code: str, **details: Any):
        super().__init__(message, **details)
        self.code = code


MESSAGE_CLIENT_ID_REUSED = "This client_id was already used for a different submission; generate a new id for each answer."
MESSAGE_CLIENT_ID_CONFLICT = (
    "This client_id already saved a different answer for this item; the stored answer is in `annotation`. Edit it, "
    "or generate a new client_id for a new answer."
)
MESSAGE_ALREADY_ANNOTATED = "You have already annotated this item; edit that annotation instead of submitting again."
MESSAGE_ITEM_COMPLETE = (
    "Your hold on this item expired and other annotators have since given it all the annotations it needs, so this "
    "answer was not saved. Nothing was lost on the server: your answer is still in your form; move on to the next item."
)


@dataclass(frozen=True)
class NextItem:
    item: ProjectItem
    reservation: Reservation
    resumed: bool = False  # the annotator already held this item


@dataclass(frozen=True)
class SubmitResult:
    annotation: Annotation
    created: bool
    late: bool = False  # kept although the hold had expired or the item had been skipped


@dataclass
class _Caller:
    membership: Membership
    language_ids: list[int] = field(default_factory=list)


# --- materialising items --------------------------------------------------------------------------------------------


def project_items_sync(project: Project) -> int:
    """Create the project's missing items in bulk (new project, or its corpus grew); return how many were made.

    Also brings every ordinary item's target up to date with the project's overlap (never below what an item
    already has) and refreshes model uncertainty. Safe to run again, and concurrently with annotators.
    """
    created = _project_items_insert_missing(project)
    ProjectItem.objects.filter(project=project, is_gold=False).exclude(target_count=project.overlap).update(
        target_count=Greatest(Value(project.overlap), F("annotation_count") + F("reserved_count"))
    )
    project_items_uncertainty_refresh(project)
    return created


def _project_items_insert_missing(project: Project) -> int:
    """One set-based ``INSERT … SELECT`` of the items the project lacks, in the caller's transaction.

    A million utterances become items in seconds, so an import can build them before it commits and annotators
    can start the moment it does. ``random_key`` is drawn by the database (it only spreads annotators).
    """
    item, utterance = ProjectItem._meta.db_table, Utterance._meta.db_table
    random_key = ("floor(random() * %s)::bigint" if connection.vendor == "postgresql" else "abs(random()) %% %s")
    language_ids = list(project.languages.values_list("id", flat=True))
    language_filter = f" AND u.language_id IN ({', '.join(['%s'] * len(language_ids))})" if language_ids else ""
    sql = (
        f"INSERT INTO {item} (project_id, utterance_id, language_id, is_gold, target_count, annotation_count, "  # noqa: S608 - table names from the models, values bound
        f"reserved_count, random_key, disagreement, created_at) "
        f"SELECT %s, u.id, u.language_id, %s, %s, 0, 0, {random_key}, 0.0, %s FROM {utterance} u "
        f"WHERE u.corpus_id = %s{language_filter} "
        f"AND NOT EXISTS (SELECT 1 FROM {item} i WHERE i.project_id = %s AND i.utterance_id = u.id) "
        f"ORDER BY u.id ON CONFLICT DO NOTHING"
    )
    params: list[Any] = [project.pk, False, project.overlap, _RANDOM_KEY_SPACE, timezone.now(), project.corpus_id,
              *language_ids, project.pk]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return max(cursor.rowcount, 0)


def project_prediction_versions(project: Project) -> QuerySet[ProjectModel, Any]:
    """The model versions whose predictions may reach the project's annotators: those registered on this project
    for one of its questions (registration checks the question against the project's schema); never another
    project's, however the utterances are shared. A chosen ``prediction_model_version`` narrows it to that one."""
    models = ProjectModel.objects.filter(project=project).exclude(task="asr")
    if project.prediction_model_version:
        models = models.filter(model_version=project.prediction_model_version)
    return models.values("model_version")


def project_items_uncertainty_refresh(project: Project) -> int:
    """Copy the uncertainty of the project's model predictions (the newest one) onto its items. Not while the
    project's active-learning loop is on: its retrains write each item's priority there themselves."""
    if ActiveLearningSettings.objects.filter(project=project, enabled=True).exists():
        return 0
    predictions = Prediction.objects.filter(utterance_id=OuterRef("utterance_id"), uncertainty__isnull=False,
                                            model_version__in=project_prediction_versions(project))
    newest = predictions.order_by("-created_at", "-id").values("uncertainty")[:1]
    return ProjectItem.objects.filter(project=project).update(uncertainty=Subquery(newest))


# --- helpers --------------------------------------------------------------------------------------------------------


def _caller_lock(project: Project, user: User, *, with_languages: bool = True) -> _Caller:
    """Lock the caller's membership row: one annotator's own requests run one at a time, others in parallel."""
    membership = (
        Membership.objects.select_for_update(of=("self",)).filter(project=project, user_id=user.pk).order_by("pk").first()
        if user.is_authenticated
        else None
    )
    if membership is None:
        raise NotFoundError()
    language_ids = list(membership.languages.values_list("id", flat=True)) if with_languages else []
    return _Caller(membership=membership, language_ids=language_ids)


def _hold_until(project: Project, now: datetime) -> datetime:
    return now + timedelta(seconds=project.reservation_seconds)


def random_offset(project_id: int, user_id: int) -> int:
    """Where an annotator enters the project's shared shuffle (random ordering)."""
    return zlib.crc32(f"{project_id}:{user_id}".encode()) % _RANDOM_KEY_SPACE


def gold_draw(project_id: int, user_id: int, handed: int) -> float:
    """A stable draw in [0, 1) per (project, annotator, items handed so far); the SQL function computes the same."""
    digest = hashlib.md5(f"{project_id}:{user_id}:{handed}".encode(), usedforsecurity=False).hexdigest()
    return int(digest[:8], 16) / 2**32


def _gold_turn(project: Project, user: User) -> bool:
    """Whether this request should serve a gold item."""
    if project.gold_rate <= 0:
        return False
    handed = Reservation.objects.filter(project=project, annotator_id=user.pk).count()
    return gold_draw(project.pk, user.pk, handed) < project.gold_rate


def _open_items(project: Project, user: User, caller: _Caller, *, gold: bool) -> QuerySet[ProjectItem]:
    items = _with_my_history(ProjectItem.objects.filter(project=project, is_gold=gold), user).exclude(
        Exists(Reservation.objects.filter(item_id=OuterRef("pk"), annotator_id=user.pk, status__in=_DONE_STATUSES))
    )
    if not gold:
        # The first condition matches the partial indexes (OPEN_ITEM); the second is the real test.
        items = items.filter(annotation_count__lt=F("target_count")).filter(
            annotation_count__lt=F("target_count") - F("reserved_count")
        )
    if caller.language_ids:
        items = items.filter(language_id__in=caller.language_ids)
    return items


def _first_unlocked(items: QuerySet[ProjectItem]) -> ProjectItem | None:
    return items.select_for_update(skip_locked=True, of=("self",)).first()


def _with_my_history(items: QuerySet[ProjectItem], user: User) -> QuerySet[ProjectItem]:
    """Mark whether I already have a reservation row for the item (an expired hold), to update instead of insert."""
    return items.annotate(held_before=Exists(Reservation.objects.filter(item_id=OuterRef("pk"), annotator_id=user.pk)))


def _pick_ordinary(project: Project, user: User, caller: _Caller) -> ProjectItem | None:
    items = _open_items(project, user, caller, gold=False)
    strategy = project.ordering_strategy
    if strategy == OrderingStrategy.RANDOM:
        # One shared shuffle, entered at a point fixed per annotator: stable for each, and annotators spread out.
        offset = random_offset(project.pk, user.pk)
        return _first_unlocked(items.filter(random_key__gte=offset).order_by("random_key", "id")) or _first_unlocked(
            items.filter(random_key__lt=offset).order_by("random_key", "id")
        )
    if strategy == OrderingStrategy.LEAST_ANNOTATED:
        ordered = items.order_by(F("annotation_count") + F("reserved_count"), "id")
    elif strategy == OrderingStrategy.DISAGREEMENT:
        ordered = items.order_by("-disagreement", "-annotation_count", "id")
    elif strategy == OrderingStrategy.UNCERTAINTY:
        ordered = items.order_by(F("uncertainty").desc(nulls_last=True), "id")
    else:
        ordered = items.order_by("id")
    return _first_unlocked(ordered)


def _pick_gold(project: Project, user: User, caller: _Caller) -> ProjectItem | None:
    # Gold items are not capped, so no row lock is needed to hand one out.
    offset = random_offset(project.pk, user.pk)
    items = _open_items(project, user, caller, gold=True)
    return items.filter(random_key__gte=offset).order_by("random_key", "id").first() or items.filter(
        random_key__lt=offset
    ).order_by("random_key", "id").first()


def reservations_release_expired(project: Project, *, now: datetime | None = None) -> int:
    """Release expired holds of a project so their items go back into the queue; return how many.

    Called at the start of every next-item request (cheap when nothing expired: one indexed query). Items are
    locked first, as everywhere else, and locked items are left for the next call instead of waited for.
    """
    now = now or timezone.now()
    expired_item_ids = list(
        Reservation.objects.filter(project=project, status=ReservationStatus.HELD, expires_at__lte=now)
        .order_by("expires_at")
        .values_list("item_id", flat=True)[:REAP_BATCH_SIZE]
    )
    if not expired_item_ids:
        return 0
    with transaction.atomic():
        item_ids = list(
            ProjectItem.objects.select_for_update(skip_locked=True)
            .filter(pk__in=expired_item_ids)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        released = Reservation.objects.filter(
            item_id__in=item_ids, status=ReservationStatus.HELD, expires_at__lte=now
        ).update(status=ReservationStatus.EXPIRED, updated_at=now)  # update() skips auto_now: set it as the SQL does
        held = Reservation.objects.filter(item_id=OuterRef("pk"), status=ReservationStatus.HELD)
        ProjectItem.objects.filter(pk__in=item_ids).update(
            reserved_count=Coalesce(
                Subquery(held.order_by().values("item_id").annotate(n=Count("id")).values("n")), Value(0)
            )
        )
    return released


# --- next item ------------------------------------------------------------------------------------------------------


def next_item_reserve(*, project: Project, user: User) -> NextItem | None:
    """Hold the annotator's next item for ``project.reservation_seconds`` and return it; None when nothing is left.

    An annotator who already holds an item gets that same item back (an expired hold that nobody released yet
    is renewed: its slot was never given away).
    """
    with transaction.atomic():
        caller = _caller_lock(project, user)
        now = timezone.now()
        held = (
            Reservation.objects.filter(project=project, annotator_id=user.pk, status=ReservationStatus.HELD)
            .select_related("item")
            .first()
        )
        if held is not None:
            if held.expires_at <= now:
                held.expires_at = _hold_until(project, now)
                held.save(update_fields=["expires_at", "updated_at"])
            return NextItem(item=held.item, reservation=held, resumed=True)
        reservations_release_expired(project, now=now)

        item = None
        gold_turn = _gold_turn(project, user)
        if gold_turn:
            item = _pick_gold(project, user, caller)
        if item is None:
            item = _pick_ordinary(project, user, caller)
        if item is None:
            return None

        # An earlier hold of this item that expired is reused: one row per (item, annotator).
        hold = {"item": item, "status": ReservationStatus.HELD, "expires_at": _hold_until(project, now)}
        mine = Reservation.objects.filter(project=project, utterance_id=item.utterance_id, annotator_id=user.pk)
        if getattr(item, "held_before", True) and mine.update(**hold, updated_at=now):
            reservation = mine.get()
        else:
            reservation = Reservation.objects.create(
                project=project, utterance_id=item.utterance_id, annotator_id=user.pk, **hold
            )
        if not item.is_gold:
            ProjectItem.objects.filter(pk=item.pk).update(reserved_count=F("reserved_count") + 1)
            item.reserved_count += 1
        return NextItem(item=item, reservation=reservation)


# --- submit, edit ---------------------------------------------------------------------------------------------------


def _replayed(
    *, client_id: uuid.UUID, project: Project, user: User, utterance_id: int, value: Any, perspective: str
) -> Annotation | None:
    """The annotation an earlier try of this same request made, if any.

    A retry must carry the same answer: the same client_id with a different answer is refused with the stored one
    (a retry is idempotent; a changed answer silently answered 200 would look saved while it was not).
    """
    existing = Annotation.objects.filter(client_id=client_id).first()
    if existing is None:
        return None
    if existing.project_id != project.pk or existing.annotator_id != user.pk or existing.utterance_id != utterance_id:
        raise SubmissionRefusedError(MESSAGE_CLIENT_ID_REUSED, code="client_id_reused")
    if existing.value != value or existing.perspective != perspective:
        raise SubmissionRefusedError(MESSAGE_CLIENT_ID_CONFLICT, code="client_id_conflict", annotation=existing)
    return existing


def disagreement_key(schema_version: LabelSchemaVersion) -> str | None:
    """The question whose answers measure disagreement: the schema's first single-choice question."""
    for question in label_schema_version_questions(schema_version):
        if question.type == "single_choice":
            return question.key
    return None


def _disagreement(project: Project, utterance_id: int) -> float:
    key = disagreement_key(project.schema_version)
    if key is None:
        return 0.0
    answers = [
        value.get(key)
        for value in Annotation.objects.filter(
            project=project, utterance_id=utterance_id, origin=Origin.HUMAN
        ).values_list("value", flat=True)
        if isinstance(value, dict) and value.get(key) is not None
    ]
    if len(answers) < 2:
        return 0.0
    top = max(answers.count(answer) for answer in set(answers))
    return 1.0 - top / len(answers)


def annotation_submit(
    *, project: Project, user: User, utterance_id: int, client_id: uuid.UUID, value: Any,
    lead_time_ms: int | None = None, perspective: str = "",
) -> SubmitResult:
    """Keep an annotator's answer for an item they were given; idempotent by ``client_id``.

    A retried request returns the annotation the first try made. An answer that arrives after the hold
    expired (or after a skip) is kept when the item still needs it; otherwise it is refused with a message.
    Items never handed to this user, and projects they are not in, answer NotFoundError.
    """
    # Validate before locking anything: a bad payload changes nothing.
    cleaned = annotation_value_clean(schema_version=project.schema_version, value=value, perspective=perspective)
    if lead_time_ms is not None and lead_time_ms < 0:
        raise SchemaError({"lead_time_ms": "must be zero or more milliseconds"})

    try:
        with transaction.atomic():
            _caller_lock(project, user, with_languages=False)
            existing = _replayed(
                client_id=client_id, project=project, user=user, utterance_id=utterance_id, value=cleaned,
                perspective=perspective,
            )
            if existing is not None:
                return SubmitResult(annotation=existing, created=False)
            item = ProjectItem.objects.select_for_update().filter(project=project, utterance_id=utterance_id).first()
            # Read under the item lock: holds of an item change only while it is locked.
            reservation = (
                Reservation.objects.filter(item=item, annotator_id=user.pk).first() if item is not None else None
            )
            if item is None or reservation is None:
                raise NotFoundError()
            late = reservation.status != ReservationStatus.HELD
            if reservation.status == ReservationStatus.SUBMITTED:
                mine = Annotation.objects.filter(project=project, utterance_id=utterance_id, annotator_id=user.pk).first()
                raise SubmissionRefusedError(
                    MESSAGE_ALREADY_ANNOTATED, code="already_annotated", annotation_id=mine.pk if mine else None
                )
            if late and not item.is_gold and item.annotation_count + item.reserved_count >= item.target_count:
                raise SubmissionRefusedError(MESSAGE_ITEM_COMPLETE, code="item_complete")
            annotation = Annotation.objects.create(
                utterance_id=utterance_id, project=project, schema_version=project.schema_version, value=cleaned,
                perspective=perspective, origin=Origin.HUMAN, annotator=user, client_id=client_id,
                lead_time_ms=lead_time_ms,
            )
            reservation.status = ReservationStatus.SUBMITTED
            reservation.save(update_fields=["status", "updated_at"])
            item.annotation_count += 1
            if not late and not item.is_gold:
                item.reserved_count -= 1
            if item.annotation_count >= 2:
                item.disagreement = _disagreement(project, utterance_id)
            item.save(update_fields=["annotation_count", "reserved_count", "disagreement"])
            labels_arrived(project=project)
            return SubmitResult(annotation=annotation, created=True, late=late)
    except IntegrityError:
        # Two tries of one request racing past the first check: the unique client_id let one through.
        existing = _replayed(
            client_id=client_id, project=project, user=user, utterance_id=utterance_id, value=cleaned,
            perspective=perspective,
        )
        if existing is None:
            raise
        return SubmitResult(annotation=existing, created=False)


def annotation_update(
    *, project: Project, user: User, annotation_id: int, value: Any, lead_time_ms: int | None = None,
    perspective: str | None = None,
) -> Annotation:
    """Let annotators correct their own annotation until a reviewer has looked at it."""
    with transaction.atomic():
        _caller_lock(project, user, with_languages=False)
        annotation = (
            Annotation.objects.select_for_update()
            .filter(pk=annotation_id, project=project, annotator_id=user.pk, origin=Origin.HUMAN)
            .first()
        )
        if annotation is None:
            raise NotFoundError()
        if annotation.reviewed_at is not None:
            raise SubmissionRefusedError(
                "This annotation has been reviewed and can no longer be edited.", code="already_reviewed"
            )
        new_perspective = annotation.perspective if perspective is None else perspective
        annotation.value = annotation_value_clean(
            schema_version=annotation.schema_version, value=value, perspective=new_perspective
        )
        annotation.perspective = new_perspective
        fields = ["value", "perspective", "updated_at"]
        if lead_time_ms is not None:
            if lead_time_ms < 0:
                raise SchemaError({"lead_time_ms": "must be zero or more milliseconds"})
            annotation.lead_time_ms = (annotation.lead_time_ms or 0) + lead_time_ms
            fields.append("lead_time_ms")
        annotation.save(update_fields=fields)
        item = ProjectItem.objects.select_for_update().filter(project=project, utterance_id=annotation.utterance_id).first()
        if item is not None:
            item.disagreement = _disagreement(project, annotation.utterance_id)
            item.save(update_fields=["disagreement"])
        return annotation


def annotation_mark_reviewed(*, annotation: Annotation, reviewer: User) -> Annotation:
    """Record that a reviewer or lead looked at an annotation; from then on its author cannot edit it."""
    if annotation.project_id is None or not Membership.objects.filter(
        project_id=annotation.project_id, user_id=reviewer.pk, role__in=(Role.LEAD, Role.REVIEWER)
    ).exists():
        raise NotFoundError()
    annotation.reviewed_at = timezone.now()
    annotation.reviewed_by = reviewer
    annotation.save(update_fields=["reviewed_at", "reviewed_by", "updated_at"])
    return annotation


# --- skip, flag -----------------------------------------------------------------------------------------------------


def item_skip(*, project: Project, user: User, utterance_id: int, reason: str) -> Skip:
    """Give back a held item with a reason; it goes to someone else and never comes back to this annotator."""
    reason = reason.strip()
    if not reason:
        raise SchemaError({"reason": "say why you skip this item"})
    if len(reason) > 500:
        raise SchemaError({"reason": "at most 500 characters"})
    with transaction.atomic():
        _caller_lock(project, user, with_languages=False)
        item = ProjectItem.objects.select_for_update().filter(project=project, utterance_id=utterance_id).first()
        reservation = Reservation.objects.filter(item=item, annotator_id=user.pk).first() if item is not None else None
        if item is None or reservation is None:
            raise NotFoundError()
        if reservation.status == ReservationStatus.SUBMITTED:
            raise SubmissionRefusedError("You have already annotated this item; it cannot be skipped.", code="already_annotated")
        if reservation.status == ReservationStatus.HELD and not item.is_gold:
            ProjectItem.objects.filter(pk=item.pk).update(reserved_count=F("reserved_count") - 1)
        reservation.status = ReservationStatus.SKIPPED
        reservation.save(update_fields=["status", "updated_at"])
        skip, _ = Skip.objects.update_or_create(
            item=item, annotator_id=user.pk, defaults={"project": project, "reason": reason}
        )
        return skip


def item_flag(*, project: Project, user: User, utterance_id: int, note: str) -> Flag:
    """Tell the project's leads something is wrong with an item the annotator was given."""
    note = note.strip()
    if not note:
        raise SchemaError({"note": "describe the problem for the project lead"})
    if len(note) > 2000:
        raise SchemaError({"note": "at most 2000 characters"})
    if not Membership.objects.filter(project=project, user_id=user.pk).exists():
        raise NotFoundError()
    reservation = Reservation.objects.filter(project=project, utterance_id=utterance_id, annotator_id=user.pk).first()
    if reservation is None:
        raise NotFoundError()
    return Flag.objects.create(project=project, item_id=reservation.item_id, created_by=user, note=note)


def flag_resolve(*, project: Project, user: User, flag_id: int, note: str = "", dismiss: bool = False) -> Flag:
    """Close a flag (reviewers and leads), with an optional answer; ``dismiss`` says the item needed no change.

    A flag closed before keeps its first closing; a note given now is still recorded on it.
    """
    note = note.strip()
    if len(note) > 2000:
        raise SchemaError({"note": "at most 2000 characters"})
    if not Membership.objects.filter(project=project, user_id=user.pk, role__in=(Role.LEAD, Role.REVIEWER)).exists():
        raise NotFoundError()
    with transaction.atomic():
        flag = Flag.objects.select_for_update().filter(pk=flag_id, project=project).first()
        if flag is None:
            raise NotFoundError()
        fields = []
        if not flag.resolved:
            flag.resolved, flag.resolved_by, flag.resolved_at, flag.dismissed = True, user, timezone.now(), dismiss
            fields += ["resolved", "resolved_by", "resolved_at", "dismissed"]
        if note:
            flag.resolution_note = note
            fields.append("resolution_note")
        if fields:
            flag.save(update_fields=fields)
        return flag


# --- undo, revisit --------------------------------------------------------------------------------------------------

UNDO_WINDOW_SECONDS = 120
MESSAGE_UNDO_TOO_LATE = (
    "Undo only works for a couple of minutes after submitting; open the annotation from your history to change it."
)


def _release_my_hold(project: Project, user: User, *, keep_item_id: int, now: datetime) -> None:
    """Give back the item I hold (if any, and not ``keep_item_id``) as if my hold had expired: it may come back to me."""
    held = (
        Reservation.objects.select_for_update()
        .filter(project=project, annotator_id=user.pk, status=ReservationStatus.HELD)
        .exclude(item_id=keep_item_id)
        .select_related("item")
        .first()
    )
    if held is None:
        return
    held.status = ReservationStatus.EXPIRED
    held.save(update_fields=["status", "updated_at"])
    if not held.item.is_gold:
        ProjectItem.objects.filter(pk=held.item_id).update(reserved_count=F("reserved_count") - 1)


def _hold_again(project: Project, reservation: Reservation, item: ProjectItem, now: datetime) -> None:
    reservation.status = ReservationStatus.HELD
    reservation.expires_at = _hold_until(project, now)
    reservation.save(update_fields=["status", "expires_at", "updated_at"])
    if not item.is_gold:
        ProjectItem.objects.filter(pk=item.pk).update(reserved_count=F("reserved_count") + 1)


def _lock_items(project: Project, item_ids: list[int]) -> dict[int, ProjectItem]:
    """Lock items in id order (the order every writer uses), so two requests never wait on each other in a circle."""
    items = ProjectItem.objects.select_for_update().filter(project=project, pk__in=item_ids).order_by("pk")
    return {item.pk: item for item in items}


def annotation_undo(*, project: Project, user: User, annotation_id: int) -> ProjectItem:
    """Take back my last answer shortly after submitting: the annotation is deleted and the item is held for me again.

    The item I was given meanwhile goes back to the queue (it may come to me again). Refused once the annotation is
    older than ``UNDO_WINDOW_SECONDS``, reviewed, or adjudicated; the next ``next`` call returns the item (resumed).
    """
    with transaction.atomic():
        _caller_lock(project, user, with_languages=False)
        annotation = (
            Annotation.objects.select_for_update()
            .filter(pk=annotation_id, project=project, annotator_id=user.pk, origin=Origin.HUMAN)
            .first()
        )
        if annotation is None:
            raise NotFoundError()
        now = timezone.now()
        if annotation.reviewed_at is not None or annotation.adjudications.exists():
            raise SubmissionRefusedError(
                "This annotation has been reviewed and can no longer be undone.", code="already_reviewed"
            )
        if (now - annotation.created_at).total_seconds() > UNDO_WINDOW_SECONDS:
            raise SubmissionRefusedError(MESSAGE_UNDO_TOO_LATE, code="undo_too_late")
        held_ids = list(
            Reservation.objects.filter(project=project, annotator_id=user.pk, status=ReservationStatus.HELD)
            .values_list("item_id", flat=True)
        )
        own = Reservation.objects.filter(project=project, utterance_id=annotation.utterance_id, annotator_id=user.pk)
        item_id = own.values_list("item_id", flat=True).first()
        if item_id is None:
            raise NotFoundError()
        items = _lock_items(project, [item_id, *held_ids])
        item = items[item_id]
        _release_my_hold(project, user, keep_item_id=item.pk, now=now)
        annotation.delete()
        ProjectItem.objects.filter(pk=item.pk).update(annotation_count=F("annotation_count") - 1)
        item.refresh_from_db(fields=["annotation_count", "reserved_count"])
        _hold_again(project, own.select_for_update().get(), item, now)
        item.disagreement = _disagreement(project, item.utterance_id)
        item.save(update_fields=["disagreement"])
        item.refresh_from_db()
        return item


def item_revisit(*, project: Project, user: User, utterance_id: int) -> ProjectItem:
    """Bring back an item I skipped, while it still needs annotations: it is held for me and my skip is withdrawn.

    The item I hold now goes back to the queue. Refused with ``item_complete`` when others have finished it.
    """
    with transaction.atomic():
        _caller_lock(project, user, with_languages=False)
        skipped = (
            Reservation.objects.select_for_update()
            .filter(project=project, utterance_id=utterance_id, annotator_id=user.pk, status=ReservationStatus.SKIPPED)
            .first()
        )
        if skipped is None:
            raise NotFoundError()
        held_ids = list(
            Reservation.objects.filter(project=project, annotator_id=user.pk, status=ReservationStatus.HELD)
            .values_list("item_id", flat=True)
        )
        item = _lock_items(project, [skipped.item_id, *held_ids])[skipped.item_id]
        if not item.is_gold and item.annotation_count + item.reserved_count >= item.target_count:
            raise SubmissionRefusedError(
                "Other annotators have meanwhile given this item all the annotations it needs.", code="item_complete"
            )
        now = timezone.now()
        _release_my_hold(project, user, keep_item_id=item.pk, now=now)
        _hold_again(project, skipped, item, now)
        Skip.objects.filter(item=item, annotator_id=user.pk).delete()
        item.refresh_from_db()
        return item


# --- gold items -----------------------------------------------------------------------------------------------------


def gold_item_set(
    *, project: Project, utterance_id: int, expected: Any, created_by: User | None = None,
    numeric_tolerance: float = 0.0,
) -> GoldItem:
    """Make an item a gold (honeypot) item with its known answer, validated against the project's schema."""
    cleaned = annotation_value_clean(schema_version=project.schema_version, value=expected)
    if numeric_tolerance < 0:
        raise SchemaError({"numeric_tolerance": "must be zero or more"})
    with transaction.atomic():
        item = ProjectItem.objects.select_for_update().filter(project=project, utterance_id=utterance_id).first()
        if item is None:
            raise NotFoundError("This utterance is not an item of the project.")
        if not item.is_gold:
            if item.annotation_count or item.reserved_count:
                raise SchemaError({"utterance": "already handed to annotators; choose an item nobody has seen yet"})
            item.is_gold = True
            item.save(update_fields=["is_gold"])
        gold, _ = GoldItem.objects.update_or_create(
            project=project, utterance_id=utterance_id,
            defaults={"item": item, "expected": cleaned, "numeric_tolerance": numeric_tolerance, "created_by": created_by},
        )
        return gold


def gold_item_unset(*, project: Project, utterance_id: int) -> ProjectItem:
    """Make a gold item ordinary again: its known answer goes, so annotators' answers to it are no longer scored
    (gold counts and accuracy follow) and it is handed out like any item. The answers it already has stay; an item
    that gathered more than the overlap as gold counts as complete."""
    with transaction.atomic():
        item = ProjectItem.objects.select_for_update().filter(project=project, utterance_id=utterance_id).first()
        if item is None:
            raise NotFoundError("This utterance is not an item of the project.")
        if not item.is_gold:
            raise NotFoundError("This item is not a gold item.")
        GoldItem.objects.filter(project=project, utterance_id=utterance_id).delete()
        item.is_gold = False
        # Ordinary items hold at most their target (a database constraint); a gold item was not capped.
        item.target_count = max(item.target_count, item.annotation_count + item.reserved_count)
        item.save(update_fields=["is_gold", "target_count"])
        return item


def gold_answer_is_correct(gold: GoldItem, value: dict[str, Any]) -> bool:
    """Every question the gold item answers must be answered the same (numbers within the tolerance)."""
    for key, expected in gold.expected.items():
        given = value.get(key)
        if isinstance(expected, (int, float)) and not isinstance(expected, bool):
            if not isinstance(given, (int, float)) or isinstance(given, bool) or abs(given - expected) > gold.numeric_tolerance + 1e-9:
                return False
        elif given != expected:
            return False
    return True


def membership_is_lead(project: Project, user: User) -> bool:
    return Membership.objects.filter(project=project, user_id=user.pk, role=Role.LEAD).exists()


def project_items_for_corpus_sync(corpus_id: int) -> int:
    """After an import grew a corpus: materialise the new items of every project built on it."""
    return sum(project_items_sync(project) for project in Project.objects.filter(corpus_id=corpus_id))

