"""Jobs are written only by their workers: the admin shows them, with the first rejected rows."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest

from corpora.admin import LargeTableAdmin
from jobs.models import Job, JobError

INLINE_ERRORS_SHOWN = 100


class ReadOnlyMixin:
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class FirstErrorsFormSet(BaseInlineFormSet):
    """A job may hold 10,000 errors: show the first ones; the job errors list has all."""

    def get_queryset(self) -> QuerySet[JobError]:
        if not hasattr(self, "_limited_queryset"):
            self._limited_queryset = super().get_queryset()[:INLINE_ERRORS_SHOWN]
        return self._limited_queryset


class JobErrorInline(ReadOnlyMixin, admin.TabularInline):
    model = JobError
    formset = FirstErrorsFormSet
    fields = ["file", "row", "column", "reason"]
    readonly_fields = ["file", "row", "column", "reason"]
    extra = 0
    verbose_name_plural = f"job errors (the first {INLINE_ERRORS_SHOWN})"

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Job)
class JobAdmin(ReadOnlyMixin, LargeTableAdmin):
    list_display = [
        "id", "kind", "status", "corpus", "project", "created_by", "progress_done", "progress_total", "error_count",
        "created_at", "finished_at",
    ]
    list_select_related = ["corpus", "project", "created_by"]
    list_filter = ["kind", "status"]
    readonly_fields = [f.name for f in Job._meta.fields]
    inlines = [JobErrorInline]


@admin.register(JobError)
class JobErrorAdmin(ReadOnlyMixin, LargeTableAdmin):
    list_display = ["id", "job_id", "file", "row", "column", "reason"]
    raw_id_fields = ["job"]
    readonly_fields = ["job", "file", "row", "column", "reason"]
