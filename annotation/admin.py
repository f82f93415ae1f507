"""Admin for schemas, projects, memberships, annotations and predictions.

Schema versions, annotations, predictions and everything the distribution and agreement engines
maintain (items and their counters, reservations, skips, flags, gold answers, reports, aggregated
labels, adjudications, registered models and the items a head trained on) are read-only here: services validate them and keep counters and provenance
consistent, which a hand edit would break.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from annotation.models import (
    ActiveLearningRound,
    ActiveLearningSettings,
    Adjudication,
    AggregatedLabel,
    AgreementReport,
    Annotation,
    Flag,
    GoldItem,
    Invitation,
    LabelSchema,
    LabelSchemaVersion,
    LLMCombination,
    LLMEndpoint,
    LLMLabel,
    LLMPromptTemplate,
    LLMRun,
    Membership,
    ModelTrainingItem,
    Prediction,
    Project,
    ProjectItem,
    ProjectModel,
    ProjectQualityPolicy,
    Reservation,
    Skip,
    UtteranceEmbedding,
)
from corpora.admin import LargeTableAdmin


class ReadOnlyMixin:
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class LabelSchemaVersionInline(ReadOnlyMixin, admin.TabularInline):
    model = LabelSchemaVersion
    fields = ["version", "questions", "perspectives", "created_at"]
    readonly_fields = ["version", "questions", "perspectives", "created_at"]
    extra = 0
    show_change_link = True


@admin.register(LabelSchema)
class LabelSchemaAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "created_by", "created_at"]
    list_select_related = ["created_by"]
    search_fields = ["^name", "^slug"]
    raw_id_fields = ["created_by"]
    readonly_fields = ["created_at"]
    inlines = [LabelSchemaVersionInline]


@admin.register(LabelSchemaVersion)
class LabelSchemaVersionAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["__str__", "schema", "version", "created_at"]
    list_select_related = ["schema"]
    search_fields = ["^schema__slug"]


class MembershipInline(admin.TabularInline):
    model = Membership
    fields = ["user", "role", "languages"]
    raw_id_fields = ["user"]
    autocomplete_fields = ["languages"]
    extra = 0


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "corpus", "schema_version", "overlap", "ordering_strategy", "created_at"]
    list_select_related = ["corpus", "schema_version__schema"]
    list_filter = ["corpus", "ordering_strategy", "suggestion_policy"]
    search_fields = ["^name"]
    autocomplete_fields = ["corpus", "languages"]
    raw_id_fields = ["schema_version", "created_by"]
    readonly_fields = ["created_at"]
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(LargeTableAdmin):
    list_display = ["user", "project", "role", "created_at"]
    list_select_related = ["user", "project"]
    list_filter = ["role"]
    search_fields = ["^user__username", "^project__name"]
    raw_id_fields = ["user", "project"]
    autocomplete_fields = ["languages"]


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    """Pending invitations; staff may withdraw one. They join a user only when accepted, never from here."""

    list_display = ["username", "project", "role", "invited_by", "created_at"]
    list_select_related = ["project", "invited_by"]
    search_fields = ["^username", "^project__name"]
    raw_id_fields = ["project", "invited_by"]
    autocomplete_fields = ["languages"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Annotation)
class AnnotationAdmin(ReadOnlyMixin, LargeTableAdmin):
    list_display = ["id", "utterance_id", "project", "origin", "annotator", "external_rater", "model_version", "created_at"]
    list_select_related = ["project", "annotator"]
    list_filter = ["origin"]
    search_fields = ["model_version__exact", "external_rater__exact"]
    search_help_text = "Exact model version or external rater id"
    raw_id_fields = ["utterance", "project", "schema_version", "annotator", "reviewed_by", "import_job"]


@admin.register(Prediction)
class PredictionAdmin(ReadOnlyMixin, LargeTableAdmin):
    list_display = ["id", "utterance_id", "model_version", "label", "uncertainty", "created_at"]
    search_fields = ["model_version__exact"]
    search_help_text = "Exact model version"
    raw_id_fields = ["utterance", "job"]


@admin.register(ProjectItem)
class ProjectItemAdmin(ReadOnlyMixin, LargeTableAdmin):
    list_display = ["id", "project", "utterance_id", "language", "is_gold", "target_count", "annotation_count", "reserved_count"]
    list_select_related = ["project", "language"]
    list_filter = ["is_gold", "language"]
    raw_id_fields = ["project", "utterance", "language"]


@admin.register(Reservation)
class ReservationAdmin(ReadOnlyMixin, LargeTableAdmin):
    list_display = ["id", "project", "utterance_id", "annotator", "status", "expires_at"]
    list_select_related = ["project", "annotator"]
    list_filter = ["status"]
    raw_id_fields = ["project", "item", "utterance", "annotator"]


@admin.register(Skip)
class SkipAdmin(ReadOnlyMixin, LargeTableAdmin):
    list_display = ["id", "project", "item_id", "annotator", "reason", "created_at"]
    list_select_related = ["project", "annotator"]
    raw_id_fields = ["project", "item", "annotator"]


@admin.register(Flag)
class FlagAdmin(ReadOnlyMixin, LargeTableAdmin):
    list_display = ["id", "project", "item_id", "created_by", "resolved", "created_at"]
    list_select_related = ["project", "created_by"]
    list_filter = ["resolved"]
    raw_id_fields = ["project", "item", "created_by", "resolved_by"]


@admin.register(GoldItem)
class GoldItemAdmin(ReadOnlyMixin, LargeTableAdmin):
    list_display = ["id", "project", "utterance_id", "numeric_tolerance", "created_at"]
    list_select_related = ["project"]
    raw_id_fields = ["project", "item", "utterance", "created_by"]


@admin.register(ProjectQualityPolicy)
class ProjectQualityPolicyAdmin(admin.ModelAdmin):
    list_display = ["project", "aggregation_method", "tie_policy", "review_confidence_below", "updated_at"]
    list_select_related = ["project"]
    list_filter = ["aggregation_method", "tie_policy"]
    raw_id_fields = ["project"]


@admin.register(AgreementReport)
class AgreementReportAdmin(ReadOnlyMixin, LargeTableAdmin):
    list_display = ["id", "project", "corpus", "schema_version", "annotation_count", "computed_at", "duration_ms"]
    list_select_related = ["project", "corpus", "schema_version__schema"]
    raw_id_fields = ["project", "corpus", "schema_version", "job"]


@admin.register(AggregatedLabel)
class AggregatedLabelAdmin(ReadOnlyMixin, LargeTableAdmin):
    list_display = ["id", "project", "utterance_id", "question_key", "perspective", "value", "confidence", "method"]
    list_select_related = ["project"]
    # No filter on method: it has no choices, so the admin would scan the table for its distinct values.
    search_fields = ["question_key__exact"]
    search_help_text = "Exact question key"
    raw_id_fields = ["project", "schema_version", "utterance"]


@admin.register(Adjudication)
class AdjudicationAdmin(ReadOnlyMixin, LargeTableAdmin):
    list_display = ["id", "project", "utterance_id", "perspective", "decided_by", "decided_at"]
    list_select_related = ["project", "decided_by"]
    raw_id_fields = ["project", "utterance", "schema_version", "decided_by", "resolved_annotations"]


@admin.register(ProjectModel)
class ProjectModelAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Registration checks the model loads offline; an admin edit would skip that check."""

    list_display = ["model_version", "project", "card_id", "task", "question_key", "created_at"]
    list_select_related = ["project"]
    search_fields = ["^model_version", "^card_id"]
    raw_id_fields = ["project", "created_by"]


@admin.register(ModelTrainingItem)
class ModelTrainingItemAdmin(ReadOnlyMixin, LargeTableAdmin):
    """Which utterances a trained head learned from (it never predicts on them); written only by training."""

    list_display = ["id", "model_id", "utterance_id"]
    search_fields = ["model__model_version__exact"]
    search_help_text = "Exact model version"
    raw_id_fields = ["model", "utterance"]


# --- LLM labelling and active learning: written by their services and jobs (annotation/llm, annotation/active_learning)


@admin.register(LLMEndpoint)
class LLMEndpointAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Registration checks the URL against the outbound guard; the encrypted key is never shown."""

    list_display = ["name", "project", "model", "base_url", "created_at"]
    list_select_related = ["project"]
    exclude = ["api_key_encrypted"]
    raw_id_fields = ["project", "created_by"]


@admin.register(LLMPromptTemplate)
class LLMPromptTemplateAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["name", "version", "kind", "project", "created_at"]
    list_select_related = ["project"]
    raw_id_fields = ["project", "created_by"]


@admin.register(LLMRun)
class LLMRunAdmin(ReadOnlyMixin, LargeTableAdmin):
    list_display = ["id", "project", "endpoint", "template", "job", "created_at"]
    list_select_related = ["project", "endpoint", "template", "job"]
    raw_id_fields = ["project", "endpoint", "template", "job", "created_by"]


@admin.register(LLMLabel)
class LLMLabelAdmin(ReadOnlyMixin, LargeTableAdmin):
    list_display = ["id", "utterance_id", "endpoint_id", "template_id", "model", "created_at"]
    raw_id_fields = ["utterance", "endpoint", "template", "run"]


@admin.register(LLMCombination)
class LLMCombinationAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["model_version", "project", "method", "created_at"]
    list_select_related = ["project"]
    raw_id_fields = ["project", "created_by"]


@admin.register(UtteranceEmbedding)
class UtteranceEmbeddingAdmin(ReadOnlyMixin, LargeTableAdmin):
    list_display = ["id", "utterance_id", "embedder_version", "created_at"]
    exclude = ["vector"]
    raw_id_fields = ["utterance"]


@admin.register(ActiveLearningSettings)
class ActiveLearningSettingsAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Changed through the project's active-learning API, which validates the question and strategy."""

    list_display = ["project", "enabled", "question_key", "strategy", "retrain_every"]
    list_select_related = ["project"]
    raw_id_fields = ["project", "job", "enabled_by"]


@admin.register(ActiveLearningRound)
class ActiveLearningRoundAdmin(ReadOnlyMixin, LargeTableAdmin):
    list_display = ["id", "project", "model", "human_labels", "strategy", "created_at"]
    list_select_related = ["project", "model"]
    raw_id_fields = ["project", "model", "job"]
