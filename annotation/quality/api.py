"""JSON API for project quality: the agreement report, the quality policy, the review queue and adjudication.

Views are thin: explicit serializers in and out, ``annotation.quality`` selectors and services do the work. Only a
project's reviewers and leads (and staff) get in: outsiders get 404 (the project does not exist for them), other
members 403. Routes are in ``urlpatterns`` below, included by ``config.api_urls``.
"""

from __future__ import annotations

from typing import Any

from django.urls import path
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.models import (
    Adjudication,
    AggregationMethod,
    MultiLabelRule,
    Project,
    ProjectQualityPolicy,
    Role,
    TiePolicy,
)
from annotation.quality.selectors import (
    REVIEW_REASONS,
    QualityForbidden,
    QualityNotFound,
    QualitySource,
    agreement_report_for_viewer,
    corpus_for_quality_get,
    corpus_rating_versions,
    names_visible,
    project_for_reviewer_get,
    quality_policy_get,
    review_item_get,
    review_queue,
)
from annotation.quality.services import (
    POLICY_FIELDS,
    agreement_params_clean,
    agreement_report_request,
    item_adjudicate,
    quality_policy_update,
)
from annotation.schema import SchemaError
from config.drf import paginated
from corpora.api_common import MAX_ID
from corpora.transcripts import TranscriptSerializer
from jobs.api import JobSerializer

_TAG = "quality"
_REQUEST_FIELDS = {"perspective", "note", "annotation_ids", "value", "n_resamples", "seed"}


# --- serializers ----------------------------------------------------------------------------------------------------


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()


class AgreementOutSerializer(serializers.Serializer):
    project_id = serializers.IntegerField()
    stale = serializers.BooleanField(help_text="Annotations changed since the report was computed")
    computed_now = serializers.BooleanField(help_text="Computed in this request (small projects)")
    computed_at = serializers.DateTimeField(allow_null=True)
    duration_ms = serializers.IntegerField(allow_null=True)
    report_annotation_count = serializers.IntegerField(allow_null=True, help_text="Annotations the report was computed from")
    current_annotation_count = serializers.IntegerField()
    params = serializers.JSONField(allow_null=True)
    report = serializers.JSONField(
        allow_null=True, help_text="Per question and perspective: alpha with interval, breakdowns, kappas, models, aggregation"
    )
    job = JobSerializer(allow_null=True, help_text="The agreement job computing a fresh report, if one is queued or running")


class RatingVersionSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="Schema version id: pass it as schema_version")
    schema = serializers.CharField(help_text="Schema slug")
    version = serializers.IntegerField()
    name = serializers.CharField()
    annotations = serializers.IntegerField(help_text="Imported ratings that answer this version")


class CorpusAgreementOutSerializer(serializers.Serializer):
    corpus_id = serializers.IntegerField()
    schema_version = serializers.IntegerField(allow_null=True, help_text="The version this report is about")
    schema_versions = RatingVersionSerializer(many=True, help_text="Every version the imported ratings answer")
    stale = serializers.BooleanField(help_text="Ratings changed since the report was computed")
    computed_now = serializers.BooleanField(help_text="Computed in this request (small corpora)")
    computed_at = serializers.DateTimeField(allow_null=True)
    duration_ms = serializers.IntegerField(allow_null=True)
    report_annotation_count = serializers.IntegerField(allow_null=True)
    current_annotation_count = serializers.IntegerField()
    params = serializers.JSONField(allow_null=True)
    report = serializers.JSONField(
        allow_null=True, help_text="As the project report: per question and perspective, alpha with interval (MASI "
                                   "and per label for multi-label questions), per language and per label by language")
    job = JobSerializer(allow_null=True)


class QualityPolicySerializer(serializers.ModelSerializer):
    class Meta:
        model = ProjectQualityPolicy
        fields = [*POLICY_FIELDS, "updated_at"]
        read_only_fields = ["updated_at"]
        # A project that never changed its policy has the defaults, not yet saved: no time.
        extra_kwargs = {"updated_at": {"allow_null": True}}


class QualityPolicyInSerializer(serializers.Serializer):
    show_annotator_names_to_reviewers = serializers.BooleanField(required=False)
    aggregation_method = serializers.ChoiceField(
        choices=AggregationMethod.choices, required=False,
        help_text="Single-choice gold: majority vote, Dawid–Skene or MACE")
    tie_policy = serializers.ChoiceField(
        choices=TiePolicy.choices, required=False,
        help_text="A tie (shared top, or a label exactly on the multi-label rule's boundary): abstain leaves it open "
                  "for review; prefer_order / random settle it. Either way the item is marked as tied")
    review_confidence_below = serializers.FloatField(min_value=0.0, max_value=1.0, required=False)
    multi_label_rule = serializers.ChoiceField(
        choices=MultiLabelRule.choices, required=False,
        help_text="Multi-label gold, label by label: share (more than multi_label_share of the raters who answered "
                  "the label chose it), mean_intensity (the mean level reaches intensity_threshold), dawid_skene or "
                  "mace (a binary EM per label)")
    multi_label_share = serializers.FloatField(min_value=0.0, max_value=0.999, required=False,
                                               help_text="Rule share: the fraction of raters to exceed (0.5: more than half)")
    intensity_threshold = serializers.FloatField(min_value=0.0, max_value=3.0, required=False,
                                                 help_text="Rule mean_intensity: the threshold on the mean level (0–3)")
    intensity_threshold_inclusive = serializers.BooleanField(
        required=False, help_text="Rule mean_intensity: true for mean ≥ threshold, false for mean > threshold")
    include_imported_ratings = serializers.BooleanField(
        required=False, help_text="Count the corpus's imported ratings of the project's schema version as raters "
                                  "(agreement, aggregation, export)")


class ReviewQueueEntrySerializer(serializers.Serializer):
    utterance_id = serializers.IntegerField(source="id")
    text = serializers.CharField(help_text="Plain text; render it as text, never as HTML")
    language = serializers.CharField(source="language.code")
    direction = serializers.CharField(source="language.direction")
    n_annotations = serializers.IntegerField()
    open_flags = serializers.IntegerField()
    open_ties = serializers.IntegerField(help_text="Questions whose aggregation left a tie open")
    min_confidence = serializers.FloatField(allow_null=True, help_text="Lowest confidence of the item's aggregated answers")
    item_disagreement = serializers.FloatField(allow_null=True)
    gold_disagreement = serializers.BooleanField(help_text="An annotator's answer to this gold item differs from its known answer")
    reasons = serializers.SerializerMethodField()

    def get_reasons(self, utterance: Any) -> list[str]:
        threshold = self.context["threshold"]
        reasons = []
        if utterance.open_flags:
            reasons.append("flagged")
        if utterance.open_ties:
            reasons.append("tie")
        if (utterance.min_confidence is not None and utterance.min_confidence < threshold) or (
            utterance.item_disagreement is not None and utterance.item_disagreement > 1.0 - threshold
        ):
            reasons.append("low_agreement")
        if utterance.gold_disagreement:
            reasons.append("gold")
        return reasons


class ReviewAnnotationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    origin = serializers.CharField()
    rater = serializers.CharField(help_text="User name, or 'Annotator A…' when the project hides names from reviewers")
    imported = serializers.BooleanField(help_text="A rating imported with the corpus (a rater of the source), not "
                                                  "an answer given in this project")
    counted = serializers.BooleanField(help_text="Counted in agreement and aggregation: the project's own answers, "
                                                 "and imported ratings when the quality policy includes them")
    model_version = serializers.CharField(allow_blank=True)
    perspective = serializers.CharField(allow_blank=True)
    value = serializers.JSONField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    reviewed_at = serializers.DateTimeField(allow_null=True)
    lead_time_ms = serializers.IntegerField(allow_null=True, help_text="Time the annotator spent on it")


class ReviewFlagSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    note = serializers.CharField(allow_blank=True)
    created_by = serializers.CharField()
    resolved = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    dismissed = serializers.BooleanField()
    resolution_note = serializers.CharField(allow_blank=True)
    resolved_at = serializers.DateTimeField(allow_null=True)


class ReviewAggregatedSerializer(serializers.Serializer):
    question_key = serializers.CharField()
    perspective = serializers.CharField(allow_blank=True)
    value = serializers.JSONField(allow_null=True)
    confidence = serializers.FloatField(allow_null=True)
    method = serializers.CharField()
    distribution = serializers.JSONField()
    n_ratings = serializers.IntegerField()
    computed_at = serializers.DateTimeField()


class ReviewAdjudicationSerializer(serializers.Serializer):
    perspective = serializers.CharField(allow_blank=True)
    value = serializers.JSONField()
    note = serializers.CharField(allow_blank=True)
    decided_by = serializers.CharField()
    decided_at = serializers.DateTimeField()
    resolved_annotations = serializers.ListField(child=serializers.IntegerField())


class ReviewUtteranceSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    text = serializers.CharField(allow_blank=True)
    language = serializers.CharField()
    direction = serializers.CharField()
    audio_url = serializers.CharField(allow_null=True)
    speaker = serializers.CharField(allow_null=True)
    conversation = serializers.CharField(allow_null=True)
    transcript = TranscriptSerializer(allow_null=True, help_text="Provenance of an automatic transcript")


class ReviewItemSerializer(serializers.Serializer):
    utterance = ReviewUtteranceSerializer()
    questions = serializers.JSONField()
    perspectives = serializers.ListField(child=serializers.CharField())
    annotations = ReviewAnnotationSerializer(many=True)
    flags = ReviewFlagSerializer(many=True)
    aggregated = ReviewAggregatedSerializer(many=True)
    adjudications = ReviewAdjudicationSerializer(many=True)


class AdjudicateInSerializer(serializers.Serializer):
    value = serializers.JSONField(help_text="The final answers, keyed by question key")
    perspective = serializers.CharField(max_length=20, required=False, allow_blank=True, default="")
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    annotation_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID), required=False, allow_null=True, default=None,
        help_text="Annotations this decision resolves; default: every human annotation of the item in the perspective",
    )


class AdjudicationOutSerializer(serializers.ModelSerializer):
    decided_by = serializers.CharField(source="decided_by.username")
    resolved_annotations = serializers.SerializerMethodField()

    class Meta:
        model = Adjudication
        fields = ["id", "project", "utterance", "perspective", "value", "note", "decided_by", "decided_at", "resolved_annotations"]
        read_only_fields = fields

    def get_resolved_annotations(self, adjudication: Adjudication) -> list[int]:
        return sorted(adjudication.resolved_annotations.values_list("pk", flat=True))


# --- helpers --------------------------------------------------------------------------------------------------------


def _schema_error(exc: SchemaError) -> ValidationError:
    """Request fields keep their name; answers to questions go under ``value``."""
    body: dict[str, Any] = {}
    answers: dict[str, list[str]] = {}
    for key, reason in exc.errors.items():
        if key in _REQUEST_FIELDS:
            body[key] = [reason]
        else:
            answers[key] = [reason]
    if answers:
        body["value"] = answers
    return ValidationError(body)


class ReviewerView(APIView):
    """A view for the project's reviewers and leads (and staff): outsiders get 404, annotators 403. The review
    screen's and the item browser's views share it."""

    def reviewer_project(self, request: Request, project_id: int) -> tuple[Project, str | None]:
        try:
            return project_for_reviewer_get(project_id=project_id, user=request.user)
        except QualityNotFound as exc:
            raise NotFound(str(exc)) from None
        except QualityForbidden as exc:
            raise PermissionDenied(str(exc)) from None


_NOT_FOUND = OpenApiResponse(ErrorSerializer, description="Not a member of the project")
_FORBIDDEN = OpenApiResponse(ErrorSerializer, description="A member, but not a reviewer or lead")
_BAD = OpenApiResponse(description="Names the field and why")


# --- views ----------------------------------------------------------------------------------------------------------


class AgreementView(ReviewerView):
    @extend_schema(
        tags=[_TAG], operation_id="quality_agreement",
        summary="The project's agreement report (cached); stale reports are recomputed, small ones at once",
        parameters=[
            OpenApiParameter("refresh", bool, description="1: enqueue a recomputation job and answer 202 with it"),
            OpenApiParameter("n_resamples", int, description="Bootstrap resamples for a recomputation (default 1000)"),
            OpenApiParameter("seed", int, description="Bootstrap seed for a recomputation (default 0)"),
        ],
        responses={200: AgreementOutSerializer, 202: AgreementOutSerializer, 400: _BAD, 403: _FORBIDDEN, 404: _NOT_FOUND},
    )
    def get(self, request: Request, project_id: int) -> Response:
        project, role = self.reviewer_project(request, project_id)
        try:
            params = agreement_params_clean(request.query_params)
        except SchemaError as exc:
            raise _schema_error(exc) from None
        refresh = request.query_params.get("refresh", "").lower() in ("1", "true", "yes")
        outcome = agreement_report_request(project=project, user=request.user, refresh=refresh,
                                           n_resamples=params["n_resamples"], seed=params["seed"])
        report = outcome.state.report
        show = names_visible(project=project, user=request.user, role=role)
        body = {
            "project_id": project.pk,
            "stale": outcome.state.stale,
            "computed_now": outcome.computed_now,
            "computed_at": report.computed_at if report else None,
            "duration_ms": report.duration_ms if report else None,
            "report_annotation_count": report.annotation_count if report else None,
            "current_annotation_count": outcome.state.watermark.count,
            "params": report.params if report else None,
            "report": agreement_report_for_viewer(report.result, show_names=show) if report else None,
            "job": outcome.job,
        }
        accepted = outcome.job is not None and (refresh or report is None)
        return Response(AgreementOutSerializer(body).data, status=status.HTTP_202_ACCEPTED if accepted else status.HTTP_200_OK)


class CorpusAgreementView(APIView):
    @extend_schema(
        tags=[_TAG], operation_id="quality_corpus_agreement",
        summary="Agreement of the ratings imported with a corpus (project = none), per schema version",
        description=("For the corpus's creator, the leads of its projects and staff. Without schema_version the version "
                     "with the most imported ratings is reported; schema_versions lists them all. Cached, recomputed "
                     "like the project report (small corpora at once, large ones by a job)."),
        parameters=[
            OpenApiParameter("schema_version", int, description="Which schema version's ratings (see schema_versions)"),
            OpenApiParameter("refresh", bool, description="1: enqueue a recomputation job and answer 202 with it"),
            OpenApiParameter("n_resamples", int, description="Bootstrap resamples for a recomputation (default 1000)"),
            OpenApiParameter("seed", int, description="Bootstrap seed for a recomputation (default 0)"),
        ],
        responses={200: CorpusAgreementOutSerializer, 202: CorpusAgreementOutSerializer, 400: _BAD, 403: _FORBIDDEN,
                   404: _NOT_FOUND},
    )
    def get(self, request: Request, corpus_id: int) -> Response:
        try:
            corpus = corpus_for_quality_get(corpus_id=corpus_id, user=request.user)
        except QualityNotFound as exc:
            raise NotFound(str(exc)) from None
        except QualityForbidden as exc:
            raise PermissionDenied(str(exc)) from None
        try:
            params = agreement_params_clean(request.query_params)
        except SchemaError as exc:
            raise _schema_error(exc) from None
        versions = corpus_rating_versions(corpus)
        raw_version = request.query_params.get("schema_version")
        version_id: int | None = versions[0]["id"] if versions else None
        if raw_version not in (None, ""):
            if not str(raw_version).isdigit() or int(str(raw_version)) not in {v["id"] for v in versions}:
                raise ValidationError({"schema_version": [
                    f"no imported ratings answer schema version {raw_version!r} "
                    f"(versions: {', '.join(str(v['id']) for v in versions) or 'none'})"]})
            version_id = int(str(raw_version))
        body: dict[str, Any] = {"corpus_id": corpus.pk, "schema_version": version_id, "schema_versions": versions,
                                "stale": False, "computed_now": False, "computed_at": None, "duration_ms": None,
                                "report_annotation_count": None, "current_annotation_count": 0, "params": None,
                                "report": None, "job": None}
        if version_id is None:
            return Response(CorpusAgreementOutSerializer(body).data)
        refresh = request.query_params.get("refresh", "").lower() in ("1", "true", "yes")
        source = QualitySource(schema_version_id=version_id, corpus_id=corpus.pk)
        outcome = agreement_report_request(source=source, user=request.user, refresh=refresh,
                                           n_resamples=params["n_resamples"], seed=params["seed"])
        report = outcome.state.report
        body.update(
            stale=outcome.state.stale, computed_now=outcome.computed_now,
            computed_at=report.computed_at if report else None, duration_ms=report.duration_ms if report else None,
            report_annotation_count=report.annotation_count if report else None,
            current_annotation_count=outcome.state.watermark.count, params=report.params if report else None,
            report=agreement_report_for_viewer(report.result, show_names=True) if report else None, job=outcome.job,
        )
        accepted = outcome.job is not None and (refresh or report is None)
        return Response(CorpusAgreementOutSerializer(body).data,
                        status=status.HTTP_202_ACCEPTED if accepted else status.HTTP_200_OK)


class QualityPolicyView(ReviewerView):
    @extend_schema(
        tags=[_TAG], operation_id="quality_policy", summary="How the project aggregates gold and what reviewers see",
        responses={200: QualityPolicySerializer, 403: _FORBIDDEN, 404: _NOT_FOUND},
    )
    def get(self, request: Request, project_id: int) -> Response:
        project, _role = self.reviewer_project(request, project_id)
        return Response(QualityPolicySerializer(quality_policy_get(project)).data)

    @extend_schema(
        tags=[_TAG], operation_id="quality_policy_update", request=QualityPolicyInSerializer,
        summary="Change the quality policy (leads)",
        responses={200: QualityPolicySerializer, 400: _BAD, 403: _FORBIDDEN, 404: _NOT_FOUND},
    )
    def patch(self, request: Request, project_id: int) -> Response:
        project, role = self.reviewer_project(request, project_id)
        if role != Role.LEAD and not request.user.is_staff:
            raise PermissionDenied("Only the project's leads can change its quality policy.")
        data = QualityPolicyInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            policy = quality_policy_update(project=project, **data.validated_data)
        except SchemaError as exc:
            raise ValidationError({k: [v] for k, v in exc.errors.items()}) from None
        return Response(QualityPolicySerializer(policy).data)


class ReviewQueueView(ReviewerView):
    @extend_schema(
        tags=[_TAG], operation_id="quality_review_queue",
        summary="Items to adjudicate: flagged, open ties, agreement under the policy's threshold, or gold disagreements",
        parameters=[
            OpenApiParameter(
                "reason", str, enum=list(REVIEW_REASONS), many=True,
                description="Only items in the queue for these reasons (repeat the parameter or separate with commas)",
            ),
            OpenApiParameter("language", str, description="Only items in this language (code)"),
        ],
        responses={
            200: paginated(ReviewQueueEntrySerializer, "PaginatedReviewQueueList"), 400: _BAD, 403: _FORBIDDEN,
            404: _NOT_FOUND,
        },
    )
    def get(self, request: Request, project_id: int) -> Response:
        project, _role = self.reviewer_project(request, project_id)
        policy = quality_policy_get(project)
        reasons = [r for value in request.query_params.getlist("reason") for r in value.split(",") if r]
        unknown = sorted(set(reasons) - set(REVIEW_REASONS))
        if unknown:
            raise ValidationError({"reason": [f"unknown reason(s) {', '.join(unknown)}; one of {', '.join(REVIEW_REASONS)}"]})
        queue = review_queue(
            project=project, policy=policy, reasons=reasons or None, language=request.query_params.get("language") or None
        )
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(queue, request, view=self)
        entries = ReviewQueueEntrySerializer(page, many=True, context={"threshold": policy.review_confidence_below})
        return paginator.get_paginated_response(entries.data)


class ReviewItemView(ReviewerView):
    @extend_schema(
        tags=[_TAG], operation_id="quality_review_item",
        summary="One item side by side: every annotation (names per policy), flags, aggregated answers, decisions",
        responses={200: ReviewItemSerializer, 403: _FORBIDDEN, 404: _NOT_FOUND},
    )
    def get(self, request: Request, project_id: int, utterance_id: int) -> Response:
        project, role = self.reviewer_project(request, project_id)
        show = names_visible(project=project, user=request.user, role=role)
        try:
            item = review_item_get(project=project, utterance_id=utterance_id, show_names=show)
        except QualityNotFound as exc:
            raise NotFound(str(exc)) from None
        return Response(ReviewItemSerializer(item).data)


class AdjudicateView(ReviewerView):
    @extend_schema(
        tags=[_TAG], operation_id="quality_adjudicate", request=AdjudicateInSerializer,
        summary="Set the item's final answers (reviewers and leads); deciding again replaces the decision",
        responses={200: AdjudicationOutSerializer, 400: _BAD, 403: _FORBIDDEN, 404: _NOT_FOUND},
    )
    def post(self, request: Request, project_id: int, utterance_id: int) -> Response:
        project, _role = self.reviewer_project(request, project_id)
        data = AdjudicateInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        try:
            adjudication = item_adjudicate(
                project=project, utterance_id=utterance_id, user=request.user, value=fields["value"],
                perspective=fields["perspective"], note=fields["note"], annotation_ids=fields["annotation_ids"],
            )
        except SchemaError as exc:
            raise _schema_error(exc) from None
        except QualityNotFound as exc:
            raise NotFound(str(exc)) from None
        except QualityForbidden as exc:
            raise PermissionDenied(str(exc)) from None
        return Response(AdjudicationOutSerializer(adjudication).data)


urlpatterns = [
    path("projects/<int:project_id>/agreement/", AgreementView.as_view(), name="quality-agreement"),
    path("corpora/<int:corpus_id>/agreement/", CorpusAgreementView.as_view(), name="quality-corpus-agreement"),
    path("projects/<int:project_id>/quality-policy/", QualityPolicyView.as_view(), name="quality-policy"),
    path("projects/<int:project_id>/review-queue/", ReviewQueueView.as_view(), name="quality-review-queue"),
    path(
        "projects/<int:project_id>/review-queue/<int:utterance_id>/", ReviewItemView.as_view(), name="quality-review-item"
    ),
    path(
        "projects/<int:project_id>/review-queue/<int:utterance_id>/adjudicate/", AdjudicateView.as_view(),
        name="quality-adjudicate",
    ),
]
