"""JSON API for label schemas and their versions, projects, memberships and annotations."""

from __future__ import annotations

from typing import Any

import django_filters
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from annotation.models import Annotation, Invitation, LabelSchema, LabelSchemaVersion, Membership, Project, Role
from annotation.permissions import LabelSchemaPermission, ProjectPermission, corpus_can_edit, project_can_manage
from annotation.schema import SchemaError
from annotation.selectors import (
    annotations_visible_to,
    invitations_for,
    invitations_of_project,
    label_schemas_list,
    memberships_of_project,
    memberships_visible_to,
    projects_visible_to,
    projects_with_role,
)
from annotation.services import (
    invitation_accept,
    invitation_delete,
    label_schema_create,
    label_schema_version_create,
    membership_invite,
    membership_remove,
    project_create,
)
from config.drf import paginated
from corpora.api_common import IdFilter, LanguageCodeField, StrictBooleanFilter, field_errors, signed_in_user
from corpora.models import Corpus, Language
from corpora.selectors import corpora_visible_to

# Label schemas -----------------------------------------------------------------------------------


class LabelSchemaVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = LabelSchemaVersion
        fields = ["id", "schema", "version", "questions", "perspectives", "created_at"]
        read_only_fields = fields


class LabelSchemaSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(
        source="owner_name", read_only=True, allow_null=True, default=None,
        help_text="Your user name on schemas you created; null on others' (user names are not listed to everyone)",
    )
    versions = LabelSchemaVersionSerializer(many=True, read_only=True)

    class Meta:
        model = LabelSchema
        fields = ["id", "name", "slug", "description", "created_by", "created_at", "versions"]
        read_only_fields = fields


class LabelSchemaCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    slug = serializers.SlugField(max_length=100)
    description = serializers.CharField(allow_blank=True, default="")
    questions = serializers.JSONField(help_text="The questions of version 1 (see annotation.schema)")
    perspectives = serializers.JSONField(required=False, help_text='e.g. ["writer", "reader"]')

    def validate_slug(self, value: str) -> str:
        if LabelSchema.objects.filter(slug=value).exists():
            raise serializers.ValidationError(f"a label schema with slug {value!r} already exists")
        return value


class LabelSchemaVersionCreateSerializer(serializers.Serializer):
    questions = serializers.JSONField()
    perspectives = serializers.JSONField(required=False)


@extend_schema_view(create=extend_schema(request=LabelSchemaCreateSerializer, responses={201: LabelSchemaSerializer}))
class LabelSchemaViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    permission_classes = [LabelSchemaPermission]
    filterset_fields = ["slug"]

    def get_queryset(self) -> QuerySet[LabelSchema]:
        return label_schemas_list(self.request.user)

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        if self.action == "create":
            return LabelSchemaCreateSerializer
        if self.action == "versions":
            return LabelSchemaVersionCreateSerializer
        return LabelSchemaSerializer

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = LabelSchemaCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            version = label_schema_create(created_by=signed_in_user(request), **serializer.validated_data)
        except SchemaError as exc:
            raise ValidationError(field_errors(exc.errors)) from None
        except IntegrityError:  # two requests raced for the same slug
            raise ValidationError({"slug": ["a label schema with this slug already exists"]}) from None
        return Response(LabelSchemaSerializer(self.get_queryset().get(pk=version.schema_id)).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=LabelSchemaVersionCreateSerializer,
        responses={201: LabelSchemaVersionSerializer, 400: OpenApiResponse(description="Errors keyed by field")},
        summary="Add a new version of this schema",
    )
    @action(detail=True, methods=["post"])
    def versions(self, request: Request, pk: str | None = None) -> Response:
        schema = self.get_object()
        serializer = LabelSchemaVersionCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            version = label_schema_version_create(schema=schema, **serializer.validated_data)
        except SchemaError as exc:
            raise ValidationError(field_errors(exc.errors)) from None
        return Response(LabelSchemaVersionSerializer(version).data, status=status.HTTP_201_CREATED)


# Projects and memberships ------------------------------------------------------------------------


class ProjectSerializer(serializers.ModelSerializer):
    languages: serializers.SlugRelatedField[Language] = serializers.SlugRelatedField(
        slug_field="code", many=True, read_only=True
    )
    created_by = serializers.CharField(source="created_by.username", read_only=True, allow_null=True, default=None)
    my_role = serializers.CharField(read_only=True, allow_null=True, help_text="Your role here; null if not a member")

    class Meta:
        model = Project
        fields = [
            "id", "name", "corpus", "schema_version", "languages", "overlap", "guidelines", "ordering_strategy",
            "suggestion_policy", "gold_rate", "reservation_seconds", "prediction_model_version", "created_by",
            "created_at", "my_role",
        ]
        read_only_fields = fields


class ProjectWriteSerializer(serializers.ModelSerializer):
    """Settings a lead sets. Bounds mirror the database constraints so bad values are a 400."""

    languages = LanguageCodeField(many=True, required=False)
    overlap = serializers.IntegerField(min_value=1, max_value=50, required=False)
    gold_rate = serializers.FloatField(min_value=0, max_value=1, required=False)
    reservation_seconds = serializers.IntegerField(min_value=30, max_value=2_147_483_647, required=False)

    class Meta:
        model = Project
        fields = [
            "name", "corpus", "schema_version", "languages", "overlap", "guidelines", "ordering_strategy",
            "suggestion_policy", "gold_rate", "reservation_seconds", "prediction_model_version",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        corpus_field = self.fields["corpus"]
        if self.instance is not None:
            # A project's corpus and schema version are fixed: its annotations answered that version.
            corpus_field.read_only = True
            self.fields["schema_version"].read_only = True
        elif request is not None:
            # Only corpora the user can see are valid choices: others "do not exist".
            corpus_field.queryset = corpora_visible_to(request.user)  # type: ignore[attr-defined]

    def validate_corpus(self, corpus: Corpus) -> Corpus:
        request = self.context["request"]
        if not corpus_can_edit(request.user, corpus):
            raise serializers.ValidationError(
                "only the corpus's creator, leads of its projects or staff may start projects on it"
            )
        return corpus


class MembershipSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)
    languages: serializers.SlugRelatedField[Language] = serializers.SlugRelatedField(
        slug_field="code", many=True, read_only=True
    )

    class Meta:
        model = Membership
        fields = ["id", "user", "username", "role", "languages", "created_at"]
        read_only_fields = fields


class MembershipInviteSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150, help_text="A member's role changes at once; anyone else is invited")
    role = serializers.ChoiceField(choices=Role.choices, default=Role.ANNOTATOR)
    languages = LanguageCodeField(many=True, required=False, help_text="BCP-47 codes of the languages this member reads")


class InvitationSerializer(serializers.ModelSerializer):
    """A pending invitation, as its project's leads and its invitee see it."""

    project_name = serializers.CharField(source="project.name", read_only=True)
    invited_by = serializers.CharField(source="invited_by.username", read_only=True, allow_null=True, default=None)
    languages: serializers.SlugRelatedField[Language] = serializers.SlugRelatedField(
        slug_field="code", many=True, read_only=True
    )

    class Meta:
        model = Invitation
        fields = ["id", "project", "project_name", "username", "role", "languages", "invited_by", "created_at"]
        read_only_fields = fields


class ProjectFilter(django_filters.FilterSet):
    corpus = IdFilter(field_name="corpus_id")

    class Meta:
        model = Project
        fields = ["corpus"]


@extend_schema_view(
    create=extend_schema(request=ProjectWriteSerializer, responses={201: ProjectSerializer}),
    update=extend_schema(request=ProjectWriteSerializer, responses={200: ProjectSerializer}),
    partial_update=extend_schema(request=ProjectWriteSerializer, responses={200: ProjectSerializer}),
)
class ProjectViewSet(viewsets.ModelViewSet):
    permission_classes = [ProjectPermission]
    filterset_class = ProjectFilter

    def get_queryset(self) -> QuerySet[Project]:
        projects = projects_visible_to(self.request.user).select_related("created_by").prefetch_related("languages")
        return projects_with_role(projects=projects, user=self.request.user)

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        if self.action in ("create", "update", "partial_update"):
            return ProjectWriteSerializer
        if self.action == "memberships":
            return MembershipInviteSerializer if self.request.method == "POST" else MembershipSerializer
        return ProjectSerializer

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = ProjectWriteSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        project = project_create(created_by=signed_in_user(request), **serializer.validated_data)
        return Response(ProjectSerializer(self.get_queryset().get(pk=project.pk)).data, status=status.HTTP_201_CREATED)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        project = self.get_object()
        serializer = ProjectWriteSerializer(
            project, data=request.data, partial=kwargs.get("partial", False), context=self.get_serializer_context()
        )
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            serializer.save()
        return Response(ProjectSerializer(self.get_queryset().get(pk=project.pk)).data)

    @extend_schema(
        methods=["GET"], responses={200: paginated(MembershipSerializer, "PaginatedMembershipList")},
        summary="Members of this project (leads see everyone; other members only themselves)"
    )
    @extend_schema(
        methods=["POST"], request=MembershipInviteSerializer,
        responses={200: MembershipSerializer, 202: InvitationSerializer, 400: OpenApiResponse(description="Names the field")},
        summary="Invite someone (202, they join when they accept), or change a member's role and languages (200); leads",
    )
    @action(detail=True, methods=["get", "post"], filterset_class=None)
    def memberships(self, request: Request, pk: str | None = None) -> Response:
        project = self.get_object()  # 404 for non-members; POST needs a lead (ProjectPermission)
        if request.method == "POST":
            serializer = MembershipInviteSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            data = serializer.validated_data
            try:
                outcome = membership_invite(
                    project=project, username=data["username"], role=data["role"],
                    languages=data.get("languages", []), invited_by=signed_in_user(request),
                )
            except SchemaError as exc:
                raise ValidationError(field_errors(exc.errors)) from None
            except LookupError:  # deleted by another request meanwhile
                raise NotFound("No such project.") from None
            if isinstance(outcome, Invitation):
                body = InvitationSerializer(invitations_of_project(project=project).get(pk=outcome.pk)).data
                return Response(body, status=status.HTTP_202_ACCEPTED)
            return Response(MembershipSerializer(memberships_of_project(project=project).get(pk=outcome.pk)).data)
        page = self.paginate_queryset(memberships_visible_to(project=project, user=request.user))
        return self.get_paginated_response(MembershipSerializer(page, many=True).data)

    @extend_schema(
        methods=["GET"], responses={200: paginated(InvitationSerializer, "PaginatedProjectInvitationList"), 403: OpenApiResponse()},
        summary="Invitations waiting for an answer (leads)",
    )
    @action(detail=True, methods=["get"], filterset_class=None)
    def invitations(self, request: Request, pk: str | None = None) -> Response:
        project = self.get_object()
        if not project_can_manage(request.user, project):
            raise PermissionDenied("Only the project's leads see its invitations.")
        page = self.paginate_queryset(invitations_of_project(project=project))
        return self.get_paginated_response(InvitationSerializer(page, many=True).data)

    @extend_schema(
        request=None, responses={204: OpenApiResponse(description="Withdrawn"), 404: OpenApiResponse()},
        summary="Withdraw an invitation (leads)",
    )
    @action(detail=True, methods=["delete"], url_path=r"invitations/(?P<invitation_id>\d+)", filterset_class=None)
    def invitation_withdraw(self, request: Request, pk: str | None = None, invitation_id: str | None = None) -> Response:
        project = self.get_object()  # 404 for non-members; DELETE needs a lead (ProjectPermission)
        invitation = invitations_of_project(project=project).filter(pk=int(invitation_id or 0)).first()
        if invitation is None:
            raise NotFound("No such invitation in this project.")
        invitation_delete(invitation=invitation)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=None,
        responses={204: OpenApiResponse(description="Removed; their held items went back to the queue"),
                   400: OpenApiResponse(description="The only lead cannot leave"), 404: OpenApiResponse()},
        summary="Remove a member (leads only); their annotations are kept",
    )
    @action(detail=True, methods=["delete"], url_path=r"memberships/(?P<user_id>\d+)", filterset_class=None)
    def membership_remove(self, request: Request, pk: str | None = None, user_id: str | None = None) -> Response:
        project = self.get_object()  # 404 for non-members; DELETE needs a lead (ProjectPermission)
        member = get_user_model().objects.filter(pk=int(user_id or 0)).first()
        if member is None:
            raise NotFound("No such member in this project.")
        try:
            membership_remove(project=project, user=member)
        except LookupError:
            raise NotFound("No such member in this project.") from None
        except SchemaError as exc:
            raise ValidationError(field_errors(exc.errors)) from None
        return Response(status=status.HTTP_204_NO_CONTENT)


# Invitations (the invitee's side) ---------------------------------------------------------------


class InvitationViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """The signed-in user's pending invitations: accept one to join its project, or decline it."""

    serializer_class = InvitationSerializer
    filterset_class = None

    def get_queryset(self) -> QuerySet[Invitation]:
        return invitations_for(self.request.user)

    @extend_schema(request=None, responses={201: MembershipSerializer, 404: OpenApiResponse()},
                   summary="Accept: join the project with the role the invitation offers")
    @action(detail=True, methods=["post"])
    def accept(self, request: Request, pk: str | None = None) -> Response:
        invitation = self.get_object()
        try:
            membership = invitation_accept(invitation=invitation, user=signed_in_user(request))
        except LookupError:
            raise NotFound("This invitation is no longer open.") from None
        return Response(
            MembershipSerializer(memberships_of_project(project=membership.project).get(pk=membership.pk)).data,
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(request=None, responses={204: OpenApiResponse(description="Declined"), 404: OpenApiResponse()},
                   summary="Decline: the invitation is removed and nothing else changes")
    @action(detail=True, methods=["post"])
    def decline(self, request: Request, pk: str | None = None) -> Response:
        invitation_delete(invitation=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


# Annotations -------------------------------------------------------------------------------------


class AnnotationSerializer(serializers.ModelSerializer):
    annotator = serializers.CharField(
        source="annotator_name", read_only=True, allow_null=True, default=None,
        help_text="User name of the author; null for imported and machine labels, and where the project hides names",
    )

    class Meta:
        model = Annotation
        fields = [
            "id", "utterance", "project", "schema_version", "value", "perspective", "origin", "annotator",
            "external_rater", "model_version", "import_job", "lead_time_ms", "created_at", "updated_at",
        ]
        read_only_fields = fields


class AnnotationFilter(django_filters.FilterSet):
    project = IdFilter(field_name="project_id")
    utterance = IdFilter(field_name="utterance_id")
    schema_version = IdFilter(field_name="schema_version_id")
    imported = StrictBooleanFilter(
        field_name="project", lookup_expr="isnull", help_text="true: only labels imported with a corpus (no project)"
    )

    class Meta:
        model = Annotation
        fields = ["project", "utterance", "schema_version", "origin"]


class AnnotationViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = AnnotationSerializer
    filterset_class = AnnotationFilter

    def get_queryset(self) -> QuerySet[Annotation]:
        return annotations_visible_to(self.request.user)
