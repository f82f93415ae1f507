"""JSON API of the active-learning loop: read and change its settings (leads), read the learning curve (leads and
reviewers). Views are thin; routes in ``urlpatterns``."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.active_learning.selectors import active_learning_state, learning_curve
from annotation.active_learning.services import ActiveLearningSetupError, active_learning_configure
from annotation.models import Project, Role
from annotation.permissions import project_can_manage
from annotation.predictions.api import _project
from models_zoo.active_learning import STRATEGIES

_TAG = "active learning"
_FORBIDDEN = OpenApiResponse(description="Not a lead (changes) or neither lead nor reviewer (reads)")
_NOT_FOUND = OpenApiResponse(description="No such project, or not a member")


class SettingsSerializer(serializers.Serializer):
    enabled = serializers.BooleanField(required=False)
    question_key = serializers.CharField(required=False, max_length=63)
    retrain_every = serializers.IntegerField(required=False, help_text="New human labels between retrains (K)")
    strategy = serializers.ChoiceField(choices=STRATEGIES, required=False)
    batch_size = serializers.IntegerField(required=False)
    exploration = serializers.FloatField(required=False, help_text="Share of each batch drawn at random, 0–0.5")
    flag_label_errors = serializers.BooleanField(required=False)


class StateSerializer(SettingsSerializer):
    human_labels = serializers.IntegerField()
    labels_since_retrain = serializers.IntegerField()
    retrain_running = serializers.BooleanField()
    job = serializers.JSONField(allow_null=True)


class CurveSerializer(serializers.Serializer):
    points = serializers.JSONField(help_text="Per retrain: human_labels, macro_f1, per_label_f1, split, n_items, "
                                             "strategy, model_version, suspected_errors, created_at")
    simulation = serializers.JSONField(allow_null=True, help_text="Oracle simulation curves (random and strategies)")


def _reader_project(request: Request, project_id: int) -> Project:
    project, role = _project(request, project_id)
    if role not in (Role.LEAD, Role.REVIEWER) and not request.user.is_staff:
        raise PermissionDenied("Only the project's leads and reviewers see its active learning.")
    return project


class ActiveLearningView(APIView):
    @extend_schema(tags=[_TAG], operation_id="active_learning_get", summary="Active-learning settings and state",
                   responses={200: StateSerializer, 403: _FORBIDDEN, 404: _NOT_FOUND})
    def get(self, request: Request, project_id: int) -> Response:
        return Response(StateSerializer(active_learning_state(project=_reader_project(request, project_id))).data)

    @extend_schema(tags=[_TAG], operation_id="active_learning_set", request=SettingsSerializer,
                   summary="Switch active learning on or off and set K, strategy, batch and exploration (leads)",
                   responses={200: StateSerializer, 400: OpenApiResponse(description="A field and why"),
                              403: _FORBIDDEN, 404: _NOT_FOUND})
    def put(self, request: Request, project_id: int) -> Response:
        project = _reader_project(request, project_id)
        if not project_can_manage(request.user, project):
            raise PermissionDenied("Only the project's leads can change active learning.")
        data = SettingsSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            active_learning_configure(project=project, user=request.user, data=dict(data.validated_data))
        except ActiveLearningSetupError as exc:
            raise ValidationError({key: [reason] for key, reason in exc.errors.items()}) from None
        return Response(StateSerializer(active_learning_state(project=project)).data)


class LearningCurveView(APIView):
    @extend_schema(tags=[_TAG], operation_id="active_learning_curve",
                   summary="Held-out macro-F1 and per-label F1 after each retrain, by number of human labels",
                   responses={200: CurveSerializer, 403: _FORBIDDEN, 404: _NOT_FOUND})
    def get(self, request: Request, project_id: int) -> Response:
        return Response(CurveSerializer(learning_curve(project=_reader_project(request, project_id))).data)


urlpatterns = [
    path("projects/<int:project_id>/active-learning/", ActiveLearningView.as_view(), name="project-active-learning"),
    path("projects/<int:project_id>/active-learning/curve/", LearningCurveView.as_view(),
         name="project-active-learning-curve"),
]
