"""Who may do what, in one place.

- Staff may do everything.
- A project is visible only to its members; to others it does not exist (the API answers 404,
  because its querysets come from the selectors). Leads manage a project's settings and
  memberships; reviewers and annotators read.
- A corpus is visible to its creator and to members of any project on it. Its creator, the leads
  of projects on it and staff may edit it and import into it.
- Any signed-in user may create a corpus or a label schema. Schemas are shared vocabulary read by
  all, but only their owner changes them: a schema's creator, staff, and leads of the projects that own it
  (projects on the schema that its creator leads too) may add versions. Using a schema in a project of one's
  own grants no right to change it for everyone else.
"""

from __future__ import annotations

from typing import Any

from rest_framework import permissions
from rest_framework.request import Request
from rest_framework.views import APIView

from annotation.models import LabelSchema, Membership, Project, Role
from corpora.models import Corpus
from corpora.selectors import user_is_staff


def project_can_manage(user: Any, project: Project) -> bool:
    if user_is_staff(user):
        return True
    return bool(user.is_authenticated) and Membership.objects.filter(project=project, user=user, role=Role.LEAD).exists()


def project_can_create(user: Any) -> bool:
    """Starting a project needs a corpus the user may edit (ProjectWriteSerializer.validate_corpus): staff, corpus
    creators and leads. Everyone else is not offered the "New project" page."""
    if user_is_staff(user):
        return True
    if not user.is_authenticated:
        return False
    return (
        Corpus.objects.filter(created_by=user).exists()
        or Membership.objects.filter(user=user, role=Role.LEAD).exists()
    )


def corpus_can_edit(user: Any, corpus: Corpus) -> bool:
    if user_is_staff(user):
        return True
    if not user.is_authenticated:
        return False
    if corpus.created_by_id is not None and corpus.created_by_id == user.pk:
        return True
    return Membership.objects.filter(project__corpus=corpus, user=user, role=Role.LEAD).exists()


def label_schema_can_version(user: Any, schema: LabelSchema) -> bool:
    if user_is_staff(user):
        return True
    if not user.is_authenticated:
        return False
    if schema.created_by_id is None:
        return False  # nobody owns it (its creator was deleted): staff only
    if schema.created_by_id == user.pk:
        return True
    owner_leads = Membership.objects.filter(user_id=schema.created_by_id, role=Role.LEAD).values("project_id")
    return Membership.objects.filter(
        project_id__in=owner_leads, project__schema_version__schema=schema, user=user, role=Role.LEAD
    ).exists()


class ProjectPermission(permissions.IsAuthenticated):
    """Members read (the queryset hides other projects); only leads write."""

    def has_object_permission(self, request: Request, view: APIView, obj: Project) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return True
        return project_can_manage(request.user, obj)


class CorpusPermission(permissions.IsAuthenticated):
    """Whoever sees a corpus reads it; its creator, leads of projects on it and staff change it."""

    def has_object_permission(self, request: Request, view: APIView, obj: Corpus) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return True
        return corpus_can_edit(request.user, obj)


class LabelSchemaPermission(permissions.IsAuthenticated):
    def has_object_permission(self, request: Request, view: APIView, obj: LabelSchema) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return True
        return label_schema_can_version(request.user, obj)
