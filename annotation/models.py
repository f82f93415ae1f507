"""Label schemas, projects, memberships, annotations (with provenance) and model predictions."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class LabelSchema(models.Model):
    """A named schema; its questions live in immutable, numbered versions."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class LabelSchemaVersion(models.Model):
    """Questions are a validated JSON list (see annotation.schema); a version never changes."""

    schema = models.ForeignKey(LabelSchema, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    questions = models.JSONField()
    perspectives = models.JSONField(default=list, blank=True, help_text='e.g. ["writer", "reader"]')
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["schema", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["schema", "version"], name="schema_version_unique"),
            models.CheckConstraint(condition=Q(version__gte=1), name="schema_version_from_1"),
        ]

    def __str__(self) -> str:
        return f"{self.schema.slug} v{self.version}"


class SuggestionPolicy(models.TextChoices):
    HIDDEN = "hidden", "hidden"
    SHOWN = "shown", "shown beside the form"
    PREFILLED = "prefilled", "prefilled in the form"


class OrderingStrategy(models.TextChoices):
    SEQUENTIAL = "sequential", "sequential"
    RANDOM = "random", "random"
    LEAST_ANNOTATED = "least_annotated", "least annotated first"
    DISAGREEMENT = "disagreement", "disagreement first"
    UNCERTAINTY = "uncertainty", "model uncertainty first"


class Project(models.Model):
    name = models.CharField(max_length=200)
    corpus = models.ForeignKey("corpora.Corpus", on_delete=models.PROTECT, related_name="projects")
    languages = models.ManyToManyField(
        "corpora.Language", blank=True, related_name="projects", help_text="Empty: every language of the corpus"
    )
    schema_version = models.ForeignKey(LabelSchemaVersion, on_delete=models.PROTECT, related_name="projects")
    overlap = models.PositiveSmallIntegerField(default=1, help_text="Human annotations wanted per item")
    guidelines = models.TextField(blank=True)
    ordering_strategy = models.CharField(
        max_length=20, choices=OrderingStrategy.choices, default=OrderingStrategy.SEQUENTIAL
    )
    suggestion_policy = models.CharField(
        max_length=10, choices=SuggestionPolicy.choices, default=SuggestionPolicy.HIDDEN
    )
    gold_rate = models.FloatField(default=0.0, help_text="Share of gold (honeypot) items mixed in, 0–1")
    reservation_seconds = models.PositiveIntegerField(default=1800)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(overlap__gte=1) & Q(overlap__lte=50), name="project_overlap_1_50"),
            models.CheckConstraint(condition=Q(gold_rate__gte=0) & Q(gold_rate__lte=1), name="project_gold_rate_0_1"),
            models.CheckConstraint(condition=Q(reservation_seconds__gte=30), name="project_reservation_min_30s"),
        ]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    LEAD = "lead", "lead"
    REVIEWER = "reviewer", "reviewer"
    ANNOTATOR = "annotator", "annotator"


class Membership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.ANNOTATOR)
    languages = models.ManyToManyField(
        "corpora.Language", blank=True, related_name="+", help_text="Languages this annotator reads"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "user"]
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="membership_unique_per_project")]

    def __str__(self) -> str:
        return f"{self.user} as {self.role} in {self.project}"


class Origin(models.TextChoices):
    HUMAN = "human", "human"
    MODEL = "model", "model"
    LLM = "llm", "LLM"


class Annotation(models.Model):
    """One set of answers to a schema version for one utterance, with who or what made it."""

    utterance = models.ForeignKey("corpora.Utterance", on_delete=models.CASCADE, related_name="annotations")
    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.CASCADE, related_name="annotations",
        help_text="Empty for labels imported with a corpus",
    )
    schema_version = models.ForeignKey(LabelSchemaVersion, on_delete=models.PROTECT, related_name="annotations")
    value = models.JSONField(help_text="Answers keyed by question key, validated against the schema version")
    perspective = models.CharField(max_length=20, blank=True, default="")
    origin = models.CharField(max_length=10, choices=Origin.choices)
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="annotations"
    )
    external_rater = models.CharField(
        max_length=200, blank=True, default="", help_text="Rater id from an imported source"
    )
    model_version = models.CharField(max_length=200, blank=True, default="", help_text="Model or LLM that made it")
    import_job = models.ForeignKey(
        "jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    client_id = models.UUIDField(null=True, blank=True, help_text="Client-generated id for idempotent submits")
    lead_time_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(origin=Origin.HUMAN) | Q(annotator__isnull=False) | ~Q(external_rater=""),
                name="annotation_human_has_annotator",
            ),
            models.CheckConstraint(
                condition=Q(origin=Origin.HUMAN) | ~Q(model_version=""),
                name="annotation_machine_has_model_version",
            ),
            models.UniqueConstraint(
                fields=["project", "utterance", "annotator", "perspective"],
                condition=Q(annotator__isnull=False, project__isnull=False),
                name="annotation_one_per_annotator_item",
            ),
            models.UniqueConstraint(
                fields=["client_id"], condition=Q(client_id__isnull=False), name="annotation_client_id_unique"
            ),
        ]
        indexes = [
            models.Index(fields=["utterance", "schema_version"], name="annotation_utterance_schema"),
            models.Index(fields=["project", "annotator"], name="annotation_project_annotator"),
        ]

    def __str__(self) -> str:
        return f"annotation {self.pk} of utterance {self.utterance_id}"


class Prediction(models.Model):
    """A model's scores for one utterance; one per (utterance, model version)."""

    utterance = models.ForeignKey("corpora.Utterance", on_delete=models.CASCADE, related_name="predictions")
    model_version = models.CharField(max_length=200)
    scores = models.JSONField(help_text="Per-label scores, or dimension values")
    label = models.CharField(max_length=200, blank=True, default="")
    uncertainty = models.FloatField(null=True, blank=True)
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["utterance", "model_version"], name="prediction_unique_per_model_version")
        ]
        indexes = [models.Index(fields=["model_version", "uncertainty"], name="prediction_model_uncertainty")]

    def __str__(self) -> str:
        return f"{self.model_version} on utterance {self.utterance_id}"
