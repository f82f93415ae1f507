"""Reads for corpora and what they hold, always through what the user may see.

A corpus is visible to staff, to its creator and to members of any project on it; everything
inside a corpus (conversations, speakers, utterances, imported annotations) follows the corpus.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet

from corpora.models import Conversation, Corpus, Language, Speaker, Utterance


def _is_staff(user: Any) -> bool:
    return bool(user.is_authenticated and user.is_staff)


def corpora_visible_to(user: Any) -> QuerySet[Corpus]:
    from annotation.models import Membership

    if _is_staff(user):
        return Corpus.objects.all()
    if not user.is_authenticated:
        return Corpus.objects.none()
    member_of = Membership.objects.filter(user=user).values("project__corpus_id")
    return Corpus.objects.filter(Q(created_by=user) | Q(pk__in=member_of))


def corpus_ids_visible_to(user: Any) -> QuerySet[Corpus, Any]:
    """A subquery of visible corpus ids, to filter big tables without a join per row."""
    return corpora_visible_to(user).values("pk")


def languages_list() -> QuerySet[Language]:
    return Language.objects.all()


def conversations_visible_to(user: Any) -> QuerySet[Conversation]:
    if _is_staff(user):
        return Conversation.objects.all()
    return Conversation.objects.filter(corpus_id__in=corpus_ids_visible_to(user))


def speakers_visible_to(user: Any) -> QuerySet[Speaker]:
    if _is_staff(user):
        return Speaker.objects.all()
    return Speaker.objects.filter(corpus_id__in=corpus_ids_visible_to(user))


def utterances_visible_to(user: Any) -> QuerySet[Utterance]:
    if _is_staff(user):
        return Utterance.objects.all()
    return Utterance.objects.filter(corpus_id__in=corpus_ids_visible_to(user))


def label_lookup(label: str) -> Q | None:
    """A portable condition on ``Annotation.value`` meaning "its answer includes ``label``".

    Built from the questions of every schema version that offers the label (a small table), per
    question key and type, with lookups that PostgreSQL and SQLite both support:

    - single choice: the answer equals the label (``value__<key>=label``);
    - multi-label with intensity: the answer is a mapping with the label as a key (``has_key``);
    - multi-label without intensity: answers are stored in the question's label order without
      repeats (annotation.schema normalises them), so a label at position *i* of the question can
      only sit at index 0..i of the answer; one equality per possible index.

    JSON ``contains`` would be shorter but SQLite does not support it. Returns None when no
    question offers the label, so callers can return an empty result without a query.
    """
    from annotation.models import LabelSchemaVersion

    conditions: set[tuple[str, str, int]] = set()
    for questions in LabelSchemaVersion.objects.values_list("questions", flat=True):
        for question in questions if isinstance(questions, list) else []:
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
    """Utterances having an annotation the user may see whose answers include ``label``."""
    from annotation.models import Annotation
    from annotation.selectors import project_ids_visible_to

    lookup = label_lookup(label)
    if lookup is None:
        return utterances.none()
    annotations = Annotation.objects.filter(utterance=OuterRef("pk")).filter(lookup)
    if not _is_staff(user):
        # The utterance is visible, so its imported annotations are too; project ones need membership.
        annotations = annotations.filter(Q(project__isnull=True) | Q(project_id__in=project_ids_visible_to(user)))
    return utterances.filter(Exists(annotations))

