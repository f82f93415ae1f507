"""JSON API of the item browser (leads and reviewers): the project's items, filtered and paged by keyset, and one
item with its annotations, gold answer and history.

Access is the review screen's: the project's leads and reviewers (and staff); outsiders get 404, annotators 403.
Reviewers see annotator names only when the project's quality policy says so. Routes in ``urlpatterns`` below.
"""

from __future__ import annotations

from typing import Any

from django.urls import path
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from annotation.browse.selectors import (
    MAX_PAGE_SIZE,
    PAGE_SIZE,
    SORTS,
    STATUSES,
    CursorInvalid,
    browse_filters_clean,
    item_agreement,
    item_detail_get,
    item_status,
    items_browse,
    items_page,
    project_browse_facts,
)
from annotation.models import ProjectItem, Role
from annotation.quality.api import (
    ErrorSerializer,
    ReviewAdjudicationSerializer,
    ReviewAggregatedSerializer,
    ReviewAnnotationSerializer,
    ReviewerView,
    ReviewFlagSerializer,
    ReviewUtteranceSerializer,
)
from annotation.quality.selectors import QualityNotFound, names_visible
from annotation.schema import SchemaError

_TAG = "browse"


# --- serializers ----------------------------------------------------------------------------------------------------


class BrowseLanguageSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    direction = serializers.CharField()


class BrowseFactsSerializer(serializers.Serializer):
    project_id = serializers.IntegerField()
    name = serializers.CharField()
    role = serializers.CharField(allow_null=True, help_text="Your role; staff who are not members count as leads")
    can_manage = serializers.BooleanField(help_text="Leads (and staff) may make gold items")
    questions = serializers.JSONField()
    perspectives = serializers.ListField(child=serializers.CharField())
    languages = BrowseLanguageSerializer(many=True)
    items = serializers.IntegerField(help_text="Items in the project")
    statuses = serializers.ListField(child=serializers.CharField())


class BrowseRowSerializer(serializers.Serializer):
    utterance_id = serializers.IntegerField()
    text = serializers.CharField(source="utterance.text", help_text="Plain text; render it as text, never as HTML")
    language = serializers.CharField(source="utterance.language.code")
    direction = serializers.CharField(source="utterance.language.direction")
    speaker = serializers.CharField(source="utterance.speaker.external_id", allow_null=True, default=None)
    conversation = serializers.CharField(source="utterance.conversation.external_id", allow_null=True, default=None)
    split = serializers.SerializerMethodField()
    status = serializers.SerializerMethodField()
    is_gold = serializers.BooleanField()
    annotation_count = serializers.IntegerField()
    target_count = serializers.IntegerField()
    reserved_count = serializers.IntegerField()
    agreement = serializers.SerializerMethodField(help_text="Share of the most frequent answer (two answers or more)")
    uncertainty = serializers.FloatField(allow_null=True)
    open_flags = serializers.IntegerField()
    adjudicated = serializers.BooleanField()

    def get_split(self, item: ProjectItem) -> str:
        metadata = item.utterance.metadata
        return str(metadata.get("split", "")) if isinstance(metadata, dict) else ""

    def get_status(self, item: ProjectItem) -> str:
        return item_status(item)

    def get_agreement(self, item: ProjectItem) -> float | None:
        return item_agreement(item)


class BrowsePageSerializer(serializers.Serializer):
    results = BrowseRowSerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True, help_text="Pass as `cursor` for the next page; null at the end")


class ContextTurnOutSerializer(serializers.Serializer):
    utterance_id = serializers.IntegerField()
    turn_index = serializers.IntegerField()
    speaker = serializers.CharField(allow_null=True)
    text = serializers.CharField(allow_blank=True)
    language = BrowseLanguageSerializer()
    audio_url = serializers.CharField(allow_null=True)


class ItemFactsSerializer(serializers.Serializer):
    is_gold = serializers.BooleanField()
    annotation_count = serializers.IntegerField()
    target_count = serializers.IntegerField()
    reserved_count = serializers.IntegerField()
    agreement = serializers.FloatField(allow_null=True)
    uncertainty = serializers.FloatField(allow_null=True)
    split = serializers.CharField(allow_blank=True)
    turn_index = serializers.IntegerField(allow_null=True)
    can_make_gold = serializers.BooleanField(help_text="A lead may make it gold: nobody has been handed it yet")


class ItemAnnotationSerializer(ReviewAnnotationSerializer):
    gold_correct = serializers.BooleanField(allow_null=True, help_text="On a gold item: whether it matches the known answer")


class GoldAnswerSerializer(serializers.Serializer):
    expected = serializers.JSONField()
    numeric_tolerance = serializers.FloatField()


class ItemPredictionSerializer(serializers.Serializer):
    model_version = serializers.CharField()
    label = serializers.CharField(allow_blank=True)  # type: ignore[assignment]
    scores = serializers.JSONField()
    uncertainty = serializers.FloatField(allow_null=True)
    created_at = serializers.DateTimeField()


class HistoryEventSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    kind = serializers.CharField(
        help_text="handed, expired, skipped, annotated, predicted_model, predicted_llm, edited, flagged, flag_resolved, "
        "flag_dismissed, adjudicated, gold_set"
    )
    who = serializers.CharField(allow_blank=True)
    note = serializers.CharField(allow_blank=True)


class ItemDetailSerializer(serializers.Serializer):
    utterance = ReviewUtteranceSerializer()
    context = ContextTurnOutSerializer(many=True)  # type: ignore[assignment]
    item = ItemFactsSerializer(allow_null=True)
    questions = serializers.JSONField()
    perspectives = serializers.ListField(child=serializers.CharField())
    annotations = ItemAnnotationSerializer(many=True)
    flags = ReviewFlagSerializer(many=True)
    aggregated = ReviewAggregatedSerializer(many=True)
    adjudications = ReviewAdjudicationSerializer(many=True)
    gold = GoldAnswerSerializer(allow_null=True)
    predictions = ItemPredictionSerializer(many=True)
    history = HistoryEventSerializer(many=True)


_NOT_FOUND = OpenApiResponse(ErrorSerializer, description="Not a member of the project")
_FORBIDDEN = OpenApiResponse(ErrorSerializer, description="A member, but not a reviewer or lead")
_BAD = OpenApiResponse(description="Names the parameter and why")


# --- views ----------------------------------------------------------------------------------------------------------


class BrowseFactsView(ReviewerView):
    @extend_schema(
        tags=[_TAG], operation_id="browse_facts",
        summary="What the item browser and review screen need once: schema, languages, your role, item count",
        responses={200: BrowseFactsSerializer, 403: _FORBIDDEN, 404: _NOT_FOUND},
    )
    def get(self, request: Request, project_id: int) -> Response:
        project, role = self.reviewer_project(request, project_id)
        return Response(BrowseFactsSerializer(project_browse_facts(project=project, role=role, user=request.user)).data)


class BrowseItemsView(ReviewerView):
    @extend_schema(
        tags=[_TAG], operation_id="browse_items",
        summary="Every item of the project, searchable and filterable, in keyset pages (fast at any depth)",
        parameters=[
            OpenApiParameter("q", str, description="Text contains (case-insensitive)"),
            OpenApiParameter("language", str, description="Language code"),
            OpenApiParameter("speaker", str, description="Speaker id from the source"),
            OpenApiParameter("conversation", str, description="Conversation id from the source"),
            OpenApiParameter("split", str, description="Split named at import (train, dev, test…)"),
            OpenApiParameter("status", str, enum=list(STATUSES)),
            OpenApiParameter("label", str, description="Some annotation chose this label"),
            OpenApiParameter("agreement_below", float, description="Agreement (share of the top answer) under this"),
            OpenApiParameter("uncertainty_above", float, description="Model uncertainty over this"),
            OpenApiParameter("sort", str, enum=list(SORTS), description="id (default), agreement (lowest first), "
                             "uncertainty (highest first)"),
            OpenApiParameter("cursor", str, description="next_cursor of the previous page"),
            OpenApiParameter("page_size", int, description=f"Rows per page (default {PAGE_SIZE}, at most {MAX_PAGE_SIZE})"),
        ],
        responses={200: BrowsePageSerializer, 400: _BAD, 403: _FORBIDDEN, 404: _NOT_FOUND},
    )
    def get(self, request: Request, project_id: int) -> Response:
        project, _role = self.reviewer_project(request, project_id)
        try:
            filters = browse_filters_clean(request.query_params)
        except SchemaError as exc:
            raise ValidationError({k: [v] for k, v in exc.errors.items()}) from None
        size = _page_size(request.query_params.get("page_size"))
        try:
            page = items_page(
                items=items_browse(project=project, filters=filters), sort=filters.sort,
                cursor=request.query_params.get("cursor", ""), size=size,
            )
        except CursorInvalid as exc:
            raise ValidationError({"cursor": [str(exc)]}) from None
        return Response(BrowsePageSerializer({"results": page.rows, "next_cursor": page.next_cursor}).data)


def _page_size(raw: str | None) -> int:
    if not raw:
        return PAGE_SIZE
    try:
        size = int(raw)
    except ValueError:
        raise ValidationError({"page_size": [f"must be a whole number from 1 to {MAX_PAGE_SIZE}"]}) from None
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise ValidationError({"page_size": [f"must be from 1 to {MAX_PAGE_SIZE}"]})
    return size


class BrowseItemView(ReviewerView):
    @extend_schema(
        tags=[_TAG], operation_id="browse_item",
        summary="One item: the utterance and the turns before it, every annotation (names per policy), flags, "
        "aggregated answers, decisions, gold answer, predictions and history",
        responses={200: ItemDetailSerializer, 403: _FORBIDDEN, 404: _NOT_FOUND},
    )
    def get(self, request: Request, project_id: int, utterance_id: int) -> Response:
        project, role = self.reviewer_project(request, project_id)
        show = names_visible(project=project, user=request.user, role=role)
        try:
            detail: dict[str, Any] = item_detail_get(
                project=project, utterance_id=utterance_id, show_names=show,
                can_manage=role == Role.LEAD or bool(request.user.is_staff),
            )
        except QualityNotFound as exc:
            raise NotFound(str(exc)) from None
        return Response(ItemDetailSerializer(detail).data)


urlpatterns = [
    path("projects/<int:project_id>/items/", BrowseItemsView.as_view(), name="browse-items"),
    path("projects/<int:project_id>/items/facts/", BrowseFactsView.as_view(), name="browse-facts"),
    path("projects/<int:project_id>/items/<int:utterance_id>/", BrowseItemView.as_view(), name="browse-item"),
]
