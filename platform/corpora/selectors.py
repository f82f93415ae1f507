"""Reads for corpora and what they hold, always through what the user may see.

A corpus is visible to staff, to its creator and to members of any project on it; everything
inside a corpus (conversations, speakers, utterances, imported annotations) follows the corpus.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from corpora.models import Conversation, Corpus, Language, Speaker, Utterance


def user_is_staff(user: Any) -> bool:
    """Staff see every corpus, project and annotation (the one rule every selector shares)."""
    return bool(user.is_authenticated and user.is_staff)


def corpora_visible_to(user: Any) -> QuerySet[Corpus]:
    from annotation.models import Membership

    if user_is_staff(user):
        return Corpus.objects.all()
    if not user.is_authenticated:
        return Corpus.objects.none()
    member_of = Membership.objects.filter(user=user).values("project__corpus_id")
    return Corpus.objects.filter(Q(created_by=user) | Q(pk__in=member_of))


def corpus_ids_visible_to(user: Any) -> QuerySet[Corpus, Any]:
    """A subquery of visible corpus ids, to filter big tables without a join per row."""
    return corpora_visible_to(user).values("pk")


def corpus_ids_curated_by(user: Any) -> QuerySet[Corpus, Any]:
    """Corpora whose imported labels and import jobs the user may read: staff, the corpus's creator, and leads
    and reviewers of projects on it. An annotator sees the corpus's utterances, never labels others gave them."""
    from annotation.models import Membership, Role

    if user_is_staff(user):
        return Corpus.objects.values("pk")
    if not user.is_authenticated:
        return Corpus.objects.none().values("pk")
    reviews = Membership.objects.filter(user=user, role__in=(Role.LEAD, Role.REVIEWER)).values("project__corpus_id")
    return Corpus.objects.filter(Q(created_by=user) | Q(pk__in=reviews)).values("pk")


def languages_list() -> QuerySet[Language]:
    return Language.objects.all()


def conversations_visible_to(user: Any) -> QuerySet[Conversation]:
    if user_is_staff(user):
        return Conversation.objects.all()
    return Conversation.objects.filter(corpus_id__in=corpus_ids_visible_to(user))


def speakers_visible_to(user: Any) -> QuerySet[Speaker]:
    if user_is_staff(user):
        return Speaker.objects.all()
    return Speaker.objects.filter(corpus_id__in=corpus_ids_visible_to(user))


def utterances_visible_to(user: Any) -> QuerySet[Utterance]:
    if user_is_staff(user):
        return Utterance.objects.all()
    return Utterance.objects.filter(corpus_id__in=corpus_ids_visible_to(user))
