"""The shortcuts the annotators' hot path takes behave exactly like the library code they stand in for."""

from __future__ import annotations

import uuid

import pytest
from django.test import override_settings
from django.views.debug import get_default_exception_reporter_filter
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from annotation.api_annotate import SkipInSerializer, SubmitInSerializer
from config.drf import input_validated


def _serializer_result(serializer_class: type[serializers.Serializer], data: object) -> tuple[str, object]:
    serializer = serializer_class(data=data)
    if serializer.is_valid():
        return "valid", dict(serializer.validated_data)
    return "invalid", serializer.errors


def _helper_result(serializer_class: type[serializers.Serializer], data: object) -> tuple[str, object]:
    try:
        return "valid", input_validated(serializer_class, data)
    except ValidationError as exc:
        return "invalid", exc.detail


CLIENT_ID = str(uuid.uuid4())


@pytest.mark.parametrize(
    "body",
    [
        {"client_id": CLIENT_ID, "utterance": 7, "value": {"emotion": "joy"}},
        {"client_id": CLIENT_ID, "utterance": "7", "value": {"emotion": "joy"}, "lead_time_ms": 1200, "next": True},
        {"client_id": CLIENT_ID, "utterance": 7, "value": [], "lead_time_ms": None, "perspective": "reader"},
        {"client_id": CLIENT_ID, "utterance": 7, "value": {}, "next": "yes"},
        {"client_id": "not-a-uuid", "utterance": 0, "value": {"emotion": "joy"}},
        {"client_id": CLIENT_ID, "utterance": 7, "value": {"emotion": "joy"}, "lead_time_ms": -5, "perspective": "x" * 21},
        {"client_id": CLIENT_ID, "utterance": 7},
        {"utterance": 7, "value": {"emotion": "joy"}, "next": "maybe"},
        {},
        [],
        "<script>alert(1)</script>",
        None,
    ],
)
def test_submit_body_validates_exactly_like_the_serializer(body: object) -> None:
    assert _helper_result(SubmitInSerializer, body) == _serializer_result(SubmitInSerializer, body)


@pytest.mark.parametrize(
    "body", [{"utterance": 3, "reason": "unclear audio"}, {"utterance": 3, "reason": "", "next": True}, {"utterance": -1}]
)
def test_skip_body_validates_exactly_like_the_serializer(body: object) -> None:
    assert _helper_result(SkipInSerializer, body) == _serializer_result(SkipInSerializer, body)


def test_serializer_with_its_own_validation_goes_through_drf() -> None:
    class Ranged(serializers.Serializer):
        low = serializers.IntegerField()
        high = serializers.IntegerField()

        def validate(self, attrs: dict[str, int]) -> dict[str, int]:
            if attrs["low"] > attrs["high"]:
                raise serializers.ValidationError("low must not exceed high")
            return attrs

    assert input_validated(Ranged, {"low": 1, "high": 2}) == {"low": 1, "high": 2}
    with pytest.raises(ValidationError) as refused:
        input_validated(Ranged, {"low": 3, "high": 2})
    assert refused.value.detail == {"non_field_errors": ["low must not exceed high"]}


@pytest.mark.django_db
def test_csp_header_is_built_once_and_follows_settings_changes(client) -> None:  # type: ignore[no-untyped-def]
    first, second = client.get("/"), client.get("/")
    assert first["Content-Security-Policy"] == second["Content-Security-Policy"]
    assert "object-src 'none'" in first["Content-Security-Policy"]
    assert "Content-Security-Policy-Report-Only" not in first

    changed = {"DIRECTIVES": {"default-src": ["'none'"]}}
    with override_settings(CONTENT_SECURITY_POLICY=changed, CONTENT_SECURITY_POLICY_REPORT_ONLY=changed):
        response = client.get("/")
    assert response["Content-Security-Policy"] == "default-src 'none'"
    assert response["Content-Security-Policy-Report-Only"] == "default-src 'none'"

    # Each new settings object gets its own header, even where Python reuses a freed object's address.
    for number in range(20):
        policy = {"DIRECTIVES": {"default-src": ["'self'"], "img-src": [f"https://img{number}.example"]}}
        with override_settings(CONTENT_SECURITY_POLICY=policy):
            assert f"img-src https://img{number}.example" in client.get("/")["Content-Security-Policy"]

    excluded = {"DIRECTIVES": {"default-src": ["'self'"]}, "EXCLUDE_URL_PREFIXES": ["/"]}
    with override_settings(CONTENT_SECURITY_POLICY=excluded):
        assert "Content-Security-Policy" not in client.get("/")


def test_error_reports_hide_connection_urls_the_server_put_in_the_environ(rf) -> None:  # type: ignore[no-untyped-def]
    request = rf.get("/", DATABASE_URL="postgres://sentio:hunter2@db/sentio", CELERY_BROKER_URL="redis://:pw@redis/0")
    meta = get_default_exception_reporter_filter().get_safe_request_meta(request)
    assert "hunter2" not in str(meta) and ":pw@" not in str(meta)
    assert meta["PATH_INFO"] == "/"
