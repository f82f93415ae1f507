"""JSON API of the annotation workflow: next item, submit, skip, flag, my history, edit, progress, gold.

Views are thin: they parse with explicit serializers, call ``annotation.distribution`` services and
``annotation.distribution.selectors`` reads, and turn their errors into 400/403/404/409 responses.
Routes live in ``urlpatterns`` below and are included by ``config.api_urls``.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.distribution import postgres as distribution_pg
from annotation.distribution import services as distribution
from annotation.distribution.selectors import (
    flags_list,
    item_view_get,
    my_annotations_list,
    my_skips_list,
    project_for_member_get,
    project_progress_get,
)
from annotation.models import Annotation, Flag, Project, SuggestionPolicy
from annotation.schema import SchemaError
from config.drf import FirstRendererNegotiation, JSONParser, paginated
from corpora.api_common import MAX_ID
from corpora.models import TextDirection
from corpora.transcripts import TranscriptSerializer

# Keys of SchemaError that are request fields; every other key is a question of the schema, inside "value".
_REQUEST_FIELDS = {"perspective", "lead_time_ms", "reason", "note", "utterance", "numeric_tolerance"}
_TAG = "annotate"


# --- serializers ----------------------------------------------------------------------------------------------------


class LanguageOutSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    script = serializers.CharField()
    direction = serializers.ChoiceField(choices=TextDirection.choices)


class UtteranceOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    text = serializers.CharField(help_text="Plain text; render it as text, never as HTML")
    language = LanguageOutSerializer()
    audio_url = serializers.CharField(allow_null=True)
    audio_duration_s = serializers.FloatField(allow_null=True)
    speaker = serializers.CharField(allow_null=True)
    conversation = serializers.CharField(allow_null=True)
    turn_index = serializers.IntegerField(allow_null=True)
    transcript = TranscriptSerializer(allow_null=True, help_text="Provenance of an automatic transcript: show it")


class ContextTurnSerializer(serializers.Serializer):
    utterance_id = serializers.IntegerField()
    turn_index = serializers.IntegerField()
    speaker = serializers.CharField(allow_null=True)
    text = serializers.CharField()
    language = LanguageOutSerializer()
    audio_url = serializers.CharField(allow_null=True)


class SuggestionSerializer(serializers.Serializer):
    model_version = serializers.CharField()
    label = serializers.CharField(allow_blank=True)  # type: ignore[assignment]
    scores = serializers.JSONField()
    uncertainty = serializers.FloatField(allow_null=True)


class SchemaOutSerializer(serializers.Serializer):
    version_id = serializers.IntegerField()
    questions = serializers.JSONField()
    perspectives = serializers.ListField(child=serializers.CharField())


class ReservationOutSerializer(serializers.Serializer):
    expires_at = serializers.DateTimeField()
    resumed = serializers.BooleanField(help_text="True when this is the item you already held")


class NextItemSerializer(serializers.Serializer):
    project_id = serializers.IntegerField()
    utterance = UtteranceOutSerializer()
    context = ContextTurnSerializer(many=True, help_text="Previous turns of the conversation, oldest first")  # type: ignore[assignment]
    suggestion_policy = serializers.ChoiceField(choices=SuggestionPolicy.choices)
    suggestion = SuggestionSerializer(allow_null=True)
    schema = SchemaOutSerializer()
    reservation = ReservationOutSerializer()


class AnnotationOutSerializer(serializers.ModelSerializer):
    utterance_text = serializers.CharField(source="utterance.text", read_only=True)
    language = serializers.CharField(source="utterance.language.code", read_only=True)
    direction = serializers.CharField(source="utterance.language.direction", read_only=True)
    editable = serializers.SerializerMethodField()

    class Meta:
        model = Annotation
        fields = [
            "id", "utterance", "utterance_text", "language", "direction", "value", "perspective", "client_id",
            "lead_time_ms", "created_at", "updated_at", "reviewed_at", "editable",
        ]
        read_only_fields = fields

    def get_editable(self, annotation: Annotation) -> bool:
        return annotation.reviewed_at is None


class SubmitInSerializer(serializers.Serializer):
    client_id = serializers.UUIDField(help_text="Made by the client once per answer; a retry sends the same id")
    utterance = serializers.IntegerField(min_value=1, max_value=MAX_ID, help_text="Id of the utterance you were given")
    value = serializers.JSONField(help_text="Answers keyed by question key")
    lead_time_ms = serializers.IntegerField(min_value=0, max_value=86_400_000, required=False, allow_null=True)
    perspective = serializers.CharField(max_length=20, required=False, allow_blank=True, default="")
    next = serializers.BooleanField(required=False, default=False, help_text="Also reserve and return the next item")


class SubmitOutSerializer(serializers.Serializer):
    annotation = AnnotationOutSerializer()
    created = serializers.BooleanField(help_text="False when this was a retry of an earlier submission")
    late = serializers.BooleanField(help_text="Kept although your hold had expired")
    next = NextItemSerializer(allow_null=True, required=False)


class SkipInSerializer(serializers.Serializer):
    utterance = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    reason = serializers.CharField(max_length=500, allow_blank=True)
    next = serializers.BooleanField(required=False, default=False)


class SkipOutSerializer(serializers.Serializer):
    utterance = serializers.IntegerField()
    reason = serializers.CharField()
    next = NextItemSerializer(allow_null=True, required=False)


class FlagInSerializer(serializers.Serializer):
    utterance = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    note = serializers.CharField(max_length=2000, allow_blank=True)


class FlagOutSerializer(serializers.ModelSerializer):
    utterance = serializers.IntegerField(source="item.utterance_id", read_only=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True)

    class Meta:
        model = Flag
        fields = [
            "id", "utterance", "note", "created_by", "resolved", "resolved_at", "dismissed", "resolution_note", "created_at",
        ]
        read_only_fields = fields


class FlagResolveInSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    dismiss = serializers.BooleanField(required=False, default=False, help_text="True: the item needed no change")


class UndoInSerializer(serializers.Serializer):
    annotation = serializers.IntegerField(min_value=1, help_text="Id of the annotation my last submit made")


class ItemHeldSerializer(serializers.Serializer):
    utterance = serializers.IntegerField(source="utterance_id")
    held = serializers.BooleanField(default=True, help_text="The item is held for me: `next` returns it")


class SkipListSerializer(serializers.Serializer):
    utterance = serializers.IntegerField(source="item.utterance_id")
    utterance_text = serializers.CharField(source="item.utterance.text")
    language = serializers.CharField(source="item.utterance.language.code")
    direction = serializers.CharField(source="item.utterance.language.direction")
    reason = serializers.CharField()
    created_at = serializers.DateTimeField()


class AnnotationEditInSerializer(serializers.Serializer):
    value = serializers.JSONField()
    lead_time_ms = serializers.IntegerField(min_value=0, max_value=86_400_000, required=False, allow_null=True)
    perspective = serializers.CharField(max_length=20, required=False, allow_blank=True)


class GoldInSerializer(serializers.Serializer):
    utterance = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    expected = serializers.JSONField(help_text="The right answers, keyed by question key")
    numeric_tolerance = serializers.FloatField(min_value=0, required=False, default=0.0)


class GoldOutSerializer(serializers.Serializer):
    utterance = serializers.IntegerField(source="utterance_id")
    expected = serializers.JSONField()
    numeric_tolerance = serializers.FloatField()


class LanguageProgressSerializer(serializers.Serializer):
    language = serializers.CharField()
    items = serializers.IntegerField()
    complete = serializers.IntegerField()
    annotations = serializers.IntegerField()


class AnnotatorProgressSerializer(serializers.Serializer):
    user_id = serializers.IntegerField()
    username = serializers.CharField()
    role = serializers.CharField()
    annotations = serializers.IntegerField()
    mean_lead_time_ms = serializers.FloatField(allow_null=True)
    skips = serializers.IntegerField()
    flags = serializers.IntegerField()
    by_language = serializers.DictField(child=serializers.IntegerField(), help_text="Annotations per language code")
    gold_answered = serializers.IntegerField()
    gold_correct = serializers.IntegerField()
    gold_accuracy = serializers.FloatField(allow_null=True)


class ProgressSerializer(serializers.Serializer):
    project_id = serializers.IntegerField()
    overlap = serializers.IntegerField()
    items = serializers.IntegerField(help_text="Ordinary (non-gold) items")
    complete = serializers.IntegerField(help_text="Items with all the annotations the overlap asks for")
    gold_items = serializers.IntegerField()
    annotations = serializers.IntegerField()
    reserved = serializers.IntegerField(help_text="Items held by annotators right now")
    open_flags = serializers.IntegerField()
    by_language = LanguageProgressSerializer(many=True)
    by_annotator = AnnotatorProgressSerializer(many=True)


class AnnotateErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField(required=False)
    annotation_id = serializers.IntegerField(required=False, allow_null=True, help_text="code already_annotated: yours")
    annotation = AnnotationOutSerializer(
        required=False, help_text="code client_id_conflict: the answer this client_id already saved"
    )


# --- helpers --------------------------------------------------------------------------------------------------------


def _schema_error(exc: SchemaError) -> ValidationError:
    body: dict[str, Any] = {}
    answers: dict[str, list[str]] = {}
    for key, reason in exc.errors.items():
        if key in _REQUEST_FIELDS:
            body[key] = [reason]
        elif key == "value":
            body["value"] = [reason]
        else:
            answers[key] = [reason]
    if answers:
        body["value"] = answers
    return ValidationError(body)


def _conflict(exc: distribution.DistributionError) -> Response:
    details = dict(exc.details)
    if isinstance(details.get("annotation"), Annotation):  # the ORM path hands the stored annotation itself
        details["annotation"] = AnnotationOutSerializer(details["annotation"]).data
    return Response({"detail": exc.message, "code": exc.code, **details}, status=status.HTTP_409_CONFLICT)


class _ProjectView(APIView):
    """Resolves the project for a member; for everyone else it does not exist.

    The services' errors become answers here, once for every view: a schema error a 400 naming the field, a refused
    submission a 409 with its stable ``code``, "not found" a 404 and "leads only" a 403.
    """

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, SchemaError):
            exc = _schema_error(exc)
        elif isinstance(exc, distribution.SubmissionRefusedError):
            return _conflict(exc)
        elif isinstance(exc, distribution.NotFoundError):
            exc = NotFound(exc.message)
        elif isinstance(exc, distribution.LeadOnlyError):
            exc = PermissionDenied(exc.message)
        return super().handle_exception(exc)

    def member_project(self, request: Request, project_id: int) -> Project:
        return project_for_member_get(project_id=project_id, user=request.user)  # type: ignore[arg-type]

    @staticmethod
    def next_payload(project: Project, user: User) -> dict[str, Any] | None:
        if distribution_pg.enabled():
            return distribution_pg.next_item(project_id=project.pk, user_id=user.pk)
        handed = distribution.next_item_reserve(project=project, user=user)
        if handed is None:
            return None
        return item_view_get(project=project, item=handed.item, reservation=handed.reservation, resumed=handed.resumed)


_NOT_FOUND = OpenApiResponse(AnnotateErrorSerializer, description="Not a member of the project, or not your item")
_CONFLICT = OpenApiResponse(AnnotateErrorSerializer, description="Refused, with the reason in `detail` and a stable `code`")


def submit_on_sql(project_id: int, user_id: int, fields: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Submit's answer body and status on PostgreSQL, for validated fields; raises the distribution errors."""
    outcome = distribution_pg.submit(
        project_id=project_id, user_id=user_id, utterance_id=fields["utterance"], client_id=fields["client_id"],
        value=fields["value"], lead_time_ms=fields.get("lead_time_ms"), perspective=fields["perspective"],
        want_next=fields["next"],
    )
    body: dict[str, Any] = {"annotation": outcome.annotation, "created": outcome.created, "late": outcome.late}
    if fields["next"]:
        body["next"] = outcome.next
    return body, status.HTTP_201_CREATED if outcome.created else status.HTTP_200_OK


def _validated(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


# --- views ----------------------------------------------------------------------------------------------------------


class _PerItemView(_ProjectView):
    """The annotators' per-item calls: JSON in and out only, so DRF has nothing to negotiate."""

    parser_classes = [JSONParser]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = FirstRendererNegotiation


class NextItemView(_PerItemView):
    @extend_schema(
        tags=[_TAG], operation_id="annotate_next", request=None,
        summary="Reserve and return my next item (the same one again while I hold it)",
        responses={200: NextItemSerializer, 204: OpenApiResponse(description="Nothing left for you"), 404: _NOT_FOUND},
    )
    def post(self, request: Request, project_id: int) -> Response:
        on_sql = distribution_pg.enabled()
        if on_sql:  # the SQL function checks membership itself: no ORM read of the project
            payload = distribution_pg.next_item(project_id=project_id, user_id=request.user.pk)
        else:
            payload = self.next_payload(self.member_project(request, project_id), request.user)  # type: ignore[arg-type]
        if payload is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(payload if on_sql else NextItemSerializer(payload).data)

    @extend_schema(
        tags=[_TAG], operation_id="annotate_next_get", summary="Same as POST: reserve and return my next item",
        responses={200: NextItemSerializer, 204: OpenApiResponse(description="Nothing left for you"), 404: _NOT_FOUND},
    )
    def get(self, request: Request, project_id: int) -> Response:
        return self.post(request, project_id)


class SubmitView(_PerItemView):
    @extend_schema(
        tags=[_TAG], operation_id="annotate_submit", request=SubmitInSerializer,
        summary="Submit my answer for an item I was given; idempotent by client_id",
        responses={201: SubmitOutSerializer, 200: SubmitOutSerializer, 400: OpenApiResponse(description="Names the field"),
                   404: _NOT_FOUND, 409: _CONFLICT},
    )
    def post(self, request: Request, project_id: int) -> Response:
        # On PostgreSQL the SQL function checks membership and does submit + next in one round trip.
        project = None if distribution_pg.enabled() else self.member_project(request, project_id)
        user: User = request.user  # type: ignore[assignment]
        try:
            fields = _validated(SubmitInSerializer, request.data)
        except ValidationError:
            if project is None:  # outsiders get 404 before they learn what the body lacks
                distribution_pg.member_check(project_id=project_id, user_id=user.pk)
            raise
        if project is None:
            sql_body, answer_status = submit_on_sql(project_id, user.pk, fields)
            return Response(sql_body, status=answer_status)
        result = distribution.annotation_submit(
            project=project, user=user, utterance_id=fields["utterance"], client_id=fields["client_id"],
            value=fields["value"], lead_time_ms=fields.get("lead_time_ms"), perspective=fields["perspective"],
        )
        body: dict[str, Any] = {
            "annotation": result.annotation, "created": result.created, "late": result.late,
            "next": self.next_payload(project, user) if fields["next"] else None,
        }
        if not fields["next"]:
            del body["next"]
        body = SubmitOutSerializer(body).data
        return Response(body, status=status.HTTP_201_CREATED if body["created"] else status.HTTP_200_OK)


class SkipView(_PerItemView):
    @extend_schema(
        tags=[_TAG], operation_id="annotate_skip", request=SkipInSerializer, summary="Give back my item with a reason",
        responses={200: SkipOutSerializer, 400: OpenApiResponse(description="Names the field"), 404: _NOT_FOUND, 409: _CONFLICT},
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = self.member_project(request, project_id)
        fields = _validated(SkipInSerializer, request.data)
        user: User = request.user  # type: ignore[assignment]
        skip = distribution.item_skip(
            project=project, user=user, utterance_id=fields["utterance"], reason=fields["reason"],
        )
        next_payload = self.next_payload(project, user) if fields["next"] else None
        body: dict[str, Any] = {"utterance": fields["utterance"], "reason": skip.reason}
        if fields["next"]:
            body["next"] = next_payload
        return Response(SkipOutSerializer(body).data)


class FlagView(_ProjectView):
    @extend_schema(
        tags=[_TAG], operation_id="annotate_flag", request=FlagInSerializer,
        summary="Flag an item I was given for the project's leads",
        responses={201: FlagOutSerializer, 400: OpenApiResponse(description="Names the field"), 404: _NOT_FOUND},
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = self.member_project(request, project_id)
        data = FlagInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        flag = distribution.item_flag(
            project=project, user=request.user, utterance_id=data.validated_data["utterance"],  # type: ignore[arg-type]
            note=data.validated_data["note"],
        )
        return Response(FlagOutSerializer(flag).data, status=status.HTTP_201_CREATED)


class FlagListView(_ProjectView):
    @extend_schema(
        tags=[_TAG], operation_id="annotate_flags", summary="Flags of the project, open first (leads)",
        responses={200: paginated(FlagOutSerializer, "PaginatedFlagList"), 403: AnnotateErrorSerializer, 404: _NOT_FOUND},
    )
    def get(self, request: Request, project_id: int) -> Response:
        project = self.member_project(request, project_id)
        flags = flags_list(project=project, user=request.user)  # type: ignore[arg-type]
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(flags, request, view=self)
        return paginator.get_paginated_response(FlagOutSerializer(page, many=True).data)


class FlagResolveView(_ProjectView):
    @extend_schema(
        tags=[_TAG], operation_id="annotate_flag_resolve", request=FlagResolveInSerializer,
        summary="Close a flag with an optional answer, as resolved or dismissed (reviewers and leads)",
        responses={200: FlagOutSerializer, 400: OpenApiResponse(description="Names the field"), 404: _NOT_FOUND},
    )
    def post(self, request: Request, project_id: int, flag_id: int) -> Response:
        project = self.member_project(request, project_id)
        fields = _validated(FlagResolveInSerializer, request.data)
        flag = distribution.flag_resolve(
            project=project, user=request.user, flag_id=flag_id, note=fields["note"], dismiss=fields["dismiss"],  # type: ignore[arg-type]
        )
        return Response(FlagOutSerializer(flag).data)


class UndoView(_ProjectView):
    @extend_schema(
        tags=[_TAG], operation_id="annotate_undo", request=UndoInSerializer,
        summary="Take back my last submit within a short window: the item is held for me again (next returns it)",
        responses={200: ItemHeldSerializer, 404: _NOT_FOUND, 409: _CONFLICT},
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = self.member_project(request, project_id)
        fields = _validated(UndoInSerializer, request.data)
        item = distribution.annotation_undo(project=project, user=request.user, annotation_id=fields["annotation"])  # type: ignore[arg-type]
        return Response(ItemHeldSerializer(item).data)


class MySkipsView(_ProjectView):
    @extend_schema(
        tags=[_TAG], operation_id="annotate_my_skips",
        summary="Items I skipped that still need annotations (revisit them before the queue ends), newest first",
        responses={200: paginated(SkipListSerializer, "PaginatedMySkipList"), 404: _NOT_FOUND},
    )
    def get(self, request: Request, project_id: int) -> Response:
        project = self.member_project(request, project_id)
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(my_skips_list(project=project, user=request.user), request, view=self)  # type: ignore[arg-type]
        return paginator.get_paginated_response(SkipListSerializer(page, many=True).data)


class RevisitView(_ProjectView):
    @extend_schema(
        tags=[_TAG], operation_id="annotate_revisit", request=None,
        summary="Bring back an item I skipped: it is held for me again (next returns it) and my skip is withdrawn",
        responses={200: ItemHeldSerializer, 404: _NOT_FOUND, 409: _CONFLICT},
    )
    def post(self, request: Request, project_id: int, utterance_id: int) -> Response:
        project = self.member_project(request, project_id)
        item = distribution.item_revisit(project=project, user=request.user, utterance_id=utterance_id)  # type: ignore[arg-type]
        return Response(ItemHeldSerializer(item).data)


class MyAnnotationsView(_ProjectView):
    @extend_schema(
        tags=[_TAG], operation_id="annotate_my_annotations", summary="My annotations in this project, newest first",
        responses={200: paginated(AnnotationOutSerializer, "PaginatedMyAnnotationList"), 404: _NOT_FOUND},
    )
    def get(self, request: Request, project_id: int) -> Response:
        project = self.member_project(request, project_id)
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(my_annotations_list(project=project, user=request.user), request, view=self)  # type: ignore[arg-type]
        return paginator.get_paginated_response(AnnotationOutSerializer(page, many=True).data)


class MyAnnotationDetailView(_ProjectView):
    @extend_schema(
        tags=[_TAG], operation_id="annotate_my_annotation_edit", request=AnnotationEditInSerializer,
        summary="Edit my annotation until it is reviewed",
        responses={200: AnnotationOutSerializer, 400: OpenApiResponse(description="Names the field"), 404: _NOT_FOUND,
                   409: _CONFLICT},
    )
    def patch(self, request: Request, project_id: int, annotation_id: int) -> Response:
        project = self.member_project(request, project_id)
        data = AnnotationEditInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        annotation = distribution.annotation_update(
            project=project, user=request.user, annotation_id=annotation_id,  # type: ignore[arg-type]
            value=data.validated_data["value"], lead_time_ms=data.validated_data.get("lead_time_ms"),
            perspective=data.validated_data.get("perspective"),
        )
        return Response(AnnotationOutSerializer(annotation).data)


class ProgressView(_ProjectView):
    @extend_schema(
        tags=[_TAG], operation_id="annotate_progress",
        summary="Progress per annotator and per language, with gold accuracy (leads)",
        responses={200: ProgressSerializer, 403: AnnotateErrorSerializer, 404: _NOT_FOUND},
    )
    def get(self, request: Request, project_id: int) -> Response:
        project = self.member_project(request, project_id)
        progress = project_progress_get(project=project, user=request.user)  # type: ignore[arg-type]
        return Response(ProgressSerializer(progress).data)


class GoldView(_ProjectView):
    @extend_schema(
        tags=[_TAG], operation_id="annotate_gold_set", request=GoldInSerializer,
        summary="Make an item a gold (honeypot) item with its right answer (leads)",
        responses={201: GoldOutSerializer, 400: OpenApiResponse(description="Names the field"), 404: _NOT_FOUND},
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = self.member_project(request, project_id)
        if not distribution.membership_is_lead(project, request.user):  # type: ignore[arg-type]
            raise PermissionDenied("Only the project's leads can set gold items.")
        data = GoldInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            gold = distribution.gold_item_set(
                project=project, utterance_id=data.validated_data["utterance"], expected=data.validated_data["expected"],
                created_by=request.user, numeric_tolerance=data.validated_data["numeric_tolerance"],  # type: ignore[arg-type]
            )
        except SchemaError as exc:
            errors = {("expected." + k if k not in _REQUEST_FIELDS else k): [v] for k, v in exc.errors.items()}
            raise ValidationError(errors) from None
        return Response(GoldOutSerializer(gold).data, status=status.HTTP_201_CREATED)


class GoldItemView(_ProjectView):
    @extend_schema(
        tags=[_TAG], operation_id="annotate_gold_unset", request=None,
        summary="Make a gold item ordinary again (leads): its answer is dropped, gold counts and accuracy follow",
        responses={204: None, 403: AnnotateErrorSerializer, 404: _NOT_FOUND},
    )
    def delete(self, request: Request, project_id: int, utterance_id: int) -> Response:
        project = self.member_project(request, project_id)
        if not distribution.membership_is_lead(project, request.user):  # type: ignore[arg-type]
            raise PermissionDenied("Only the project's leads can change gold items.")
        distribution.gold_item_unset(project=project, utterance_id=utterance_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


urlpatterns = [
    path("projects/<int:project_id>/next/", NextItemView.as_view(), name="annotate-next"),
    path("projects/<int:project_id>/submit/", SubmitView.as_view(), name="annotate-submit"),
    path("projects/<int:project_id>/skip/", SkipView.as_view(), name="annotate-skip"),
    path("projects/<int:project_id>/flag/", FlagView.as_view(), name="annotate-flag"),
    path("projects/<int:project_id>/flags/", FlagListView.as_view(), name="annotate-flags"),
    path("projects/<int:project_id>/flags/<int:flag_id>/resolve/", FlagResolveView.as_view(), name="annotate-flag-resolve"),
    path("projects/<int:project_id>/my-annotations/", MyAnnotationsView.as_view(), name="annotate-my-annotations"),
    path(
        "projects/<int:project_id>/my-annotations/<int:annotation_id>/", MyAnnotationDetailView.as_view(),
        name="annotate-my-annotation",
    ),
    path("projects/<int:project_id>/undo/", UndoView.as_view(), name="annotate-undo"),
    path("projects/<int:project_id>/my-skips/", MySkipsView.as_view(), name="annotate-my-skips"),
    path(
        "projects/<int:project_id>/my-skips/<int:utterance_id>/revisit/", RevisitView.as_view(), name="annotate-revisit"
    ),
    path("projects/<int:project_id>/progress/", ProgressView.as_view(), name="annotate-progress"),
    path("projects/<int:project_id>/gold/", GoldView.as_view(), name="annotate-gold"),
    path("projects/<int:project_id>/gold/<int:utterance_id>/", GoldItemView.as_view(), name="annotate-gold-item"),
]
