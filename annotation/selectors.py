"""Reads for label schemas, projects, memberships and annotations, through what the user may see.

A project is visible only to its members (and staff); to anyone else it does not exist.
Annotations made in a project follow the project; imported ones (no project) follow their corpus.
"""

from __future__ import annotations

from typing import Any

from django.db.models import OuterRef, Q, QuerySet, Subquery

from annotation.models import Annotation, LabelSchema, LabelSchemaVersion, Membership, Project
from corpora.selectors import corpus_ids_visible_to


def _is_staff(user: Any) -> bool:
    return bool(user.is_authenticated and user.is_staff)


def projects_visible_to(user: Any) -> QuerySet[Project]:
    if _is_staff(user):
        return Project.objects.all()
    if not user.is_authenticated:
        return Project.objects.none()
    return Project.objects.filter(pk__in=Membership.objects.filter(user=user).values("project_id"))


def project_ids_visible_to(user: Any) -> QuerySet[Project, Any]:
    return projects_visible_to(user).values("pk")


def projects_with_role(*, projects: QuerySet[Project], user: Any) -> QuerySet[Project]:
    """Annotate ``my_role``: the user's role in each project (None for staff who are not members)."""
    role = Membership.objects.filter(project=OuterRef("pk"), user_id=user.pk).values("role")[:1]
    return projects.annotate(my_role=Subquery(role))


def membership_role(user: Any, project: Project) -> str | None:
    """The user's role in the project, or None when not a member."""
    if not user.is_authenticated:
        return None
    return Membership.objects.filter(project=project, user=user).values_list("role", flat=True).first()


def memberships_of_project(*, project: Project) -> QuerySet[Membership]:
    return Membership.objects.filter(project=project).select_related("user").prefetch_related("languages")


def label_schemas_list() -> QuerySet[LabelSchema]:
    """Schemas are shared vocabulary: every signed-in user reads all of them."""
    return LabelSchema.objects.prefetch_related("versions")


def label_schema_versions_list() -> QuerySet[LabelSchemaVersion]:
    return LabelSchemaVersion.objects.select_related("schema")


def annotations_visible_to(user: Any) -> QuerySet[Annotation]:
    if _is_staff(user):
        return Annotation.objects.all()
    if not user.is_authenticated:
        return Annotation.objects.none()
    return Annotation.objects.filter(
        Q(project_id__in=project_ids_visible_to(user))
        | Q(project__isnull=True, utterance__corpus_id__in=corpus_ids_visible_to(user))
    )
