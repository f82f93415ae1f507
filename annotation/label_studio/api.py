"""Sentio as a Label Studio ML backend: the protocol's ``/health``, ``/setup``, ``/predict`` and ``/webhook``,
served per project at ``/api/label-studio/projects/<id>/ml/`` (the URL to give Label Studio).

Label Studio authenticates to an ML backend with HTTP Basic; Sentio takes a user name and that user's API token as
the password (``Authorization: Token <key>`` works too). Only the project's leads (and staff) may connect; others
get 404 (not a member) or 403. Views are thin: ``annotation.label_studio`` services and selectors do the work.
"""

from __future__ import annotations

from typing import Any

from django.urls import re_path
from django.utils.crypto import constant_time_compare
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.authentication import BasicAuthentication
from rest_framework.exceptions import AuthenticationFailed, NotFound, PermissionDenied, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.auth import ExpiringTokenAuthentication
from annotation.label_studio.selectors import MLBackendForbidden, MLBackendNotFound, ml_backend_project_get
from annotation.label_studio.services import MLBackendError, ml_backend_predict, ml_backend_setup, ml_backend_webhook
from annotation.models import Project

_TAG = "label-studio-ml-backend"


class TokenBasicAuthentication(BasicAuthentication):
    """HTTP Basic with a Sentio user name and that user's API token as the password: what Label Studio's ML-backend
    connection sends (its "basic auth" user and password). Account passwords are not accepted here."""

    def authenticate_credentials(self, userid: str, password: str, request: Any = None) -> tuple[Any, Any]:
        refused = AuthenticationFailed("Use a Sentio user name and that user's API token as the password.")
        try:  # the token rules (unknown, inactive user, expired) are the API's own
            user, token = ExpiringTokenAuthentication().authenticate_credentials(password)
        except AuthenticationFailed:
            raise refused from None
        if not constant_time_compare(user.get_username(), userid):
            raise refused
        return user, token


class TokenBasicAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = TokenBasicAuthentication
    name = "tokenBasicAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "basic",
                "description": "A Sentio user name and that user's API token as the password (Label Studio's ML "
                               "backend connection: basic auth)"}


class HealthOutSerializer(serializers.Serializer):
    status = serializers.CharField(help_text="UP")
    model_class = serializers.CharField()
    project = serializers.IntegerField()


class SetupInSerializer(serializers.Serializer):
    project = serializers.CharField(required=False, allow_blank=True, help_text="Label Studio's '<id>.<created>'")
    schema = serializers.CharField(help_text="The Label Studio project's labelling config (XML)")
    extra_params = serializers.JSONField(required=False, allow_null=True)


class SetupOutSerializer(serializers.Serializer):
    model_version = serializers.CharField()


class PredictInSerializer(serializers.Serializer):
    tasks = serializers.ListField(child=serializers.DictField(), allow_empty=True)
    label_config = serializers.CharField()
    project = serializers.CharField(required=False, allow_blank=True)
    model_version = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    params = serializers.JSONField(required=False, allow_null=True)


class PredictOutSerializer(serializers.Serializer):
    results = serializers.ListField(child=serializers.JSONField(), help_text=(
        "One list per task, in order: predictions {result, score, model_version} (empty: no answer)"))


class WebhookInSerializer(serializers.Serializer):
    action = serializers.CharField(help_text="ANNOTATION_CREATED, ANNOTATION_UPDATED, ANNOTATIONS_DELETED, "
                                             "START_TRAINING; others are acknowledged and ignored")
    annotation = serializers.JSONField(required=False)
    annotations = serializers.JSONField(required=False)
    task = serializers.JSONField(required=False)
    project = serializers.JSONField(required=False, help_text="Label Studio's project, with its label_config")


class WebhookOutSerializer(serializers.Serializer):
    status = serializers.CharField()
    result = serializers.JSONField()


class _BackendView(APIView):
    authentication_classes = [TokenBasicAuthentication, ExpiringTokenAuthentication]
    permission_classes = [IsAuthenticated]

    def project(self, request: Request, project_id: str) -> Project:
        try:
            return ml_backend_project_get(project_id=int(project_id), user=request.user)
        except MLBackendNotFound:
            raise NotFound() from None
        except MLBackendForbidden as exc:
            raise PermissionDenied(str(exc)) from None


def _bad(exc: MLBackendError) -> ValidationError:
    return ValidationError({field: [reason] for field, reason in exc.errors.items()})


class HealthView(_BackendView):
    @extend_schema(tags=[_TAG], responses={200: HealthOutSerializer, 404: OpenApiResponse(description="Not a member")})
    def get(self, request: Request, project_id: str) -> Response:
        project = self.project(request, project_id)
        return Response({"status": "UP", "model_class": "Sentio", "project": project.pk})


class SetupView(_BackendView):
    @extend_schema(tags=[_TAG], request=SetupInSerializer,
                   responses={200: SetupOutSerializer, 400: OpenApiResponse(description="Names the field and why")})
    def post(self, request: Request, project_id: str) -> Response:
        project = self.project(request, project_id)
        body = SetupInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            return Response(ml_backend_setup(project=project, label_config=body.validated_data["schema"]))
        except MLBackendError as exc:
            raise _bad(exc) from None


class PredictView(_BackendView):
    @extend_schema(tags=[_TAG], request=PredictInSerializer,
                   responses={200: PredictOutSerializer, 400: OpenApiResponse(description="Names the field and why")})
    def post(self, request: Request, project_id: str) -> Response:
        project = self.project(request, project_id)
        body = PredictInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            results = ml_backend_predict(project=project, tasks=body.validated_data["tasks"],
                                         label_config=body.validated_data["label_config"])
        except MLBackendError as exc:
            raise _bad(exc) from None
        return Response({"results": results})


class WebhookView(_BackendView):
    @extend_schema(tags=[_TAG], request=WebhookInSerializer,
                   responses={200: WebhookOutSerializer, 201: WebhookOutSerializer,
                              400: OpenApiResponse(description="Names the field and why")})
    def post(self, request: Request, project_id: str) -> Response:
        project = self.project(request, project_id)
        try:
            outcome = ml_backend_webhook(project=project, payload=request.data, user=request.user)
        except MLBackendError as exc:
            raise _bad(exc) from None
        code = status.HTTP_201_CREATED if outcome.status == "ok" else status.HTTP_200_OK
        return Response({"status": outcome.status, "result": outcome.detail}, status=code)


# Label Studio joins "health", "setup", "predict" and "webhook" onto the backend URL, with no trailing slash.
_BASE = r"^label-studio/projects/(?P<project_id>\d+)/ml/"
urlpatterns = [
    re_path(_BASE + r"(?:health/?)?$", HealthView.as_view(), name="label-studio-ml-health"),
    re_path(_BASE + r"setup/?$", SetupView.as_view(), name="label-studio-ml-setup"),
    re_path(_BASE + r"predict/?$", PredictView.as_view(), name="label-studio-ml-predict"),
    re_path(_BASE + r"webhook/?$", WebhookView.as_view(), name="label-studio-ml-webhook"),
]
