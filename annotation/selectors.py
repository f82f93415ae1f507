"""Reads for label schemas, projects, memberships and annotations, through what the user may see.

A project is visible only to its members (and staff); to anyone else it does not exist. Which of a project's
annotations a member reads depends on their role (``annotations_visible_to``: one rule per role, used by every
endpoint that lists annotations or filters by them); imported ones (no project) go to the corpus's curators.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Case, CharField, Exists, F, OuterRef, Q, QuerySet, Subquery, Value, When

from annotation.models import (
    Annotation,
    Invitation,
    LabelSchema,
    LabelSchemaVersion,
    Membership,
    Origin,
    Project,
    Role,
    SuggestionPolicy,
)
from corpora.models import Utterance
from corpora.selectors import corpus_ids_curated_by, user_is_staff


def projects_visible_to(user: Any) -> QuerySet[Project]:
    if user_is_staff(user):
        return Project.objects.all()
    if not user.is_authenticated:
        return Project.objects.none()
    return Project.objects.filter(pk__in=Membership.objects.filter(user=user).values("project_id"))


def project_ids_visible_to(user: Any) -> QuerySet[Project, Any]:
    return projects_visible_to(user).values("pk")


def project_ids_with_role(user: Any, *roles: str) -> QuerySet[Membership, Any]:
    """A subquery of the ids of projects where the user has one of ``roles``."""
    if not user.is_authenticated:
        return Membership.objects.none().values("project_id")
    return Membership.objects.filter(user_id=user.pk, role__in=roles).values("project_id")


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


def memberships_visible_to(*, project: Project, user: Any) -> QuerySet[Membership]:
    """Who is in a project: its leads and staff see every member; other members only themselves (user names are
    not for everyone to list, and reviewers of a project that hides names must not learn them here)."""
    memberships = memberships_of_project(project=project)
    if user_is_staff(user) or memberships.filter(user_id=user.pk, role=Role.LEAD).exists():
        return memberships
    return memberships.filter(user_id=user.pk)


def invitations_of_project(*, project: Project) -> QuerySet[Invitation]:
    return Invitation.objects.filter(project=project).select_related("invited_by").prefetch_related("languages")


def invitations_for(user: Any) -> QuerySet[Invitation]:
    """The invitations waiting for this user's answer."""
    if not user.is_authenticated:
        return Invitation.objects.none()
    return (
        Invitation.objects.filter(username=user.get_username())
        .select_related("project", "invited_by")
        .prefetch_related("languages")
    )


def label_schemas_list(user: Any) -> QuerySet[LabelSchema]:
    """Schemas are shared vocabulary: every signed-in user reads all of them. ``owner_name``, the creator's user
    name, only for the creator and staff: schemas are listed to everyone, user names are not."""
    owner = F("created_by__username") if user_is_staff(user) else Case(
        When(created_by_id=user.pk, then=F("created_by__username")), default=Value(None), output_field=CharField()
    )
    return LabelSchema.objects.prefetch_related("versions").annotate(owner_name=owner)


def label_schema_versions_list() -> QuerySet[LabelSchemaVersion]:
    return LabelSchemaVersion.objects.select_related("schema")


def annotations_visible_to(user: Any) -> QuerySet[Annotation]:
    """Annotations the user may read, each annotated with ``annotator_name``: the author's user name, or None
    where the viewer may not know who answered.

    - staff: everything, with names;
    - leads of a project: all its annotations, with names;
    - reviewers: all the project's annotations; names only where the quality policy shows them to reviewers;
    - annotators: their own answers; model and LLM labels only where the suggestion policy shows suggestions;
    - imported annotations (no project): the corpus's curators (its creator, leads and reviewers of projects
      on it), never its annotators: imported human, model and LLM labels are other raters' answers.
    """
    if user_is_staff(user):
        return Annotation.objects.annotate(annotator_name=F("annotator__username"))
    if not user.is_authenticated:
        return Annotation.objects.none().annotate(annotator_name=Value(None, output_field=CharField()))
    member_of = project_ids_with_role(user, *Role.values)
    suggestions_shown = Project.objects.filter(pk__in=member_of).exclude(suggestion_policy=SuggestionPolicy.HIDDEN)
    visible = (
        Q(project_id__in=project_ids_with_role(user, Role.LEAD, Role.REVIEWER))
        | Q(project_id__in=member_of, annotator_id=user.pk)
        | (Q(project_id__in=suggestions_shown.values("pk")) & ~Q(origin=Origin.HUMAN))
        | Q(project__isnull=True, utterance__corpus_id__in=corpus_ids_curated_by(user))
    )
    names_shown = Membership.objects.filter(
        user_id=user.pk, role=Role.REVIEWER, project__quality_policy__show_annotator_names_to_reviewers=True
    ).values("project_id")
    named = (
        Q(annotator_id=user.pk)
        | Q(project_id__in=project_ids_with_role(user, Role.LEAD))
        | Q(project_id__in=names_shown)
    )
    return Annotation.objects.filter(visible).annotate(
        annotator_name=Case(When(named, then=F("annotator__username")), default=Value(None), output_field=CharField())
    )


def label_lookup(label: str, *, questions: list[Any] | None = None) -> Q | None:
    """A portable condition on ``Annotation.value`` meaning "its answer includes ``label``".

    Built from the questions of every schema version that offers the label (a small table), or only from
    ``questions`` (one schema version's) when given, per question key and type, with lookups that PostgreSQL and
    SQLite both support:

    - single choice: the answer equals the label (``value__<key>=label``);
    - multi-label with intensity: the answer is a mapping with the label as a key (``has_key``);
    - multi-label without intensity: answers are stored in the question's label order without
      repeats (annotation.schema normalises them), so a label at position *i* of the question can
      only sit at index 0..i of the answer; one equality per possible index.

    JSON ``contains`` would be shorter but SQLite does not support it. Returns None when no
    question offers the label, so callers can return an empty result without a query.
    """
    conditions: set[tuple[str, str, int]] = set()
    versions = [questions] if questions is not None else LabelSchemaVersion.objects.values_list("questions", flat=True)
    for version_questions in versions:
        for question in version_questions if isinstance(version_questions, list) else []:
            labels = question.get("labels") if isinstance(question, dict) else None
            if not isinstance(labels, list) or label not in labels:
                continue
            key, qtype = question.get("key"), question.get("type")
            if qtype == "single_choice":
                conditions.add((key, "exact", 0))
            elif qtype == "multi_label" and question.get("intensity"):
                conditions.add((key, "has_key", 0))
            elif qtype == "multi_label":
                conditions.add((key, "index", labels.index(label)))
    if not conditions:
        return None
    lookup = Q()
    for key, kind, position in sorted(conditions):
        if kind == "exact":
            lookup |= Q(**{f"value__{key}": label})
        elif kind == "has_key":
            lookup |= Q(**{f"value__{key}__has_key": label})
        else:
            for index in range(position + 1):
                lookup |= Q(**{f"value__{key}__{index}": label})
    return lookup


def utterances_with_label(*, utterances: QuerySet[Utterance], label: str, user: Any) -> QuerySet[Utterance]:
    """Utterances having an annotation the user may read (``annotations_visible_to``) whose answers include ``label``."""
    lookup = label_lookup(label)
    if lookup is None:
        return utterances.none()
    annotations = annotations_visible_to(user).filter(utterance=OuterRef("pk")).filter(lookup)
    return utterances.filter(Exists(annotations))
