"""Writes for label schemas, projects, memberships and annotations."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import F, Max
from django.db.models.functions import Greatest
from django.utils import timezone

from annotation.models import (
    Annotation,
    Invitation,
    LabelSchema,
    LabelSchemaVersion,
    Membership,
    Origin,
    Project,
    ProjectItem,
    Reservation,
    ReservationStatus,
    Role,
)
from annotation.schema import SchemaError, annotation_value_clean, parse_perspectives, parse_questions
from corpora.models import Corpus, Language, Utterance
from jobs.dispatch import Task, task_send_on_commit


@transaction.atomic
def label_schema_create(
    *, name: str, slug: str, questions: Any, perspectives: Any = None, description: str = "",
    created_by: User | None = None,
) -> LabelSchemaVersion:
    parse_questions(questions)
    perspective_list = parse_perspectives(perspectives)
    schema = LabelSchema.objects.create(name=name, slug=slug, description=description, created_by=created_by)
    return LabelSchemaVersion.objects.create(schema=schema, version=1, questions=questions, perspectives=perspective_list)


@transaction.atomic
def label_schema_version_create(*, schema: LabelSchema, questions: Any, perspectives: Any = None) -> LabelSchemaVersion:
    """A new immutable version; annotations keep pointing at the version they answered."""
    parse_questions(questions)
    perspective_list = parse_perspectives(perspectives)
    locked = LabelSchema.objects.select_for_update().get(pk=schema.pk)
    latest = locked.versions.aggregate(latest=Max("version"))["latest"] or 0
    return LabelSchemaVersion.objects.create(
        schema=locked, version=latest + 1, questions=questions, perspectives=perspective_list
    )


@transaction.atomic
def project_create(
    *, name: str, corpus: Corpus, schema_version: LabelSchemaVersion, created_by: User,
    overlap: int = 1, guidelines: str = "", languages: Iterable[Language] = (), **options: Any,
) -> Project:
    project = Project(
        name=name, corpus=corpus, schema_version=schema_version, overlap=overlap, guidelines=guidelines,
        created_by=created_by, **options,
    )
    project.full_clean()
    project.save()
    project.languages.set(list(languages))
    Membership.objects.create(project=project, user=created_by, role=Role.LEAD)
    project_items_schedule(project)
    return project


def project_items_schedule(project: Project) -> None:
    """Materialise a project's items: at once for a small corpus, else in a job after commit."""
    from annotation.distribution.services import project_items_sync

    if Utterance.objects.filter(corpus_id=project.corpus_id).count() <= settings.PROJECT_ITEMS_INLINE_MAX:
        project_items_sync(project)
        return
    task_send_on_commit(Task.SYNC_PROJECT_ITEMS, project.pk)


def _other_leads_locked(project: Project, user: User) -> int:
    """Lock the project's lead rows (two demotions at once must not both pass) and count leads besides ``user``."""
    leads = list(
        Membership.objects.select_for_update().filter(project=project, role=Role.LEAD).order_by("pk")
        .values_list("user_id", flat=True)
    )
    return sum(1 for lead_id in leads if lead_id != user.pk)


@transaction.atomic
def membership_set(
    *, project: Project, user: User, role: str, languages: Iterable[Language] = ()
) -> Membership:
    if role not in Role.values:
        raise SchemaError({"role": f"must be one of {', '.join(Role.values)}"})
    if role != Role.LEAD and Membership.objects.filter(project=project, user=user, role=Role.LEAD).exists():
        if _other_leads_locked(project, user) == 0:
            raise SchemaError({"role": f"{user.username} is the project's only lead; make another member lead first"})
    membership, _ = Membership.objects.update_or_create(project=project, user=user, defaults={"role": role})
    membership.languages.set(list(languages))
    return membership


@transaction.atomic
def membership_invite(
    *, project: Project, username: str, role: str, languages: Iterable[Language] = (), invited_by: User | None = None
) -> Membership | Invitation:
    """What a lead's "add member" does: an existing member's role and languages change at once; anyone else gets an
    invitation they may accept or decline, and only then joins (nobody is added to a project without consent).

    The invitation is made whether or not a user of that name exists, and the answer is the same either way, so
    inviting cannot be used to find out which user names exist. Raises LookupError when the project is gone.
    """
    if role not in Role.values:
        raise SchemaError({"role": f"must be one of {', '.join(Role.values)}"})
    # Held until commit: a project deleted meanwhile is a LookupError (404), not a foreign-key error at commit.
    if not Project.objects.select_for_update().filter(pk=project.pk).exists():
        raise LookupError(project.pk)
    member = Membership.objects.filter(project=project, user__username=username).select_related("user").first()
    if member is not None:
        return membership_set(project=project, user=member.user, role=role, languages=languages)
    invitation, _ = Invitation.objects.update_or_create(
        project=project, username=username, defaults={"role": role, "invited_by": invited_by}
    )
    invitation.languages.set(list(languages))
    return invitation


@transaction.atomic
def invitation_accept(*, invitation: Invitation, user: User) -> Membership:
    """The invitee joins with the role and languages the invitation offered; the invitation is used up."""
    if invitation.username != user.username:
        raise LookupError(invitation.pk)
    locked = Invitation.objects.select_for_update().filter(pk=invitation.pk).first()
    if locked is None:  # accepted or withdrawn meanwhile
        raise LookupError(invitation.pk)
    membership = Membership.objects.filter(project_id=locked.project_id, user=user).first()
    if membership is None:  # a member added meanwhile keeps the role they were given
        membership = membership_set(
            project=locked.project, user=user, role=locked.role, languages=locked.languages.all()
        )
    locked.delete()
    return membership


def invitation_delete(*, invitation: Invitation) -> None:
    """Declined by the invitee, or withdrawn by a lead."""
    invitation.delete()


@transaction.atomic
def membership_remove(*, project: Project, user: User) -> int:
    """Take a member off a project; their annotations stay. Return how many held items went back to the queue.

    Raises LookupError when the user is not a member, SchemaError when they are the only lead.
    """
    membership = Membership.objects.select_for_update().filter(project=project, user=user).first()
    if membership is None:
        raise LookupError(user.pk)
    if membership.role == Role.LEAD and _other_leads_locked(project, user) == 0:
        raise SchemaError({"user": f"{user.username} is the project's only lead; make another member lead first"})
    released = _holds_release(project=project, user=user)
    membership.delete()
    return released


def _holds_release(*, project: Project, user: User) -> int:
    """Give a leaving member's held items back; items are locked first, in id order, as the distribution does."""
    holds = Reservation.objects.filter(project=project, annotator_id=user.pk, status=ReservationStatus.HELD)
    item_ids = list(holds.values_list("item_id", flat=True))
    if not item_ids:
        return 0
    list(ProjectItem.objects.select_for_update().filter(pk__in=item_ids).order_by("pk").values_list("pk", flat=True))
    released = holds.update(status=ReservationStatus.EXPIRED, updated_at=timezone.now())  # update() skips auto_now
    ProjectItem.objects.filter(pk__in=item_ids, is_gold=False).update(
        reserved_count=Greatest(F("reserved_count") - 1, 0)
    )
    return released


def annotation_create(
    *, utterance: Utterance, schema_version: LabelSchemaVersion, value: Any, origin: str = Origin.HUMAN,
    annotator: User | None = None, project: Project | None = None, perspective: str = "",
    external_rater: str = "", model_version: str = "",
) -> Annotation:
    cleaned = annotation_value_clean(schema_version=schema_version, value=value, perspective=perspective)
    return Annotation.objects.create(
        utterance=utterance, schema_version=schema_version, value=cleaned, origin=origin, annotator=annotator,
        project=project, perspective=perspective, external_rater=external_rater, model_version=model_version,
    )
