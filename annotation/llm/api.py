"""JSON API for LLM labelling (tag ``llm``): endpoints, prompt templates and their preview, labelling runs,
synthetic labels, and the evaluation against human gold.

Outsiders get 404; everything that calls a model, costs money or writes is for the project's leads (403 for other
members); reviewers read runs and the evaluation. An endpoint's API key is write-only: no answer ever holds it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import transaction
from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.llm.selectors import llm_evaluation, project_endpoints, project_runs, project_templates, run_labels
from annotation.llm.services import (
    LLMSetupError,
    llm_endpoint_delete,
    llm_endpoint_register,
    llm_endpoint_test,
    llm_job_cancel,
    llm_run_create,
    llm_synthetic_publish,
    llm_template_preview,
    llm_template_save,
)
from annotation.models import (
    LLMCombination,
    LLMEndpoint,
    LLMLabel,
    LLMPromptTemplate,
    LLMRun,
    Project,
    PromptKind,
    Role,
    StructuredOutput,
)
from annotation.permissions import project_can_manage
from annotation.selectors import membership_role, projects_visible_to
from corpora.api_common import MAX_ID
from jobs.api import JobSerializer
from models_zoo.llm import BUILTIN_TEMPLATES

_TAG = "llm"
_NOT_FOUND = OpenApiResponse(description="Not a member of the project")
_FORBIDDEN = OpenApiResponse(description="A member, but not a lead")
_BAD = OpenApiResponse(description="Names each field and why")


class EndpointSerializer(serializers.ModelSerializer):
    has_api_key = serializers.SerializerMethodField(help_text="Whether a key is stored (the key itself never shows)")

    class Meta:
        model = LLMEndpoint
        fields = ["id", "name", "base_url", "model", "has_api_key", "api_key_env", "structured_output",
                  "max_concurrency", "requests_per_minute", "tokens_per_minute", "price_input_per_1k",
                  "price_output_per_1k", "timeout_s", "max_tokens", "created_at"]
        read_only_fields = fields

    def get_has_api_key(self, endpoint: LLMEndpoint) -> bool:
        return bool(endpoint.api_key_encrypted or endpoint.api_key_env)


class EndpointInSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    base_url = serializers.CharField(max_length=500, help_text="Up to and including /v1")
    model = serializers.CharField(max_length=200)
    api_key = serializers.CharField(max_length=500, required=False, allow_blank=True, default="", write_only=True,
                                    help_text="Given once, stored encrypted, never shown again")
    api_key_env = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    structured_output = serializers.ChoiceField(choices=StructuredOutput.choices, default=StructuredOutput.JSON_SCHEMA)
    max_concurrency = serializers.IntegerField(min_value=1, max_value=256, default=4)
    requests_per_minute = serializers.FloatField(min_value=0.1, required=False, allow_null=True, default=None)
    tokens_per_minute = serializers.FloatField(min_value=1, required=False, allow_null=True, default=None)
    price_input_per_1k = serializers.DecimalField(max_digits=12, decimal_places=6, min_value=Decimal(0), default=Decimal(0))
    price_output_per_1k = serializers.DecimalField(max_digits=12, decimal_places=6, min_value=Decimal(0), default=Decimal(0))
    timeout_s = serializers.FloatField(min_value=1, max_value=3600, default=60)
    max_tokens = serializers.IntegerField(min_value=16, max_value=32768, default=512)


class TemplateSerializer(serializers.ModelSerializer):
    class Meta:
        model = LLMPromptTemplate
        fields = ["id", "name", "version", "kind", "system", "user", "translate", "reason", "examples_count",
                  "content_hash", "created_at"]
        read_only_fields = fields


class TemplateInSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    kind = serializers.ChoiceField(choices=PromptKind.choices)
    user = serializers.CharField(required=False, allow_null=True, default=None, max_length=20000,
                                 help_text="Default: the built-in template of this kind")
    system = serializers.CharField(required=False, allow_blank=True, default="", max_length=20000)
    translate = serializers.BooleanField(required=False, allow_null=True, default=None)
    reason = serializers.BooleanField(required=False, allow_null=True, default=None)
    examples_count = serializers.IntegerField(min_value=0, max_value=20, default=0)


class PreviewInSerializer(serializers.Serializer):
    utterance_ids = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=MAX_ID),
                                          required=False, default=list, max_length=5)
    endpoint = serializers.IntegerField(required=False, allow_null=True, default=None,
                                        help_text="Also ask this endpoint (costs tokens; stores nothing)")


class RunSerializer(serializers.ModelSerializer):
    job = JobSerializer(read_only=True)
    endpoint_name = serializers.CharField(source="endpoint.name", read_only=True)
    template_name = serializers.CharField(source="template.name", read_only=True)
    template_version = serializers.IntegerField(source="template.version", read_only=True)

    class Meta:
        model = LLMRun
        fields = ["id", "endpoint", "endpoint_name", "template", "template_name", "template_version", "selection",
                  "job", "created_at"]
        read_only_fields = fields


class RunInSerializer(serializers.Serializer):
    endpoint = serializers.IntegerField()
    template = serializers.IntegerField()
    selection = serializers.JSONField(required=False, default=dict, help_text=(
        '{"unlabelled": true, "split": "train"|"dev"|"test", "language": "mr", "text_contains": "...", '
        '"utterance_ids": [...], "limit": 500}; all optional'))


class LabelSerializer(serializers.ModelSerializer):
    class Meta:
        model = LLMLabel
        fields = ["id", "utterance", "endpoint", "template", "run", "model", "labels", "translation", "rationale",
                  "raw", "error", "prompt_tokens", "completion_tokens", "cost", "latency_s", "created_at"]
        read_only_fields = fields


class CombinationSerializer(serializers.ModelSerializer):
    class Meta:
        model = LLMCombination
        fields = ["id", "method", "sources", "model_version", "counts", "created_at"]
        read_only_fields = fields


class SyntheticInSerializer(serializers.Serializer):
    sources = serializers.ListField(child=serializers.ListField(child=serializers.IntegerField(), min_length=2,
                                                                max_length=2), min_length=1, max_length=20,
                                    help_text="[[endpoint id, template id], ...]")
    method = serializers.ChoiceField(choices=["single", "union", "intersection", "majority"], default="single")


def _project(request: Request, project_id: int) -> tuple[Project, str | None]:
    project = projects_visible_to(request.user).select_related("schema_version").filter(pk=project_id).first()
    if project is None:
        raise NotFound("No such project.")
    return project, membership_role(request.user, project)


def _lead(request: Request, project_id: int) -> Project:
    project, _ = _project(request, project_id)
    if not project_can_manage(request.user, project):
        raise PermissionDenied("Only the project's leads manage LLM labelling.")
    return project


def _reader(request: Request, project_id: int) -> Project:
    project, role = _project(request, project_id)
    if role not in (Role.LEAD, Role.REVIEWER) and not project_can_manage(request.user, project):
        raise PermissionDenied("Only the project's leads and reviewers see LLM labelling.")
    return project


def _bad(exc: LLMSetupError) -> ValidationError:
    return ValidationError({key: [reason] for key, reason in exc.errors.items()})


def _valid(serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    data = serializer_class(data=request.data)
    data.is_valid(raise_exception=True)
    return dict(data.validated_data)


class EndpointsView(APIView):
    @extend_schema(tags=[_TAG], operation_id="llm_endpoints", summary="The project's LLM endpoints (leads)",
                   responses={200: EndpointSerializer(many=True), 403: _FORBIDDEN, 404: _NOT_FOUND})
    def get(self, request: Request, project_id: int) -> Response:
        return Response(EndpointSerializer(project_endpoints(_lead(request, project_id)), many=True).data)

    @extend_schema(tags=[_TAG], operation_id="llm_endpoint_register", request=EndpointInSerializer,
                   summary="Register an OpenAI-compatible endpoint (leads); the URL passes the SSRF guard",
                   responses={201: EndpointSerializer, 400: _BAD, 403: _FORBIDDEN, 404: _NOT_FOUND})
    def post(self, request: Request, project_id: int) -> Response:
        project = _lead(request, project_id)
        fields = _valid(EndpointInSerializer, request)
        try:
            endpoint = llm_endpoint_register(project=project, user=request.user, **fields)
        except LLMSetupError as exc:
            raise _bad(exc) from None
        return Response(EndpointSerializer(endpoint).data, status=status.HTTP_201_CREATED)


def _endpoint(project: Project, endpoint_id: int) -> LLMEndpoint:
    endpoint = LLMEndpoint.objects.filter(project=project, pk=endpoint_id).first()
    if endpoint is None:
        raise NotFound("No such endpoint in this project.")
    return endpoint


class EndpointView(APIView):
    @extend_schema(tags=[_TAG], operation_id="llm_endpoint_delete", summary="Remove an endpoint that has no runs",
                   responses={204: None, 400: _BAD, 403: _FORBIDDEN, 404: _NOT_FOUND})
    def delete(self, request: Request, project_id: int, endpoint_id: int) -> Response:
        try:
            llm_endpoint_delete(endpoint=_endpoint(_lead(request, project_id), endpoint_id))
        except LLMSetupError as exc:
            raise _bad(exc) from None
        return Response(status=status.HTTP_204_NO_CONTENT)


class EndpointTestView(APIView):
    @extend_schema(tags=[_TAG], operation_id="llm_endpoint_test", request=None,
                   summary="Send one item with the CoTR prompt and show the answer, tokens and cost (nothing stored)",
                   responses={200: OpenApiResponse(description="ok, labels, translation, rationale, tokens, cost or "
                                                               "error"), 400: _BAD, 403: _FORBIDDEN, 404: _NOT_FOUND})
    def post(self, request: Request, project_id: int, endpoint_id: int) -> Response:
        endpoint = _endpoint(_lead(request, project_id), endpoint_id)
        try:
            return Response(llm_endpoint_test(endpoint=endpoint))
        except LLMSetupError as exc:
            raise _bad(exc) from None


class TemplatesView(APIView):
    @extend_schema(tags=[_TAG], operation_id="llm_templates",
                   summary="Every version of the project's prompt templates, and the built-in texts",
                   responses={200: OpenApiResponse(description="templates, builtins"), 403: _FORBIDDEN,
                              404: _NOT_FOUND})
    def get(self, request: Request, project_id: int) -> Response:
        project = _lead(request, project_id)
        builtins = {name: {"user": t.user, "translate": t.translate, "reason": t.reason}
                    for name, t in BUILTIN_TEMPLATES.items()}
        return Response({"templates": TemplateSerializer(project_templates(project), many=True).data,
                         "builtins": builtins})

    @extend_schema(tags=[_TAG], operation_id="llm_template_save", request=TemplateInSerializer,
                   summary="Save a template's next version (the same content returns the current version)",
                   responses={201: TemplateSerializer, 400: _BAD, 403: _FORBIDDEN, 404: _NOT_FOUND})
    def post(self, request: Request, project_id: int) -> Response:
        project = _lead(request, project_id)
        fields = _valid(TemplateInSerializer, request)
        try:
            template = llm_template_save(project=project, user=request.user, name=fields["name"], kind=fields["kind"],
                                         user_text=fields["user"], system=fields["system"],
                                         translate=fields["translate"], reason=fields["reason"],
                                         examples_count=fields["examples_count"])
        except LLMSetupError as exc:
            raise _bad(exc) from None
        return Response(TemplateSerializer(template).data, status=status.HTTP_201_CREATED)


class TemplatePreviewView(APIView):
    @extend_schema(tags=[_TAG], operation_id="llm_template_preview", request=PreviewInSerializer,
                   summary="The rendered prompt of up to 5 items, and with an endpoint its answers (nothing stored)",
                   responses={200: OpenApiResponse(description="[{utterance, text, prompt, answer?}]"), 400: _BAD,
                              403: _FORBIDDEN, 404: _NOT_FOUND})
    def post(self, request: Request, project_id: int, template_id: int) -> Response:
        project = _lead(request, project_id)
        template = LLMPromptTemplate.objects.filter(project=project, pk=template_id).first()
        if template is None:
            raise NotFound("No such template in this project.")
        fields = _valid(PreviewInSerializer, request)
        endpoint = _endpoint(project, fields["endpoint"]) if fields["endpoint"] else None
        try:
            return Response(llm_template_preview(template=template, utterance_ids=fields["utterance_ids"],
                                                 endpoint=endpoint))
        except LLMSetupError as exc:
            raise _bad(exc) from None


class RunsView(APIView):
    @extend_schema(tags=[_TAG], operation_id="llm_runs", summary="The project's LLM labelling runs, newest first",
                   responses={200: RunSerializer(many=True), 403: _FORBIDDEN, 404: _NOT_FOUND})
    def get(self, request: Request, project_id: int) -> Response:
        return Response(RunSerializer(project_runs(_reader(request, project_id)), many=True).data)

    @extend_schema(tags=[_TAG], operation_id="llm_run_start", request=RunInSerializer,
                   summary="Start labelling a selection with an endpoint and a template version (llm queue)",
                   responses={202: RunSerializer, 400: _BAD, 403: _FORBIDDEN, 404: _NOT_FOUND})
    def post(self, request: Request, project_id: int) -> Response:
        project = _lead(request, project_id)
        fields = _valid(RunInSerializer, request)
        template = LLMPromptTemplate.objects.filter(project=project, pk=fields["template"]).first()
        if template is None:
            raise ValidationError({"template": ["not a template of this project"]})
        if not isinstance(fields["selection"], dict):
            raise ValidationError({"selection": ["must be an object"]})
        try:
            with transaction.atomic():
                run = llm_run_create(project=project, user=request.user, endpoint=_endpoint(project, fields["endpoint"]),
                                     template=template, selection=fields["selection"])
        except LLMSetupError as exc:
            raise _bad(exc) from None
        return Response(RunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


def _run(project: Project, run_id: int) -> LLMRun:
    run = LLMRun.objects.filter(project=project, pk=run_id).select_related("job", "endpoint", "template").first()
    if run is None:
        raise NotFound("No such run in this project.")
    return run


class RunView(APIView):
    @extend_schema(tags=[_TAG], operation_id="llm_run", summary="One run: progress, tokens and cost so far",
                   responses={200: RunSerializer, 403: _FORBIDDEN, 404: _NOT_FOUND})
    def get(self, request: Request, project_id: int, run_id: int) -> Response:
        return Response(RunSerializer(_run(_reader(request, project_id), run_id)).data)


class RunCancelView(APIView):
    @extend_schema(tags=[_TAG], operation_id="llm_run_cancel", request=None,
                   summary="Cancel a run; the labels already made are kept (and reused by later runs)",
                   responses={200: RunSerializer, 403: _FORBIDDEN, 404: _NOT_FOUND})
    def post(self, request: Request, project_id: int, run_id: int) -> Response:
        run = _run(_lead(request, project_id), run_id)
        llm_job_cancel(job=run.job)
        run.job.refresh_from_db()
        return Response(RunSerializer(run).data)


class RunLabelsView(APIView):
    @extend_schema(tags=[_TAG], operation_id="llm_run_labels",
                   summary="The answers for a run's endpoint and template version, with their provenance",
                   responses={200: LabelSerializer(many=True), 403: _FORBIDDEN, 404: _NOT_FOUND})
    def get(self, request: Request, project_id: int, run_id: int) -> Response:
        run = _run(_reader(request, project_id), run_id)
        paginator = PageNumberPagination()
        page: list[LLMLabel] | None = paginator.paginate_queryset(run_labels(run), request, view=self)
        return paginator.get_paginated_response(LabelSerializer(page, many=True).data)


class SyntheticView(APIView):
    @extend_schema(tags=[_TAG], operation_id="llm_synthetic", summary="The published synthetic label set",
                   responses={200: CombinationSerializer(many=True), 403: _FORBIDDEN, 404: _NOT_FOUND})
    def get(self, request: Request, project_id: int) -> Response:
        project = _reader(request, project_id)
        return Response(CombinationSerializer(LLMCombination.objects.filter(project=project), many=True).data)

    @extend_schema(tags=[_TAG], operation_id="llm_synthetic_publish", request=SyntheticInSerializer,
                   summary="Publish synthetic labels (origin llm; the export puts them in train only) from one "
                           "endpoint+template, or several combined by union, intersection or majority",
                   responses={201: CombinationSerializer, 400: _BAD, 403: _FORBIDDEN, 404: _NOT_FOUND})
    def post(self, request: Request, project_id: int) -> Response:
        project = _lead(request, project_id)
        fields = _valid(SyntheticInSerializer, request)
        try:
            combination = llm_synthetic_publish(project=project, user=request.user,
                                                sources=[(e, t) for e, t in fields["sources"]], method=fields["method"])
        except LLMSetupError as exc:
            raise _bad(exc) from None
        return Response(CombinationSerializer(combination).data, status=status.HTTP_201_CREATED)


class EvaluationView(APIView):
    @extend_schema(tags=[_TAG], operation_id="llm_evaluation",
                   summary="Every LLM source against the human majority: macro-F1, per-label F1, confusion, kappa, "
                           "alpha with and without the LLM, per language; CoTR vs direct side by side",
                   responses={200: OpenApiResponse(description="questions, sources, cotr_vs_direct, note"),
                              403: _FORBIDDEN, 404: _NOT_FOUND})
    def get(self, request: Request, project_id: int) -> Response:
        return Response(llm_evaluation(_reader(request, project_id)))


urlpatterns = [
    path("projects/<int:project_id>/llm/endpoints/", EndpointsView.as_view(), name="llm-endpoints"),
    path("projects/<int:project_id>/llm/endpoints/<int:endpoint_id>/", EndpointView.as_view(), name="llm-endpoint"),
    path("projects/<int:project_id>/llm/endpoints/<int:endpoint_id>/test/", EndpointTestView.as_view(),
         name="llm-endpoint-test"),
    path("projects/<int:project_id>/llm/templates/", TemplatesView.as_view(), name="llm-templates"),
    path("projects/<int:project_id>/llm/templates/<int:template_id>/preview/", TemplatePreviewView.as_view(),
         name="llm-template-preview"),
    path("projects/<int:project_id>/llm/runs/", RunsView.as_view(), name="llm-runs"),
    path("projects/<int:project_id>/llm/runs/<int:run_id>/", RunView.as_view(), name="llm-run"),
    path("projects/<int:project_id>/llm/runs/<int:run_id>/cancel/", RunCancelView.as_view(), name="llm-run-cancel"),
    path("projects/<int:project_id>/llm/runs/<int:run_id>/labels/", RunLabelsView.as_view(), name="llm-run-labels"),
    path("projects/<int:project_id>/llm/synthetic/", SyntheticView.as_view(), name="llm-synthetic"),
    path("projects/<int:project_id>/llm/evaluation/", EvaluationView.as_view(), name="llm-evaluation"),
]
