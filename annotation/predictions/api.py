"""JSON API for models at work on a project: register models, start pre-annotation and transcription jobs,
read predictions and their score distributions.

Views are thin: explicit serializers, ``annotation.predictions`` services and selectors do the work. Outsiders get
404 (the project does not exist for them); registering and starting jobs is for the project's leads (403 for
other members); predictions follow the project's suggestion policy. Routes are in ``urlpatterns`` below.
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

from annotation.models import Prediction, Project, ProjectModel, Role
from annotation.permissions import project_can_manage
from annotation.predictions.selectors import (
    DEFAULT_BINS,
    MAX_BINS,
    model_catalogue,
    predictions_summary,
    predictions_visible,
    project_model_warnings,
    project_models_list,
    project_predictions,
)
from annotation.predictions.services import (
    PredictionSetupError,
    preannotation_job_create,
    project_model_register,
    transcription_job_create,
)
from annotation.selectors import membership_role, projects_visible_to
from config.drf import paginated
from corpora.api_common import MAX_ID
from jobs.api import JobSerializer

_TAG = "predictions"


class ProjectModelSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", read_only=True, allow_null=True, default=None)
    evaluation = serializers.JSONField(read_only=True, help_text=(
        "Quality on items the model never saw, first: method (held_out on a split, or k_fold when no held-out "
        "split has human labels), split, labels_from, n_items, macro_f1, uar, accuracy, per_label_f1, confusion, "
        "ece and reliability bins; splits holds each held-out split measured"))
    training = serializers.JSONField(read_only=True, help_text=(
        "How a trained head was made: splits, synthetic_allowed, label_sources (human / llm / model with versions), "
        "examples, and train_accuracy (on its own training items: not a quality measure)"))

    class Meta:
        model = ProjectModel
        fields = ["id", "card_id", "task", "model_version", "question_key", "label_mapping", "head_file", "evaluation",
                  "training", "created_by", "created_at"]
        read_only_fields = fields


class RegisteredOutSerializer(ProjectModelSerializer):
    warnings = serializers.ListField(child=serializers.CharField(), read_only=True,
                                     help_text="e.g. the model does not know some of the project's languages")

    class Meta(ProjectModelSerializer.Meta):
        fields = [*ProjectModelSerializer.Meta.fields, "warnings"]
        read_only_fields = fields


class CatalogueEntrySerializer(serializers.Serializer):
    id = serializers.CharField()
    task = serializers.CharField()
    languages = serializers.ListField(child=serializers.CharField())
    labels = serializers.ListField(child=serializers.CharField())
    license = serializers.CharField()
    source = serializers.CharField()  # type: ignore[assignment]
    description = serializers.CharField(allow_blank=True)
    available = serializers.BooleanField()
    reason = serializers.CharField(allow_blank=True, help_text="Why the model cannot load offline here")
    language_fit = serializers.ChoiceField(choices=["all", "some", "none"], help_text=(
        "Whether the model knows every language of the project's utterances, some, or none (then it is refused)"))
    language_warning = serializers.CharField(allow_blank=True)


class ModelsOutSerializer(serializers.Serializer):
    registered = ProjectModelSerializer(many=True)
    catalogue = CatalogueEntrySerializer(many=True)


class RegisterInSerializer(serializers.Serializer):
    card_id = serializers.CharField(max_length=200)
    question = serializers.CharField(max_length=63, required=False, allow_blank=True, default="",
                                     help_text="The schema question a categorical model answers")
    label_mapping = serializers.DictField(child=serializers.CharField(max_length=200), required=False, allow_null=True,
                                          default=None, help_text="Model label -> project label (or dimension -> "
                                                                  "numeric question); default: match by name")
    drop = serializers.ListField(child=serializers.CharField(max_length=200), required=False, allow_null=True,
                                 default=None, help_text="Model labels deliberately left out")


class SelectionMixin(serializers.Serializer):
    utterance_ids = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=MAX_ID), required=False, allow_null=True,
                                          default=None, help_text="Default: every utterance of the project")
    weak_labels = serializers.BooleanField(required=False, help_text="Also write model-made annotations (origin=model)")


class PreannotateInSerializer(SelectionMixin):
    model = serializers.IntegerField(required=False, allow_null=True, default=None, help_text="A registered model id")
    train_head = serializers.JSONField(required=False, allow_null=True, default=None, help_text=(
        'Train a head first: {"question": key, "feature": "text" or "acoustic", "splits": ["train"] (add "dev" if '
        'you like; test is never trained on), "synthetic": false (true: LLM- or model-made imported labels may '
        'stand in where no person labelled an item)}. It is measured on a held-out split, and never predicts on '
        'the items it learned from'))


class TranscribeInSerializer(SelectionMixin):
    asr_model = serializers.IntegerField(help_text="A registered ASR model id")
    text_model = serializers.IntegerField(required=False, allow_null=True, default=None)
    speech_model = serializers.IntegerField(required=False, allow_null=True, default=None)
    replace_asr = serializers.BooleanField(required=False, default=False,
                                           help_text="Also redo earlier ASR transcripts (never source or human ones)")


class PredictionOutSerializer(serializers.ModelSerializer):
    class Meta:
        model = Prediction
        fields = ["id", "utterance", "model_version", "label", "scores", "uncertainty", "job", "created_at"]
        read_only_fields = fields


class SummaryOutSerializer(serializers.Serializer):
    project_id = serializers.IntegerField()
    bins = serializers.IntegerField()
    meta_key = serializers.CharField(help_text="The key in Prediction.scores that holds entropy, margin, question")
    models = serializers.JSONField(help_text="Per model version: count, per-label histograms, uncertainty, top labels")


_NOT_FOUND = OpenApiResponse(description="Not a member of the project")
_FORBIDDEN = OpenApiResponse(description="A member, but not allowed")
_BAD = OpenApiResponse(description="Names the field and why (e.g. the model is not available offline)")


def _project(request: Request, project_id: int) -> tuple[Project, str | None]:
    project = projects_visible_to(request.user).select_related("schema_version", "corpus").filter(pk=project_id).first()
    if project is None:
        raise NotFound("No such project.")
    return project, membership_role(request.user, project)


def _lead_project(request: Request, project_id: int) -> Project:
    project, _role = _project(request, project_id)
    if not project_can_manage(request.user, project):
        raise PermissionDenied("Only the project's leads can register models and start model jobs.")
    return project


def _bad(exc: PredictionSetupError) -> ValidationError:
    return ValidationError({key: [reason] for key, reason in exc.errors.items()})


class ProjectModelsView(APIView):
    @extend_schema(tags=[_TAG], operation_id="project_models", summary="Registered models and the model catalogue",
                   responses={200: ModelsOutSerializer, 403: _FORBIDDEN, 404: _NOT_FOUND})
    def get(self, request: Request, project_id: int) -> Response:
        project, role = _project(request, project_id)
        if role not in (Role.LEAD, Role.REVIEWER) and not request.user.is_staff:
            raise PermissionDenied("Only the project's leads and reviewers see its models.")
        body = {"registered": project_models_list(project=project), "catalogue": model_catalogue(project=project)}
        return Response(ModelsOutSerializer(body).data)

    @extend_schema(tags=[_TAG], operation_id="project_model_register", request=RegisterInSerializer,
                   summary="Register a model for the project (leads); refused if it cannot load offline here or "
                           "knows none of the project's languages",
                   responses={201: RegisteredOutSerializer, 400: _BAD, 403: _FORBIDDEN, 404: _NOT_FOUND})
    def post(self, request: Request, project_id: int) -> Response:
        project = _lead_project(request, project_id)
        data = RegisterInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        try:
            model = project_model_register(project=project, card_id=fields["card_id"], user=request.user,
                                           question_key=fields["question"], label_mapping=fields["label_mapping"],
                                           drop=fields["drop"])
        except PredictionSetupError as exc:
            raise _bad(exc) from None
        model.warnings = project_model_warnings(project=project, model=model)  # type: ignore[attr-defined]
        return Response(RegisteredOutSerializer(model).data, status=status.HTTP_201_CREATED)


class PreannotateView(APIView):
    @extend_schema(tags=[_TAG], operation_id="project_preannotate", request=PreannotateInSerializer,
                   summary="Start a pre-annotation job (leads): a registered model, or a head trained first",
                   responses={202: JobSerializer, 400: _BAD, 403: _FORBIDDEN, 404: _NOT_FOUND})
    def post(self, request: Request, project_id: int) -> Response:
        project = _lead_project(request, project_id)
        data = PreannotateInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        try:
            job = preannotation_job_create(
                project=project, user=request.user, model_id=fields["model"], train_head=fields["train_head"],
                utterance_ids=fields["utterance_ids"], weak_labels=fields.get("weak_labels", False),
            )
        except PredictionSetupError as exc:
            raise _bad(exc) from None
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class TranscribeView(APIView):
    @extend_schema(tags=[_TAG], operation_id="project_transcribe", request=TranscribeInSerializer,
                   summary="Start a transcription job (leads): ASR, then weak labels from text and speech models",
                   responses={202: JobSerializer, 400: _BAD, 403: _FORBIDDEN, 404: _NOT_FOUND})
    def post(self, request: Request, project_id: int) -> Response:
        project = _lead_project(request, project_id)
        data = TranscribeInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        try:
            job = transcription_job_create(
                project=project, user=request.user, asr_model_id=fields["asr_model"],
                text_model_id=fields["text_model"], speech_model_id=fields["speech_model"],
                utterance_ids=fields["utterance_ids"], weak_labels=fields.get("weak_labels", True),
                replace_asr=fields["replace_asr"],
            )
        except PredictionSetupError as exc:
            raise _bad(exc) from None
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class PredictionsView(APIView):
    @extend_schema(tags=[_TAG], operation_id="project_predictions",
                   summary="Predictions of the project's models (annotators: only when the policy shows suggestions)",
                   parameters=[OpenApiParameter("model_version", str), OpenApiParameter("utterance", int)],
                   responses={200: paginated(PredictionOutSerializer, "PaginatedPredictionList"), 403: _FORBIDDEN, 404: _NOT_FOUND})
    def get(self, request: Request, project_id: int) -> Response:
        project, role = _project(request, project_id)
        if not predictions_visible(project=project, user=request.user, role=role):
            raise PermissionDenied("This project does not show model suggestions to annotators.")
        predictions = project_predictions(project=project, model_version=request.query_params.get("model_version"))
        utterance = request.query_params.get("utterance")
        if utterance:
            if not utterance.isdigit():
                raise ValidationError({"utterance": ["must be an utterance id"]})
            predictions = predictions.filter(utterance_id=int(utterance))
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(predictions.order_by("id"), request, view=self)
        return paginator.get_paginated_response(PredictionOutSerializer(page, many=True).data)


class PredictionsSummaryView(APIView):
    @extend_schema(tags=[_TAG], operation_id="project_predictions_summary",
                   summary="Per-label score distributions (histograms) of the project's models (leads, reviewers)",
                   parameters=[OpenApiParameter("model_version", str),
                               OpenApiParameter("bins", int, description=f"1..{MAX_BINS}, default {DEFAULT_BINS}")],
                   responses={200: SummaryOutSerializer, 400: _BAD, 403: _FORBIDDEN, 404: _NOT_FOUND})
    def get(self, request: Request, project_id: int) -> Response:
        project, role = _project(request, project_id)
        if role not in (Role.LEAD, Role.REVIEWER) and not request.user.is_staff:
            raise PermissionDenied("Only the project's leads and reviewers see score distributions.")
        raw_bins: Any = request.query_params.get("bins", str(DEFAULT_BINS))
        if not str(raw_bins).isdigit() or not 1 <= int(raw_bins) <= MAX_BINS:
            raise ValidationError({"bins": [f"must be a whole number from 1 to {MAX_BINS}"]})
        summary = predictions_summary(project=project, model_version=request.query_params.get("model_version"),
                                      bins=int(raw_bins))
        return Response(SummaryOutSerializer(summary).data)


urlpatterns = [
    path("projects/<int:project_id>/models/", ProjectModelsView.as_view(), name="project-models"),
    path("projects/<int:project_id>/preannotate/", PreannotateView.as_view(), name="project-preannotate"),
    path("projects/<int:project_id>/transcribe/", TranscribeView.as_view(), name="project-transcribe"),
    path("projects/<int:project_id>/predictions/", PredictionsView.as_view(), name="project-predictions"),
    path("projects/<int:project_id>/predictions/summary/", PredictionsSummaryView.as_view(),
         name="project-predictions-summary"),
]
