"""Reads for the item browser: every item of a project, filtered and paged by keyset, and one item with its history.

See README.md next to this file for the filters, the indexes each one uses and why pages are keyset, not numbered.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import BooleanField, Count, Exists, F, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from annotation.distribution.selectors import context_turns
from annotation.distribution.services import gold_answer_is_correct
from annotation.models import (
    Adjudication,
    Annotation,
    Flag,
    GoldItem,
    Origin,
    Prediction,
    Project,
    ProjectItem,
    Reservation,
    ReservationStatus,
    Role,
    Skip,
)
from annotation.quality.selectors import item_rater_names, review_item_get
from annotation.schema import SchemaError
from annotation.selectors import label_lookup
from corpora.models import Language

STATUSES = ("unassigned", "in_progress", "complete", "adjudicated", "flagged", "gold")
SORTS = ("id", "agreement", "uncertainty")
PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
MAX_QUERY_LENGTH = 200
PREDICTIONS_SHOWN = 5


@dataclass(frozen=True)
class BrowseFilters:
    q: str = ""
    language: str = ""
    speaker: str = ""
    conversation: str = ""
    split: str = ""
    status: str = ""
    label: str = ""
    agreement_below: float | None = None
    uncertainty_above: float | None = None
    sort: str = "id"


def _share(params: Mapping[str, str], name: str, errors: dict[str, str]) -> float | None:
    raw = (params.get(name) or "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        errors[name] = "must be a number between 0 and 1"
        return None
    if not 0.0 <= value <= 1.0:
        errors[name] = "must be between 0 and 1"
        return None
    return value


def browse_filters_clean(params: Mapping[str, str]) -> BrowseFilters:
    """The browser's query parameters, checked; SchemaError names each bad parameter and why."""
    errors: dict[str, str] = {}
    text = {name: (params.get(name) or "").strip() for name in ("q", "language", "speaker", "conversation", "split", "label")}
    if len(text["q"]) > MAX_QUERY_LENGTH:
        errors["q"] = f"at most {MAX_QUERY_LENGTH} characters"
    for name in ("language", "speaker", "conversation", "split", "label"):
        if len(text[name]) > 200:
            errors[name] = "at most 200 characters"
    status = (params.get("status") or "").strip()
    if status and status not in STATUSES:
        errors["status"] = f"must be one of {', '.join(STATUSES)}"
    sort = (params.get("sort") or "id").strip()
    if sort not in SORTS:
        errors["sort"] = f"must be one of {', '.join(SORTS)}"
    agreement_below = _share(params, "agreement_below", errors)
    uncertainty_above = _share(params, "uncertainty_above", errors)
    if errors:
        raise SchemaError(errors)
    return BrowseFilters(
        **text, status=status, sort=sort, agreement_below=agreement_below, uncertainty_above=uncertainty_above
    )


def items_browse(*, project: Project, filters: BrowseFilters) -> QuerySet[ProjectItem]:
    """The project's items matching the filters, in the filter's sort order, with what a row of the browser shows.

    Each row carries ``open_flags`` and ``adjudicated``; utterance, language, speaker and conversation are joined.
    """
    items = ProjectItem.objects.filter(project=project)
    f = filters
    if f.q:
        items = items.filter(utterance__text__icontains=f.q)
    if f.language:
        items = items.filter(language_id=Subquery(Language.objects.filter(code=f.language).values("pk")[:1]))
    if f.speaker:
        items = items.filter(utterance__speaker__external_id=f.speaker)
    if f.conversation:
        items = items.filter(utterance__conversation__external_id=f.conversation)
    if f.split:
        items = items.filter(utterance__metadata__split=f.split)
    open_flags = Flag.objects.filter(project=project, resolved=False, item_id=OuterRef("pk"))
    adjudicated = Adjudication.objects.filter(project=project, utterance_id=OuterRef("utterance_id"))
    if f.status == "unassigned":
        items = items.filter(is_gold=False, annotation_count=0, reserved_count=0)
    elif f.status == "in_progress":
        items = items.filter(
            Q(annotation_count__gt=0) | Q(reserved_count__gt=0), is_gold=False, annotation_count__lt=F("target_count")
        )
    elif f.status == "complete":
        items = items.filter(is_gold=False, annotation_count__gte=F("target_count"))
    elif f.status == "adjudicated":
        items = items.filter(Exists(adjudicated))
    elif f.status == "flagged":
        items = items.filter(Exists(open_flags))
    elif f.status == "gold":
        items = items.filter(is_gold=True)
    if f.label:
        lookup = label_lookup(f.label, questions=project.schema_version.questions)
        if lookup is None:
            return items.none()
        chose = Annotation.objects.filter(project=project, utterance_id=OuterRef("utterance_id")).filter(lookup)
        items = items.filter(Exists(chose))
    if f.agreement_below is not None:
        # disagreement = 1 - share of the most frequent answer; agreement is that share, known from two answers on.
        items = items.filter(annotation_count__gte=2, disagreement__gt=1.0 - f.agreement_below)
    if f.uncertainty_above is not None:
        items = items.filter(uncertainty__gt=f.uncertainty_above)
    if f.sort == "uncertainty":
        items = items.filter(uncertainty__isnull=False)
    return items.select_related(
        "utterance", "utterance__language", "utterance__speaker", "utterance__conversation"
    ).annotate(
        open_flags=Coalesce(
            Subquery(open_flags.order_by().values("item_id").annotate(n=Count("pk")).values("n")[:1],
                     output_field=IntegerField()),
            0,
        ),
        adjudicated=Exists(adjudicated, output_field=BooleanField()),
    )


# --- keyset pages ----------------------------------------------------------------------------------------------------

# sort -> (column the page is ordered by, descending?); ties are broken by id in the same direction.
_ORDER = {"id": (None, False), "agreement": ("disagreement", True), "uncertainty": ("uncertainty", True)}


class CursorInvalid(ValueError):
    pass


def _cursor_encode(position: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


def _cursor_decode(cursor: str, sort: str) -> list[Any]:
    try:
        position = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise CursorInvalid("not a cursor this list gave out") from None
    column, _ = _ORDER[sort]
    expected = 1 if column is None else 2
    if not isinstance(position, list) or len(position) != expected or not isinstance(position[-1], int):
        raise CursorInvalid("not a cursor this list gave out")
    if column is not None and not isinstance(position[0], (int, float)):
        raise CursorInvalid("not a cursor this list gave out")
    return position


@dataclass(frozen=True)
class ItemsPage:
    rows: list[ProjectItem]
    next_cursor: str | None


def items_page(*, items: QuerySet[ProjectItem], sort: str, cursor: str = "", size: int = PAGE_SIZE) -> ItemsPage:
    """One page after ``cursor`` (from the previous page's ``next_cursor``): a range scan on an index, however deep.

    Numbered pages would make PostgreSQL count and skip every earlier row; a million items would make that slow.
    """
    column, descending = _ORDER[sort]
    if cursor:
        position = _cursor_decode(cursor, sort)
        last_id = position[-1]
        if column is None:
            items = items.filter(id__gt=last_id)
        else:
            value = position[0]
            items = items.filter(Q(**{f"{column}__lt": value}) | Q(**{column: value, "id__lt": last_id}))
    order = ["id"] if column is None else [f"-{column}", "-id"]
    rows = list(items.order_by(*order)[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    next_cursor = None
    if more and rows:
        last = rows[-1]
        next_cursor = _cursor_encode([last.pk] if column is None else [getattr(last, column), last.pk])
    return ItemsPage(rows=rows, next_cursor=next_cursor)


def item_status(item: ProjectItem) -> str:
    """The one status a row shows: flagged, adjudicated, gold, complete, in progress or unassigned (first that holds)."""
    if getattr(item, "open_flags", 0):
        return "flagged"
    if getattr(item, "adjudicated", False):
        return "adjudicated"
    if item.is_gold:
        return "gold"
    if item.annotation_count >= item.target_count:
        return "complete"
    if item.annotation_count or item.reserved_count:
        return "in_progress"
    return "unassigned"


def item_agreement(item: ProjectItem) -> float | None:
    """Share of the most frequent answer to the schema's first single-choice question, from two answers on."""
    return None if item.annotation_count < 2 else 1.0 - item.disagreement


# --- one item ------------------------------------------------------------------------------------------------------


def project_browse_facts(*, project: Project, role: str | None, user: Any) -> dict[str, Any]:
    """What the browser and review screens need once: the schema, the project's languages, the viewer's role."""
    languages = project.languages.all() if project.languages.exists() else project.corpus.languages.all()
    version = project.schema_version
    return {
        "project_id": project.pk,
        "name": project.name,
        "role": "lead" if user.is_staff and role is None else role,
        "can_manage": role == Role.LEAD or bool(user.is_staff),
        "questions": version.questions,
        "perspectives": version.perspectives,
        "languages": [
            {"code": lang.code, "name": lang.name, "direction": lang.direction} for lang in languages.order_by("code")
        ],
        "items": ProjectItem.objects.filter(project=project).count(),
        "statuses": list(STATUSES),
    }


def _history(
    *, project: Project, item: ProjectItem, annotations: list[dict[str, Any]], names: dict[str, str], show_names: bool,
) -> list[dict[str, Any]]:
    """What happened to the item, oldest first: handed out, expired, skipped, answered, edited, flagged, closed, decided."""
    def person(user_id: int | None) -> str:
        return names.get(f"user:{user_id}", "") if user_id is not None else ""

    def staff(username: str | None) -> str:
        """Reviewers and leads: named as review_item_get names deciders."""
        return (username or "") if show_names else "a reviewer"

    events: list[tuple[datetime, int, dict[str, Any]]] = []

    def add(at: datetime | None, kind: str, who: str = "", note: str = "") -> None:
        if at is not None:
            events.append((at, len(events), {"at": at, "kind": kind, "who": who, "note": note}))

    for r in Reservation.objects.filter(item=item).order_by("id").values("annotator_id", "status", "created_at", "updated_at"):
        add(r["created_at"], "handed", person(r["annotator_id"]))
        if r["status"] == ReservationStatus.EXPIRED:
            add(r["updated_at"], "expired", person(r["annotator_id"]))
    for skip in Skip.objects.filter(item=item).order_by("id").values("annotator_id", "reason", "created_at"):
        add(skip["created_at"], "skipped", person(skip["annotator_id"]), skip["reason"])
    for a in annotations:
        if a["imported"]:
            continue  # a rating that came with the corpus happened to the source, not to this item
        add(a["created_at"], "annotated" if a["origin"] == Origin.HUMAN else f"predicted_{a['origin']}", a["rater"])
        if (a["updated_at"] - a["created_at"]).total_seconds() >= 1:
            add(a["updated_at"], "edited", a["rater"])
    flags = Flag.objects.filter(item=item).order_by("id").values(
        "created_by_id", "note", "created_at", "resolved_at", "resolved_by__username", "dismissed", "resolution_note"
    )
    for flag in flags:
        add(flag["created_at"], "flagged", person(flag["created_by_id"]), flag["note"])
        add(
            flag["resolved_at"], "flag_dismissed" if flag["dismissed"] else "flag_resolved",
            staff(flag["resolved_by__username"]), flag["resolution_note"],
        )
    adjudications = Adjudication.objects.filter(project=project, utterance_id=item.utterance_id).values(
        "decided_at", "decided_by__username", "note"
    )
    for adj in adjudications:
        add(adj["decided_at"], "adjudicated", staff(adj["decided_by__username"]), adj["note"])
    gold = GoldItem.objects.filter(item=item).values("created_at", "created_by__username").first()
    if gold is not None:
        add(gold["created_at"], "gold_set", staff(gold["created_by__username"]))
    return [event for _, _, event in sorted(events, key=lambda e: (e[0], e[1]))]


def item_detail_get(*, project: Project, utterance_id: int, show_names: bool, can_manage: bool) -> dict[str, Any]:
    """One item for the browser and the review screen: the side-by-side of ``review_item_get`` plus the conversation
    before it, the item's counters, model predictions, the gold answer (and whether each answer matches it) and the
    item's history. QualityNotFound when the utterance is not an item of the project."""
    detail = review_item_get(project=project, utterance_id=utterance_id, show_names=show_names)
    item = (
        ProjectItem.objects.select_related("utterance__language", "utterance__speaker", "utterance__conversation")
        .filter(project=project, utterance_id=utterance_id)
        .first()
    )
    human_keys = [row["rater_key"] for row in detail["annotations"] if row["origin"] == Origin.HUMAN]
    others: list[str] = []
    if item is not None:
        others = [
            f"user:{user_id}"
            for user_id in Reservation.objects.filter(item=item).order_by("id").values_list("annotator_id", flat=True)
        ]
    flag_keys = [f"user:{u}" for u in Flag.objects.filter(project=project, item__utterance_id=utterance_id)
                 .order_by("id").values_list("created_by_id", flat=True)]
    # The same order as review_item_get (annotators, then flaggers), so "Annotator B" is the same person in both.
    names = item_rater_names(human_keys + flag_keys + others, show_names=show_names)
    gold = GoldItem.objects.filter(project=project, utterance_id=utterance_id).first()
    for row in detail["annotations"]:
        row["gold_correct"] = (
            gold_answer_is_correct(gold, row["value"] if isinstance(row["value"], dict) else {})
            if gold is not None and row["origin"] == Origin.HUMAN else None
        )
    utterance = item.utterance if item is not None else None
    predictions = list(
        Prediction.objects.filter(utterance_id=utterance_id).order_by("-created_at", "-id")
        .values("model_version", "label", "scores", "uncertainty", "created_at")[:PREDICTIONS_SHOWN]
    )
    detail.update(
        {
            "context": context_turns(utterance) if utterance is not None else [],
            "item": None if item is None else {
                "is_gold": item.is_gold,
                "annotation_count": item.annotation_count,
                "target_count": item.target_count,
                "reserved_count": item.reserved_count,
                "agreement": item_agreement(item),
                "uncertainty": item.uncertainty,
                "split": (utterance.metadata or {}).get("split", "") if utterance is not None else "",
                "turn_index": utterance.turn_index if utterance is not None else None,
                # Gold needs an item nobody has been handed (distribution.gold_item_set): its answer must stay unseen.
                "can_make_gold": can_manage and not item.is_gold and not item.annotation_count and not item.reserved_count,
            },
            "gold": None if gold is None else {"expected": gold.expected, "numeric_tolerance": gold.numeric_tolerance},
            "predictions": predictions,
            "history": _history(project=project, item=item, annotations=detail["annotations"], names=names,
                                show_names=show_names) if item is not None else [],
        }
    )
    return detail
