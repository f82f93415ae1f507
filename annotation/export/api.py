"""JSON API for gold-split exports of a project: start one, watch it, download its files.

Views are thin: explicit serializers, ``annotation.export`` services and selectors do the work. The project's leads
(and staff) start exports; its reviewers read them and download their files (what the reviewers decided is in
them); outsiders get 404 (the project does not exist for them), other members 403.
The export runs as a background job (``workers.tasks.run_export_job``) that writes to the configured storage;
a download streams the file (local storage) or redirects to a short-lived presigned URL (S3). Only the names the
job recorded are served. Routes are in ``urlpatterns`` below, included by ``config.api_urls``.
"""

from __future__ import annotations

from typing import Any

from django.http import FileResponse, HttpResponseRedirect, StreamingHttpResponse
from django.urls import path, reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.export.gold import ORIGIN_PRECEDENCE
from annotation.export.jobs import (
    DOWNLOAD_LINK_SECONDS,
    export_archive_entries,
    export_archive_filename,
    export_archive_stream,
    export_download,
    export_file_entry,
    export_files,
    export_job_of_project,
    export_jobs_of_project,
)
from annotation.export.options import FORMATS, MAX_BOOTSTRAP_RESAMPLES, MAX_MIN_ANNOTATIONS, ExportOptionsError
from annotation.export.services import export_job_create
from annotation.export.splits import GROUPINGS
from annotation.models import Project, Role
from annotation.permissions import project_can_manage
from annotation.quality.api import ErrorSerializer
from annotation.selectors import membership_role, projects_visible_to
from jobs.api import JobSerializer
from jobs.models import Job

_TAG = "exports"


# --- serializers ----------------------------------------------------------------------------------------------------


class ExportOptionsInSerializer(serializers.Serializer):
    """The export options; every one may be left out (defaults: the MahaEmotions recipe, 80/10/10)."""

    formats = serializers.ListField(
        child=serializers.ChoiceField(choices=FORMATS), required=False, allow_empty=False,
        help_text="Formats to store (default parquet, csv, jsonl); the data card always comes with them")
    splits = serializers.DictField(
        child=serializers.FloatField(min_value=0), required=False,
        help_text='Ratios for train, dev and test, e.g. {"train": 0.8, "dev": 0.1, "test": 0.1} (normalised)')
    seed = serializers.IntegerField(min_value=0, max_value=2**63 - 1, required=False,
                                    help_text="Seed of the split; the same data and seed give the same split")
    grouping = serializers.ChoiceField(
        choices=GROUPINGS, required=False,
        help_text="What must not leak across splits (default conversation+speaker)")
    stratify_on = serializers.CharField(
        max_length=63, required=False, allow_null=True,
        help_text="Question key to stratify on (default: the first single-choice or multi-label question)")
    stratify_language = serializers.BooleanField(required=False, help_text="Also stratify by language (default true)")
    provenance = serializers.DictField(
        child=serializers.ListField(child=serializers.ChoiceField(choices=ORIGIN_PRECEDENCE)), required=False,
        help_text='Origins each split may take its gold from; default {"train": ["human", "llm", "model"], '
                  '"dev": ["human"], "test": ["human"]}')
    bootstrap_resamples = serializers.IntegerField(
        min_value=0, max_value=MAX_BOOTSTRAP_RESAMPLES, required=False,
        help_text="Bootstrap resamples for the agreement interval in the data card (default 1000)")
    perspective = serializers.CharField(max_length=20, required=False, allow_null=True,
                                        help_text="Only annotations of this perspective (default: all)")
    min_annotations = serializers.IntegerField(
        min_value=1, max_value=MAX_MIN_ANNOTATIONS, required=False,
        help_text="Human gold needs at least this many human annotations on the item (default 1); "
                  "adjudicated items always qualify")
    complete_only = serializers.BooleanField(
        required=False, help_text="Only complete items: human gold needs as many human annotations as the project's "
                                  "overlap (default false)")
    heldout_min_annotations = serializers.IntegerField(
        min_value=1, max_value=MAX_MIN_ANNOTATIONS, required=False, allow_null=True,
        help_text="Dev and test hold human gold only with at least this many human annotations (default: the "
                  "project's overlap; 1 lets them hold single-annotated items). Items below go to train")
    group_same_text = serializers.BooleanField(
        required=False, help_text="Keep utterances with the same text (audio-less ones) in one split (default true)")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(getattr(self, "initial_data", {}) or {}) - set(self.fields))
        if unknown:
            raise ValidationError({key: [f"unknown option (known: {', '.join(sorted(self.fields))})"]
                                   for key in unknown})
        return attrs


class ExportFileSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="Path inside the export, e.g. csv/train.csv")
    format = serializers.CharField(help_text="parquet, csv, jsonl, hf, label_studio or card")
    split = serializers.CharField(required=False, help_text="train, dev or test, where the file holds one split")
    rows = serializers.IntegerField(required=False)
    size = serializers.IntegerField(help_text="Bytes")
    download_url = serializers.CharField(
        help_text=f"The API download (leads, reviewers): streams the file, or redirects to a link valid "
                  f"{DOWNLOAD_LINK_SECONDS} s")



class SplitCountSerializer(serializers.Serializer):
    utterances = serializers.IntegerField()
    groups = serializers.IntegerField(help_text="Conversations, speakers or connected groups kept whole")


class ExportSplitsSerializer(serializers.Serializer):
    train = SplitCountSerializer()
    dev = SplitCountSerializer()
    test = SplitCountSerializer()


class ExportAgreementSerializer(serializers.Serializer):
    question = serializers.CharField()
    alpha = serializers.FloatField(allow_null=True)
    interval = serializers.ListField(child=serializers.FloatField(), allow_null=True,
                                     help_text="Bootstrap interval [low, high], or null")
    n_resamples = serializers.IntegerField()
    n_pairable_units = serializers.IntegerField()


class ExportJobSerializer(JobSerializer):
    """An export job: the job's status, progress, counts and timings, its options and, once done, its files."""

    options = serializers.SerializerMethodField(help_text="The options the export runs with, defaults filled in")
    files = serializers.SerializerMethodField(help_text="What the export produced (once it succeeded); the data card first")
    archive_url = serializers.SerializerMethodField(
        help_text="Every file in one streamed zip (leads, reviewers); null until the export succeeded")
    splits = serializers.SerializerMethodField(help_text="Per split: utterances and groups (once it succeeded)")
    agreement = serializers.SerializerMethodField(help_text="Krippendorff's alpha per single-choice question, as in the card")

    class Meta(JobSerializer.Meta):
        fields = [
            "id", "kind", "status", "project", "created_by", "progress_done", "progress_total", "counts",
            "message", "attempts", "created_at", "started_at", "heartbeat_at", "finished_at", "duration_s",
            "options", "files", "archive_url", "splits", "agreement",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_options(self, job: Job) -> dict[str, Any]:
        options = job.params.get("options") if isinstance(job.params, dict) else None
        return options if isinstance(options, dict) else {}

    @extend_schema_field(ExportFileSerializer(many=True))
    def get_files(self, job: Job) -> list[dict[str, Any]]:
        request: Request | None = self.context.get("request")
        out = []
        for entry in export_files(job=job):
            url = reverse("project-export-file", kwargs={"project_id": job.project_id, "job_id": job.pk,
                                                         "name": entry["name"]})
            out.append({**entry, "download_url": request.build_absolute_uri(url) if request is not None else url})
        return out

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_archive_url(self, job: Job) -> str | None:
        if not export_files(job=job):
            return None
        request: Request | None = self.context.get("request")
        url = reverse("project-export-archive", kwargs={"project_id": job.project_id, "job_id": job.pk})
        return request.build_absolute_uri(url) if request is not None else url

    @extend_schema_field(ExportSplitsSerializer(allow_null=True))
    def get_splits(self, job: Job) -> dict[str, Any] | None:
        splits = job.result.get("splits") if isinstance(job.result, dict) else None
        return splits if isinstance(splits, dict) else None

    @extend_schema_field(ExportAgreementSerializer(many=True))
    def get_agreement(self, job: Job) -> list[Any]:
        agreement = job.result.get("agreement") if isinstance(job.result, dict) else None
        return agreement if isinstance(agreement, list) else []


class ExportJobPageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.CharField(allow_null=True)
    previous = serializers.CharField(allow_null=True)
    results = ExportJobSerializer(many=True)


_NOT_FOUND = OpenApiResponse(ErrorSerializer, description="Not a member of the project, or no such export or file")
_FORBIDDEN = OpenApiResponse(ErrorSerializer, description="A member, but not a lead (start) or reviewer (read)")
_BAD = OpenApiResponse(description="Names each bad option and why, e.g. {\"splits\": [\"the train ratio must be positive\"]}")


# --- helpers --------------------------------------------------------------------------------------------------------


def _lead_project(request: Request, project_id: int) -> Project:
    project = _reader_project(request, project_id)
    if not project_can_manage(request.user, project):
        raise PermissionDenied("Only the project's leads can export it.")
    return project


def _reader_project(request: Request, project_id: int) -> Project:
    """The project for its leads and reviewers (and staff): they read exports and download their files."""
    project = projects_visible_to(request.user).select_related("schema_version", "corpus").filter(pk=project_id).first()
    if project is None:
        raise NotFound("No such project.")
    if not project_can_manage(request.user, project) and membership_role(request.user, project) != Role.REVIEWER:
        raise PermissionDenied("Only the project's leads and reviewers can read its exports.")
    return project


def _export_job(project: Project, job_id: int) -> Job:
    job = export_job_of_project(project=project, job_id=job_id)
    if job is None:
        raise NotFound("No such export in this project.")
    return job


# --- views ----------------------------------------------------------------------------------------------------------


class ExportsView(APIView):
    @extend_schema(tags=[_TAG], operation_id="project_exports",
                   summary="The project's export jobs, newest first (leads, reviewers): status, progress, counts, files",
                   parameters=[OpenApiParameter("page", int)],
                   responses={200: ExportJobPageSerializer, 403: _FORBIDDEN, 404: _NOT_FOUND})
    def get(self, request: Request, project_id: int) -> Response:
        project = _reader_project(request, project_id)
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(export_jobs_of_project(project=project), request, view=self)
        data = ExportJobSerializer(page, many=True, context={"request": request}).data
        return paginator.get_paginated_response(data)

    @extend_schema(tags=[_TAG], operation_id="project_export_create", request=ExportOptionsInSerializer,
                   summary="Start a gold-split export (leads): a background job writing to the configured storage",
                   responses={202: ExportJobSerializer, 400: _BAD, 403: _FORBIDDEN, 404: _NOT_FOUND})
    def post(self, request: Request, project_id: int) -> Response:
        project = _lead_project(request, project_id)
        data = ExportOptionsInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            job = export_job_create(created_by=request.user, project=project, options=dict(data.validated_data))
        except ExportOptionsError as exc:
            raise ValidationError({key: [reason] for key, reason in exc.errors.items()}) from None
        return Response(ExportJobSerializer(job, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)


class ExportDetailView(APIView):
    @extend_schema(tags=[_TAG], operation_id="project_export",
                   summary="One export job (leads, reviewers): poll it for progress; once it succeeded, its files",
                   responses={200: ExportJobSerializer, 403: _FORBIDDEN, 404: _NOT_FOUND})
    def get(self, request: Request, project_id: int, job_id: int) -> Response:
        job = _export_job(_reader_project(request, project_id), job_id)
        return Response(ExportJobSerializer(job, context={"request": request}).data)


class _AnyAccept(BaseContentNegotiation):
    """A download answers whatever the client accepts (a file, or a JSON error from the first renderer)."""

    def select_parser(self, request: Request, parsers: Any) -> Any:
        return parsers[0]

    def select_renderer(self, request: Request, renderers: Any, format_suffix: str | None = None) -> Any:
        return renderers[0], renderers[0].media_type


class ExportFileView(APIView):
    content_negotiation_class = _AnyAccept

    @extend_schema(
        tags=[_TAG], operation_id="project_export_file",
        summary="Download one file of a finished export (leads, reviewers)",
        description=("Only names listed in the export's `files` are served. With local storage the file is streamed "
                     "as an attachment; with S3 storage the answer is a 302 to a presigned URL valid "
                     f"{DOWNLOAD_LINK_SECONDS} seconds."),
        parameters=[OpenApiParameter("name", str, OpenApiParameter.PATH,
                                     description="A file name from the export's `files`, e.g. csv/train.csv")],
        responses={
            (200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY, description="The file"),
            302: OpenApiResponse(description="Redirect to a short-lived presigned URL (S3 storage)"),
            403: _FORBIDDEN, 404: _NOT_FOUND,
        },
    )
    def get(self, request: Request, project_id: int, job_id: int, name: str) -> Any:
        job = _export_job(_reader_project(request, project_id), job_id)
        entry = export_file_entry(job=job, name=name)
        if entry is None:
            raise NotFound("No such file in this export.")
        try:
            download = export_download(job=job, entry=entry)
        except (FileNotFoundError, OSError):
            raise NotFound("The file is no longer in storage; run the export again.") from None
        if download.url is not None:
            response: Any = HttpResponseRedirect(download.url)
        else:
            response = FileResponse(download.stream, as_attachment=True, filename=download.filename)
        response["Cache-Control"] = "private, no-store"
        return response


class ExportArchiveView(APIView):
    content_negotiation_class = _AnyAccept

    @extend_schema(
        tags=[_TAG], operation_id="project_export_archive",
        summary="Download every file of a finished export as one zip (leads, reviewers)",
        description=("The zip is streamed as it is made (files are read from storage piece by piece, local or S3), "
                     "so it starts at once and the server's memory stays flat. Its entries are the names in the "
                     "export's `files`, under one folder `sentio-export-<job id>/`."),
        responses={
            (200, "application/zip"): OpenApiResponse(OpenApiTypes.BINARY, description="The zip"),
            403: _FORBIDDEN, 404: _NOT_FOUND,
        },
    )
    def get(self, request: Request, project_id: int, job_id: int) -> Any:
        job = _export_job(_reader_project(request, project_id), job_id)
        try:
            entries = export_archive_entries(job=job)
        except FileNotFoundError as exc:
            raise NotFound(f"{exc.args[0]} is no longer in storage; run the export again.") from None
        if not entries:
            raise NotFound("The export has no files (yet): it has not succeeded.")
        response = StreamingHttpResponse(export_archive_stream(job=job, entries=entries), content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="{export_archive_filename(job=job)}"'
        response["Cache-Control"] = "private, no-store"
        return response


urlpatterns = [
    path("projects/<int:project_id>/exports/", ExportsView.as_view(), name="project-exports"),
    path("projects/<int:project_id>/exports/<int:job_id>/", ExportDetailView.as_view(), name="project-export"),
    path("projects/<int:project_id>/exports/<int:job_id>/files/<path:name>", ExportFileView.as_view(),
         name="project-export-file"),
    path("projects/<int:project_id>/exports/<int:job_id>/archive/", ExportArchiveView.as_view(),
         name="project-export-archive"),
]
