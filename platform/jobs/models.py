"""Every background job, with status, progress, counts, errors and timings."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class JobKind(models.TextChoices):
    IMPORT = "import", "import"
    EXPORT = "export", "export"
    AGREEMENT = "agreement", "agreement"
    PREANNOTATE = "preannotate", "pre-annotation"
    TRANSCRIBE = "transcribe", "transcription"
    LABEL_STUDIO_IMPORT = "label_studio_import", "Label Studio import"
    LLM_LABEL = "llm_label", "LLM labelling"
    ACTIVE_LEARNING = "active_learning", "active-learning retrain"


class JobStatus(models.TextChoices):
    PENDING = "pending", "pending"
    RUNNING = "running", "running"
    SUCCEEDED = "succeeded", "succeeded"
    FAILED = "failed", "failed"
    CANCELLED = "cancelled", "cancelled"


FINISHED_STATUSES = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class Job(models.Model):
    kind = models.CharField(max_length=20, choices=JobKind.choices)
    status = models.CharField(max_length=20, choices=JobStatus.choices, default=JobStatus.PENDING)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    corpus = models.ForeignKey(
        "corpora.Corpus", null=True, blank=True, on_delete=models.CASCADE, related_name="jobs"
    )
    project = models.ForeignKey(
        "annotation.Project", null=True, blank=True, on_delete=models.CASCADE, related_name="jobs"
    )
    params = models.JSONField(default=dict, blank=True)
    progress_done = models.PositiveBigIntegerField(default=0)
    progress_total = models.PositiveBigIntegerField(null=True, blank=True)
    counts = models.JSONField(default=dict, blank=True, help_text="e.g. rows read, created, skipped, rejected")
    error_count = models.PositiveIntegerField(default=0)
    message = models.TextField(blank=True, default="", help_text="Why the job failed, in words for a person")
    result = models.JSONField(default=dict, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    runner = models.CharField(
        max_length=200, blank=True, default="",
        help_text="Id of the task message running the job: its retries and redeliveries may take the job over, "
                  "a duplicate message may not",
    )
    resends = models.PositiveIntegerField(
        default=0, help_text="How often the reaper sent the job again while it waited (its message was lost?)"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "heartbeat_at"], name="job_status_heartbeat"),
            models.Index(fields=["corpus", "-created_at"], name="job_corpus_created"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(progress_total__isnull=True) | Q(progress_done__lte=models.F("progress_total")),
                name="job_progress_within_total",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} job {self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES


class JobError(models.Model):
    """One rejected row or file of a job: where it was and why, in words a person can act on."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="errors")
    file = models.CharField(max_length=500, blank=True, default="")
    row = models.PositiveBigIntegerField(null=True, blank=True, help_text="1-based data row (header not counted)")
    column = models.CharField(max_length=200, blank=True, default="")
    reason = models.TextField()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        where = ":".join(str(p) for p in (self.file, self.row, self.column) if p not in ("", None))
        return f"{where}: {self.reason}"
