"""JSON API for background jobs: status, progress, counts, timings and the rows they rejected."""

from __future__ import annotations

import csv
from collections.abc import Iterator

import django_filters
from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from annotation.export.formats import neutralise_cell
from config.drf import paginated
from corpora.api_common import IdFilter
from jobs.models import Job, JobError
from jobs.selectors import job_errors_list, jobs_visible_to


class JobSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", read_only=True, allow_null=True, default=None)
    duration_s = serializers.SerializerMethodField(help_text="Seconds from start to finish (to the last heartbeat while running)")

    class Meta:
        model = Job
        fields = [
            "id", "kind", "status", "corpus", "project", "created_by", "progress_done", "progress_total", "counts",
            "error_count", "message", "result", "attempts", "created_at", "started_at", "heartbeat_at",
            "finished_at", "duration_s",
        ]
        read_only_fields = fields

    def get_duration_s(self, job: Job) -> float | None:
        if job.started_at is None:
            return None
        end = job.finished_at or job.heartbeat_at or job.started_at
        return round((end - job.started_at).total_seconds(), 3)


class JobErrorSerializer(serializers.ModelSerializer):
    class Meta:
        model = JobError
        fields = ["id", "file", "row", "column", "reason"]
        read_only_fields = fields


class JobFilter(django_filters.FilterSet):
    corpus = IdFilter(field_name="corpus_id")
    project = IdFilter(field_name="project_id")

    class Meta:
        model = Job
        fields = ["kind", "status", "corpus", "project"]


class JobViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = JobSerializer
    filterset_class = JobFilter

    def get_queryset(self) -> QuerySet[Job]:
        return jobs_visible_to(self.request.user).select_related("created_by")

    @extend_schema(responses={200: paginated(JobErrorSerializer, "PaginatedJobErrorList")}, summary="Rows and files the job rejected, and why")
    @action(detail=True, methods=["get"], filterset_class=None, serializer_class=JobErrorSerializer)
    def errors(self, request: Request, pk: str | None = None) -> Response:
        job = self.get_object()
        page = self.paginate_queryset(job_errors_list(job=job))
        serializer = JobErrorSerializer(page, many=True)
        return self.get_paginated_response(serializer.data)

    @extend_schema(
        responses={(200, "text/csv"): OpenApiTypes.STR}, summary="Every row and file the job rejected, as a CSV file",
    )
    @action(detail=True, methods=["get"], url_path="errors/csv", filterset_class=None, pagination_class=None)
    def errors_csv(self, request: Request, pk: str | None = None) -> StreamingHttpResponse:
        job = self.get_object()

        def lines() -> Iterator[str]:
            buffer = _Line()
            writer = csv.writer(buffer)
            yield writer.writerow(["file", "row", "column", "reason"])
            for error in job_errors_list(job=job).values_list("file", "row", "column", "reason").iterator(chunk_size=2000):
                yield writer.writerow([neutralise_cell(cell) for cell in error])

        response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="job-{job.pk}-errors.csv"'
        return response


class _Line:
    """A file-like object whose write returns the line, so csv.writer can feed a streaming response."""

    def write(self, line: str) -> str:
        return line
