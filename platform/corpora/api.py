"""JSON API for languages, corpora, their imports, conversations, speakers and utterances."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from annotation.permissions import CorpusPermission
from annotation.selectors import utterances_with_label
from config.drf import CheckedJSONDecoder
from corpora.api_common import IdFilter, LanguageCodeField, StrictBooleanFilter, field_errors, signed_in_user
from corpora.models import Conversation, Corpus, Language, Speaker, Utterance
from corpora.selectors import (
    conversations_visible_to,
    corpora_visible_to,
    languages_list,
    speakers_visible_to,
    utterances_visible_to,
)
from corpora.services import CorpusError, corpus_create
from jobs.api import JobSerializer

# Languages ---------------------------------------------------------------------------------------


class LanguageSerializer(serializers.ModelSerializer):
    class Meta:
        model = Language
        fields = ["code", "name", "script", "direction"]
        read_only_fields = fields


class LanguageViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = LanguageSerializer
    lookup_field = "code"
    lookup_value_regex = r"[A-Za-z0-9-]+"
    filterset_fields = ["script", "direction"]

    def get_queryset(self) -> QuerySet[Language]:
        return languages_list()


# Corpora -----------------------------------------------------------------------------------------


class CorpusSerializer(serializers.ModelSerializer):
    languages: serializers.SlugRelatedField[Language] = serializers.SlugRelatedField(
        slug_field="code", many=True, read_only=True
    )
    created_by = serializers.CharField(source="created_by.username", read_only=True, allow_null=True, default=None)

    class Meta:
        model = Corpus
        fields = ["id", "name", "slug", "description", "license", "source", "languages", "created_by", "created_at"]
        read_only_fields = fields


class CorpusCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    slug = serializers.SlugField(
        max_length=100, required=False, help_text="Made from the name when left out"
    )
    license = serializers.CharField(max_length=100)
    source = serializers.CharField(allow_blank=True, default="")  # type: ignore[assignment]  # DRF moves declared fields off the class
    description = serializers.CharField(allow_blank=True, default="")


class CorpusUpdateSerializer(serializers.ModelSerializer):
    """What may change after creation; the slug stays, since exports and imports name it."""

    languages = LanguageCodeField(many=True, required=False)

    class Meta:
        model = Corpus
        fields = ["name", "description", "license", "source", "languages"]

    def validate_name(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("a corpus needs a name")
        return value.strip()

    def validate_license(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("say under which licence the data may be used (e.g. CC-BY-4.0)")
        return value.strip()


_IMPORT_OPTIONS_HELP = (
    'Import options as a JSON object, e.g. {"preset": "meld"} or {"format": "csv", "mapping": {...}}. '
    "Keys: preset (meld, mahaemotions, brighter, brighter_raters, emobank, emobank_ratings), mapping, schema "
    "(slug of the label schema the label columns answer), language (fixed BCP-47 tag), format (csv, tsv, "
    "jsonl, parquet), encoding (utf-8, utf-16), mode (all_or_nothing, skip_invalid), split (every file's "
    "split), intensity (BRIGHTER 0-3), perspective (EmoBank reader/writer), paths (one relative path per "
    'uploaded file, in upload order, e.g. ["train/mar.csv", "test/mar.csv"]: the folder may name the split and '
    "tells same-named files apart). Mapping keys: text, language, speaker, conversation, turn_index, "
    "external_id, audio, start, end (a column or a template such as 'dia{Dialogue_ID}'), split (the column of "
    "each row's split), labels ({question: column} or {question: {label: 0/1 or 0-3 column}}), raters "
    '({"question": ..., "columns": [...] or "Annotator-*", "label_column": ..., "prefix": ...}: one column per '
    "rater, named by its header; with label_column each row is one (item, label) pair), metadata, "
    "extra_columns (error, ignore, metadata), target (new, existing), origin (human, model, llm), "
    "model_version, rater, rater_column, rater_numbering, perspective. A blank label cell is a missing answer "
    "(counted in blank_cells), an all-zero multi-label row the answer 'none of these'. See the README."
)


class ImportOptionsField(serializers.JSONField):
    """The import options as a JSON object, checked like every JSON body (config.drf), for uploads and previews."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(binary=True, default=dict, decoder=CheckedJSONDecoder, help_text=_IMPORT_OPTIONS_HELP, **kwargs)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        value = super().to_internal_value(data)
        if not isinstance(value, dict):
            raise serializers.ValidationError("must be a JSON object")
        return value


class ImportUploadSerializer(serializers.Serializer):
    files = serializers.ListField(
        child=serializers.FileField(allow_empty_file=False), allow_empty=False,
        help_text="One or more data files (CSV, TSV, JSONL, Parquet)",
    )
    options = ImportOptionsField()
    audio_archive = serializers.FileField(
        required=False, allow_null=True, allow_empty_file=False, help_text="Optional ZIP of audio files"
    )


class ImportPreviewSerializer(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=False, help_text="One data file (CSV, TSV, JSONL, Parquet)")
    options = ImportOptionsField()
    audio_archive = serializers.FileField(
        required=False, allow_null=True, allow_empty_file=False, help_text="Optional ZIP of audio files"
    )
    header_only = serializers.BooleanField(
        required=False, default=False, help_text="Only read the column names (before a mapping exists)"
    )


class PreviewRowSerializer(serializers.Serializer):
    row = serializers.IntegerField(help_text="1-based data row (the header not counted)")
    values = serializers.DictField(help_text="Cells by column name, as in the file")
    read = serializers.DictField(allow_null=True, help_text="How the import reads the row: utterance or labels fields")
    errors = serializers.ListField(child=serializers.DictField(), help_text="file, row, column, reason")  # type: ignore[assignment]


class ImportPreviewOutSerializer(serializers.Serializer):
    file = serializers.CharField()
    format = serializers.CharField(allow_blank=True)
    header = serializers.ListField(child=serializers.CharField(allow_blank=True))
    role = serializers.CharField(allow_blank=True, help_text="utterances, labels (of existing utterances) or metadata_table")
    rows = PreviewRowSerializer(many=True)
    file_error = serializers.DictField(allow_null=True, help_text="Set when the import would refuse the whole file")
    options = serializers.DictField(help_text="The options as the import will use them (normalised)")
    questions = serializers.ListField(child=serializers.CharField(), required=False)


@extend_schema_view(
    create=extend_schema(request=CorpusCreateSerializer, responses={201: CorpusSerializer}),
    update=extend_schema(request=CorpusUpdateSerializer, responses={200: CorpusSerializer}),
    partial_update=extend_schema(request=CorpusUpdateSerializer, responses={200: CorpusSerializer}),
)
class CorpusViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    permission_classes = [CorpusPermission]
    filterset_fields = ["slug"]

    def get_queryset(self) -> QuerySet[Corpus]:
        return corpora_visible_to(self.request.user).select_related("created_by").prefetch_related("languages")

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        if self.action == "create":
            return CorpusCreateSerializer
        if self.action in ("update", "partial_update"):
            return CorpusUpdateSerializer
        if self.action == "imports":
            return ImportUploadSerializer
        if self.action == "imports_preview":
            return ImportPreviewSerializer
        return CorpusSerializer

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = CorpusCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            corpus = corpus_create(created_by=signed_in_user(request), **serializer.validated_data)
        except CorpusError as exc:
            raise ValidationError(field_errors(exc.errors)) from None
        return Response(CorpusSerializer(corpus).data, status=status.HTTP_201_CREATED)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        corpus = self.get_object()
        serializer = CorpusUpdateSerializer(corpus, data=request.data, partial=kwargs.get("partial", False))
        serializer.is_valid(raise_exception=True)
        serializer.save()
        return Response(CorpusSerializer(self.get_queryset().get(pk=corpus.pk)).data)

    @extend_schema(
        request={"multipart/form-data": ImportUploadSerializer},
        responses={202: JobSerializer, 400: OpenApiResponse(description="Field errors, keyed by field")},
        summary="Upload files to import into this corpus",
        description="Starts a background import job and answers at once with it; poll /api/jobs/{id}/.",
    )
    @action(detail=True, methods=["post"], parser_classes=[MultiPartParser, FormParser])
    def imports(self, request: Request, pk: str | None = None) -> Response:
        corpus = self.get_object()  # 404 if hidden; 403 unless the user may edit it
        # Imported here so the import machinery (pandas, pyarrow) loads only when someone imports.
        from corpora.importing.services import ImportOptionsError, import_job_create

        serializer = ImportUploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            job = import_job_create(
                corpus=corpus, files=list(data["files"]), options=data["options"], created_by=signed_in_user(request),
                audio_archive=data.get("audio_archive"),
            )
        except ImportOptionsError as exc:
            raise ValidationError(field_errors(exc.errors)) from None
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        request={"multipart/form-data": ImportPreviewSerializer},
        responses={200: ImportPreviewOutSerializer, 400: OpenApiResponse(description="Field errors, keyed by field")},
        summary="Preview how an import would read the first rows of a file (nothing is stored)",
        description="The header, the first rows raw and as read, and each row's errors (file, row, column, reason).",
    )
    @action(detail=True, methods=["post"], url_path="imports/preview", parser_classes=[MultiPartParser, FormParser])
    def imports_preview(self, request: Request, pk: str | None = None) -> Response:
        self.get_object()  # 404 if hidden; 403 unless the user may import into it
        from corpora.importing.preview import import_header, import_preview
        from corpora.importing.services import ImportOptionsError

        serializer = ImportPreviewSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if data["header_only"]:
            return Response(ImportPreviewOutSerializer(import_header(upload=data["file"], options=data["options"])).data)
        try:
            preview = import_preview(upload=data["file"], options=data["options"], audio_archive=data.get("audio_archive"))
        except ImportOptionsError as exc:
            raise ValidationError(field_errors(exc.errors)) from None
        return Response(ImportPreviewOutSerializer(preview).data)


# Conversations and speakers ----------------------------------------------------------------------


class ConversationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Conversation
        fields = ["id", "corpus", "external_id", "metadata"]
        read_only_fields = fields


class SpeakerSerializer(serializers.ModelSerializer):
    class Meta:
        model = Speaker
        fields = ["id", "corpus", "external_id", "attributes"]
        read_only_fields = fields


class ConversationFilter(django_filters.FilterSet):
    corpus = IdFilter(field_name="corpus_id")

    class Meta:
        model = Conversation
        fields = ["corpus", "external_id"]


class SpeakerFilter(django_filters.FilterSet):
    corpus = IdFilter(field_name="corpus_id")

    class Meta:
        model = Speaker
        fields = ["corpus", "external_id"]


class ConversationViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = ConversationSerializer
    filterset_class = ConversationFilter

    def get_queryset(self) -> QuerySet[Conversation]:
        return conversations_visible_to(self.request.user).order_by("id")


class SpeakerViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = SpeakerSerializer
    filterset_class = SpeakerFilter

    def get_queryset(self) -> QuerySet[Speaker]:
        return speakers_visible_to(self.request.user).order_by("id")


# Utterances --------------------------------------------------------------------------------------


class UtteranceLanguageSerializer(serializers.ModelSerializer):
    class Meta:
        model = Language
        fields = ["code", "script", "direction"]
        read_only_fields = fields


class UtteranceSerializer(serializers.ModelSerializer):
    language = UtteranceLanguageSerializer(read_only=True)
    conversation_external_id = serializers.CharField(source="conversation.external_id", read_only=True, allow_null=True, default=None)
    speaker_external_id = serializers.CharField(source="speaker.external_id", read_only=True, allow_null=True, default=None)
    audio_url = serializers.SerializerMethodField()

    class Meta:
        model = Utterance
        fields = [
            "id", "corpus", "external_id", "conversation", "conversation_external_id", "turn_index", "speaker",
            "speaker_external_id", "language", "text", "audio_url", "audio_duration_s", "audio_sample_rate",
            "audio_start_s", "audio_end_s", "transcript_source", "transcript_model", "transcript_confidence",
            "metadata", "content_hash", "created_at",
        ]
        read_only_fields = fields

    # A path on this site (local storage) or a signed URL (S3); null without audio.
    @extend_schema_field({"type": "string", "format": "uri-reference", "nullable": True})
    def get_audio_url(self, utterance: Utterance) -> str | None:
        # The storage makes the URL: a media path locally, a signed URL on S3; no query, no fetch.
        return utterance.audio.url if utterance.audio else None


class UtteranceFilter(django_filters.FilterSet):
    corpus = IdFilter(field_name="corpus_id")
    language = django_filters.CharFilter(field_name="language__code", help_text="BCP-47 code, e.g. mr")
    speaker = IdFilter(field_name="speaker_id")
    conversation = IdFilter(field_name="conversation_id")
    has_audio = StrictBooleanFilter(method="filter_has_audio")
    label = django_filters.CharFilter(
        method="filter_label",
        help_text="Only utterances with an annotation you can see whose single-choice or multi-label answer includes this label",
    )
    external_id = django_filters.CharFilter(field_name="external_id", help_text="Exact source id")
    search = django_filters.CharFilter(
        field_name="external_id", lookup_expr="startswith", help_text="Source ids starting with this text"
    )

    class Meta:
        model = Utterance
        fields: list[str] = []

    def filter_has_audio(self, queryset: QuerySet[Utterance], name: str, value: bool | None) -> QuerySet[Utterance]:
        if value is None:
            return queryset
        return queryset.exclude(audio="") if value else queryset.filter(audio="")

    def filter_label(self, queryset: QuerySet[Utterance], name: str, value: str) -> QuerySet[Utterance]:
        if not value:
            return queryset
        return utterances_with_label(utterances=queryset, label=value, user=self.request.user)


class UtteranceViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = UtteranceSerializer
    filterset_class = UtteranceFilter

    def get_queryset(self) -> QuerySet[Utterance]:
        return utterances_visible_to(self.request.user).select_related("language", "conversation", "speaker")
