"""Admin for corpora, sized for a million utterances: no full counts, no joins per row, no
free-text scans (searches are exact or prefix matches on ids), filters only on small tables."""

from __future__ import annotations

from django.contrib import admin
from django.utils.text import Truncator

from corpora.models import Conversation, Corpus, Language, Speaker, Utterance


class LargeTableAdmin(admin.ModelAdmin):
    """Defaults for tables that grow with the data."""

    show_full_result_count = False
    list_per_page = 50
    list_max_show_all = 200
    # Newest first along the primary key index, never a sort over the whole table.
    ordering = ["-pk"]


@admin.register(Language)
class LanguageAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "script", "direction"]
    list_filter = ["direction"]
    search_fields = ["^code", "^name"]


@admin.register(Corpus)
class CorpusAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "license", "created_by", "created_at"]
    list_select_related = ["created_by"]
    search_fields = ["^name", "^slug"]
    autocomplete_fields = ["languages"]
    raw_id_fields = ["created_by"]
    readonly_fields = ["created_at"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Conversation)
class ConversationAdmin(LargeTableAdmin):
    list_display = ["id", "external_id", "corpus"]
    list_select_related = ["corpus"]
    list_filter = ["corpus"]
    # Exact ids: the (corpus, external_id) unique index answers them.
    search_fields = ["external_id__exact"]
    autocomplete_fields = ["corpus"]


@admin.register(Speaker)
class SpeakerAdmin(LargeTableAdmin):
    list_display = ["id", "external_id", "corpus"]
    list_select_related = ["corpus"]
    list_filter = ["corpus"]
    search_fields = ["external_id__exact"]
    autocomplete_fields = ["corpus"]


@admin.register(Utterance)
class UtteranceAdmin(LargeTableAdmin):
    list_display = ["id", "external_id", "corpus", "language", "text_preview", "has_audio", "transcript_source"]
    list_select_related = ["corpus", "language"]
    list_filter = ["language", "corpus", "transcript_source"]
    search_fields = ["external_id__exact"]
    search_help_text = "Exact source id of the utterance"
    autocomplete_fields = ["corpus", "language"]
    raw_id_fields = ["conversation", "speaker"]
    readonly_fields = ["content_hash", "created_at"]

    @admin.display(description="text")
    def text_preview(self, utterance: Utterance) -> str:
        # A plain string: the admin escapes it, so markup in corpus text shows as text.
        return Truncator(utterance.text).chars(80)

    @admin.display(boolean=True, description="audio")
    def has_audio(self, utterance: Utterance) -> bool:
        return bool(utterance.audio)
