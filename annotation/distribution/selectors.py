"""Reads for the annotation workflow: the item an annotator sees, their history, and progress for leads."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.db.models import Avg, Count, F, Q, QuerySet, Sum

from annotation.distribution.services import (
    LeadOnlyError,
    NotFoundError,
    gold_answer_is_correct,
    membership_is_lead,
    project_prediction_versions,
)
from annotation.models import (
    Annotation,
    Flag,
    GoldItem,
    Membership,
    Origin,
    Prediction,
    Project,
    ProjectItem,
    Reservation,
    Skip,
    SuggestionPolicy,
)
from corpora.models import Speaker, Utterance
from corpora.transcripts import transcript_provenance

CONTEXT_TURNS = 5


def project_for_member_get(*, project_id: int, user: User) -> Project:
    """The project, if the user is one of its members; NotFoundError otherwise (outsiders learn nothing)."""
    project = (
        Project.objects.select_related("schema_version")
        .filter(pk=project_id, memberships__user_id=user.pk)
        .first()
        if user.is_authenticated
        else None
    )
    if project is None:
        raise NotFoundError()
    return project


def _speaker_name(speaker: Speaker | None) -> str | None:
    if speaker is None:
        return None
    name = speaker.attributes.get("name") if isinstance(speaker.attributes, dict) else None
    return str(name) if name else speaker.external_id


def _language(utterance: Utterance) -> dict[str, str]:
    language = utterance.language
    return {"code": language.code, "name": language.name, "script": language.script, "direction": language.direction}


def _audio_url(utterance: Utterance) -> str | None:
    return utterance.audio.url if utterance.audio else None


def _suggestion(project: Project, utterance_id: int) -> dict[str, Any] | None:
    if project.suggestion_policy == SuggestionPolicy.HIDDEN:
        return None
    # Only models registered on this project for one of its questions (see project_prediction_versions).
    predictions = Prediction.objects.filter(utterance_id=utterance_id,
                                            model_version__in=project_prediction_versions(project))
    prediction = predictions.order_by("-created_at", "-id").first()
    if prediction is None:
        return None
    return {
        "model_version": prediction.model_version, "label": prediction.label, "scores": prediction.scores,
        "uncertainty": prediction.uncertainty,
    }


def context_turns(utterance: Utterance) -> list[dict[str, Any]]:
    """The turns before the utterance in its conversation (up to ``CONTEXT_TURNS``), oldest first."""
    if utterance.conversation_id is None or utterance.turn_index is None:
        return []
    previous = (
        Utterance.objects.filter(conversation_id=utterance.conversation_id, turn_index__lt=utterance.turn_index)
        .select_related("language", "speaker")
        .order_by("-turn_index")[:CONTEXT_TURNS]
    )
    return [
        {
            "utterance_id": turn.pk, "turn_index": turn.turn_index, "speaker": _speaker_name(turn.speaker),
            "text": turn.text, "language": _language(turn), "audio_url": _audio_url(turn),
        }
        for turn in reversed(list(previous))
    ]


def item_view_get(*, project: Project, item: ProjectItem, reservation: Reservation, resumed: bool) -> dict[str, Any]:
    """Everything the annotate screen needs for one item; whether it is a gold item is never revealed."""
    utterance = Utterance.objects.select_related("language", "speaker", "conversation").get(pk=item.utterance_id)
    context = context_turns(utterance)
    schema_version = project.schema_version
    return {
        "project_id": project.pk,
        "utterance": {
            "id": utterance.pk,
            "text": utterance.text,
            "language": _language(utterance),
            "audio_url": _audio_url(utterance),
            "audio_duration_s": utterance.audio_duration_s,
            "speaker": _speaker_name(utterance.speaker),
            "conversation": utterance.conversation.external_id if utterance.conversation else None,
            "turn_index": utterance.turn_index,
            "transcript": transcript_provenance(utterance.transcript_source, utterance.transcript_model,
                                                utterance.transcript_confidence, utterance.metadata),
        },
        "context": context,
        "suggestion_policy": project.suggestion_policy,
        "suggestion": _suggestion(project, utterance.pk),
        "schema": {
            "version_id": schema_version.pk, "questions": schema_version.questions,
            "perspectives": schema_version.perspectives,
        },
        "reservation": {"expires_at": reservation.expires_at, "resumed": resumed},
    }


def my_annotations_list(*, project: Project, user: User) -> QuerySet[Annotation]:
    return (
        Annotation.objects.filter(project=project, annotator_id=user.pk, origin=Origin.HUMAN)
        .select_related("utterance", "utterance__language")
        .order_by("-id")
    )


def my_skips_list(*, project: Project, user: User) -> QuerySet[Skip]:
    """The items I skipped that still need annotations (I may revisit them), newest first."""
    return (
        Skip.objects.filter(project=project, annotator_id=user.pk)
        .filter(Q(item__is_gold=True) | Q(item__annotation_count__lt=F("item__target_count") - F("item__reserved_count")))
        .select_related("item__utterance__language")
        .order_by("-id")
    )


def gold_accuracy_by_annotator(project: Project) -> dict[int, dict[str, Any]]:
    """For each annotator who answered gold items: how many, how many right, and the share right."""
    golds = {gold.utterance_id: gold for gold in GoldItem.objects.filter(project=project)}
    scores: dict[int, dict[str, Any]] = {}
    if not golds:
        return scores
    answers = Annotation.objects.filter(
        project=project, origin=Origin.HUMAN, utterance_id__in=list(golds), annotator__isnull=False
    ).values_list("annotator_id", "utterance_id", "value")
    for annotator_id, utterance_id, value in answers.iterator(chunk_size=2000):
        score = scores.setdefault(annotator_id, {"gold_answered": 0, "gold_correct": 0})
        score["gold_answered"] += 1
        score["gold_correct"] += int(gold_answer_is_correct(golds[utterance_id], value or {}))
    for score in scores.values():
        score["gold_accuracy"] = score["gold_correct"] / score["gold_answered"]
    return scores


def project_progress_get(*, project: Project, user: User) -> dict[str, Any]:
    """Progress of a project per annotator and per language, with gold accuracy; leads only."""
    if not membership_is_lead(project, user):
        raise LeadOnlyError()
    ordinary = Q(is_gold=False)
    complete = ordinary & Q(annotation_count__gte=F("target_count"))
    items = ProjectItem.objects.filter(project=project)
    totals = items.aggregate(
        items=Count("id", filter=ordinary), complete=Count("id", filter=complete),
        gold_items=Count("id", filter=Q(is_gold=True)), annotations=Sum("annotation_count"),
        reserved=Sum("reserved_count", filter=ordinary),
    )
    by_language = [
        {
            "language": row["language__code"], "items": row["items"], "complete": row["complete"],
            "annotations": row["annotations"] or 0,
        }
        for row in items.values("language__code")
        .annotate(items=Count("id", filter=ordinary), complete=Count("id", filter=complete), annotations=Sum("annotation_count"))
        .order_by("language__code")
    ]
    per_annotator: dict[int, dict[str, Any]] = {
        member["user_id"]: {
            "user_id": member["user_id"], "username": member["user__username"], "role": member["role"],
            "annotations": 0, "mean_lead_time_ms": None, "skips": 0, "flags": 0, "by_language": {},
            "gold_answered": 0, "gold_correct": 0, "gold_accuracy": None,
        }
        for member in Membership.objects.filter(project=project).values("user_id", "user__username", "role")
    }
    human = Annotation.objects.filter(project=project, origin=Origin.HUMAN, annotator__isnull=False)
    for row in human.values("annotator_id").annotate(n=Count("id"), mean=Avg("lead_time_ms")).order_by():
        if row["annotator_id"] in per_annotator:
            per_annotator[row["annotator_id"]].update(annotations=row["n"], mean_lead_time_ms=row["mean"])
    per_language = human.values_list("annotator_id", "utterance__language__code").annotate(n=Count("id")).order_by()
    for annotator_id, language_code, count in per_language:
        if annotator_id in per_annotator:
            per_annotator[annotator_id]["by_language"][language_code] = count
    skips = Skip.objects.filter(project=project).values_list("annotator_id").annotate(n=Count("id")).order_by()
    for annotator_id, count in skips:
        if annotator_id in per_annotator:
            per_annotator[annotator_id]["skips"] = count
    flags = Flag.objects.filter(project=project).values_list("created_by_id").annotate(n=Count("id")).order_by()
    for annotator_id, count in flags:
        if annotator_id in per_annotator:
            per_annotator[annotator_id]["flags"] = count
    for annotator_id, score in gold_accuracy_by_annotator(project).items():
        if annotator_id in per_annotator:
            per_annotator[annotator_id].update(score)
    return {
        "project_id": project.pk,
        "overlap": project.overlap,
        "items": totals["items"],
        "complete": totals["complete"],
        "gold_items": totals["gold_items"],
        "annotations": totals["annotations"] or 0,
        "reserved": totals["reserved"] or 0,
        "open_flags": Flag.objects.filter(project=project, resolved=False).count(),
        "by_language": by_language,
        "by_annotator": sorted(per_annotator.values(), key=lambda row: row["username"]),
    }


def flags_list(*, project: Project, user: User) -> QuerySet[Flag]:
    if not membership_is_lead(project, user):
        raise LeadOnlyError()
    return Flag.objects.filter(project=project).select_related("item", "created_by").order_by("resolved", "-id")
