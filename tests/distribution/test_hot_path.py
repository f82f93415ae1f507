"""config.hot_path: plain next/submit requests answered before Django, byte for byte as Django answers them;
everything else handed to Django untouched."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.test import override_settings
from rest_framework.authtoken.models import Token
from rest_framework.throttling import AnonRateThrottle

from annotation import api_hot_path
from annotation.api_annotate import SubmitView
from annotation.models import Annotation
from config.hot_path import HotPathApplication, HotRequest
from tests.fixtures.wsgi_client import WsgiResponse, wsgi_call

pytestmark = pytest.mark.django_db


class DjangoSpy:
    """Django's WSGI application, counting the requests the short way handed over.

    A new handler per test: middleware reads its settings when built, as the short way's header middleware does.
    """

    def __init__(self) -> None:
        self.calls = 0
        self.django_application = WSGIHandler()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        self.calls += 1
        return self.django_application(environ, start_response)


@pytest.fixture
def spy() -> DjangoSpy:
    return DjangoSpy()


@pytest.fixture
def hot(spy: DjangoSpy) -> HotPathApplication:
    return HotPathApplication(spy, api_hot_path.HANDLERS)


def token(user: Any) -> str:
    return Token.objects.get_or_create(user=user)[0].key


def call(app: Any, key: str, path: str, data: Any = None, method: str = "POST", **options: Any) -> WsgiResponse:
    headers = {"Authorization": f"Token {key}", **options.pop("headers", {})}
    body = b""
    if data is not None:
        body = data if isinstance(data, bytes) else json.dumps(data).encode()
        headers.setdefault("Content-Type", "application/json")
    return wsgi_call(app, method, path, body, headers, **options)


def submit_body(utterance_id: int, client_id: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"client_id": client_id or str(uuid.uuid4()), "utterance": utterance_id, "value": {"emotion": "joy"}, **extra}


def same_answer(first: WsgiResponse, second: WsgiResponse) -> None:
    assert (first.status_code, first.reason, first.content) == (second.status_code, second.reason, second.content)
    assert first.header_list == second.header_list  # in the same order, too


def test_plain_next_and_submit_never_reach_django(make_project, make_items, annotator, hot, spy):
    utterances = make_items(3)
    project = make_project(members=[annotator])
    key = token(annotator)
    handed = call(hot, key, f"/api/projects/{project.pk}/next/")
    assert handed.status_code == 200 and handed.json()["utterance"]["id"] == utterances[0].pk
    assert call(hot, key, f"/api/projects/{project.pk}/next/", method="GET").json()["reservation"]["resumed"] is True
    submitted = call(hot, key, f"/api/projects/{project.pk}/submit/", submit_body(utterances[0].pk, next=True))
    assert submitted.status_code == 201, submitted.content
    assert submitted.json()["next"]["utterance"]["id"] == utterances[1].pk
    assert spy.calls == 0
    assert Annotation.objects.get(project=project).value == {"emotion": "joy"}


def test_answers_are_byte_for_byte_django_s(make_project, make_items, annotator, settings):
    settings.SECURE_HSTS_SECONDS = 3600  # before both applications build their middleware
    spy = DjangoSpy()
    hot = HotPathApplication(spy, api_hot_path.HANDLERS)
    utterances = make_items(3)
    project = make_project(members=[annotator])
    key = token(annotator)
    next_url, submit_url = f"/api/projects/{project.pk}/next/", f"/api/projects/{project.pk}/submit/"
    call(hot, key, next_url, scheme="https")
    with override_settings(API_HOT_PATH=False):
        held_by_django = call(hot, key, next_url, scheme="https")
    held_by_hot_path = call(hot, key, next_url, scheme="https")
    assert spy.calls == 1
    same_answer(held_by_hot_path, held_by_django)
    assert held_by_hot_path["Strict-Transport-Security"].startswith("max-age=3600")
    assert "content-security-policy" in held_by_hot_path.headers

    client_id = str(uuid.uuid4())
    created = call(hot, key, submit_url, submit_body(utterances[0].pk, client_id, next=True, lead_time_ms=900))
    assert created.status_code == 201
    replayed_by_hot_path = call(hot, key, submit_url, submit_body(utterances[0].pk, client_id, next=True, lead_time_ms=900))
    with override_settings(API_HOT_PATH=False):
        replayed_by_django = call(hot, key, submit_url, submit_body(utterances[0].pk, client_id, next=True, lead_time_ms=900))
    assert replayed_by_hot_path.status_code == 200 and replayed_by_hot_path.json()["created"] is False
    same_answer(replayed_by_hot_path, replayed_by_django)
    # A fresh submit through Django carries the same headers as the hot path's 201 (its body is another item's).
    with override_settings(API_HOT_PATH=False):
        created_by_django = call(hot, key, submit_url, submit_body(utterances[1].pk))
    assert created_by_django.status_code == 201
    assert [name for name, _ in created.header_list] == [name for name, _ in created_by_django.header_list]
    assert [h for h in created.header_list if h[0] != "Content-Length"] == [
        h for h in created_by_django.header_list if h[0] != "Content-Length"
    ]
    assert created.json().keys() == {"annotation", "created", "late", "next"}
    assert created_by_django.json().keys() == {"annotation", "created", "late"}
    assert created.json()["annotation"].keys() == created_by_django.json()["annotation"].keys()


def _inactive(user: Any) -> None:
    user.is_active = False
    user.save()


@pytest.mark.parametrize(
    ("case", "expected_status"),
    [
        ("cookie", 201),  # a browser's session: DRF's session authentication comes first
        # 403, not 401: DRF's first authenticator (session) names no WWW-Authenticate scheme.
        ("bearer keyword", 403),
        ("unknown token", 403),
        ("inactive user", 403),
        ("malformed JSON", 400),
        ("NaN in JSON", 400),
        ("not JSON", 415),
        ("field invalid", 400),
        ("outsider", 404),
        ("foreign item", 404),
        ("disallowed host", 400),
        ("https redirect", 301),
        ("nothing left", 204),
        ("off by setting", 201),
        ("unknown middleware", 201),
        ("PUT", 405),
        ("another view", 200),
        ("unknown path", 404),
        ("non-ASCII path", 404),
        ("token with a trailing NBSP", 403),  # DRF splits the header as bytes: the key then is not UTF-8
    ],
)
def test_everything_but_the_plain_case_is_django_s_answer(
    case, expected_status, make_project, make_items, annotator, outsider, make_user, hot, spy, settings
):
    utterances = make_items(2)
    other = make_user("other")
    project = make_project(members=[annotator, other])
    key = token(annotator)
    submit_url = f"/api/projects/{project.pk}/submit/"
    call(hot, key, f"/api/projects/{project.pk}/next/")  # annotator holds utterance 0
    call(hot, token(other), f"/api/projects/{project.pk}/next/")  # other holds utterance 1
    spy.calls = 0
    path, data, options = submit_url, submit_body(utterances[0].pk), {}
    if case == "cookie":
        options["headers"] = {"Cookie": "sessionid=nothing"}
    elif case == "bearer keyword":
        options["headers"] = {"Authorization": f"Bearer {key}"}
    elif case == "unknown token":
        key = "0" * 40
    elif case == "inactive user":
        _inactive(annotator)
    elif case == "malformed JSON":
        data = b'{"client_id": '
    elif case == "NaN in JSON":
        data = json.dumps(submit_body(utterances[0].pk, lead_time_ms=float("nan"))).encode()
    elif case == "not JSON":
        options["headers"] = {"Content-Type": "text/plain"}
        data = json.dumps(data).encode()
    elif case == "field invalid":
        data = {**data, "value": {"emotion": "bored"}}
    elif case == "outsider":
        key = token(outsider)
    elif case == "foreign item":
        data = submit_body(utterances[1].pk)
    elif case == "disallowed host":
        options["headers"] = {"Host": "evil.example"}
    elif case == "https redirect":
        settings.SECURE_SSL_REDIRECT = True
        spy = DjangoSpy()  # both read the setting when their middleware is built
        hot = HotPathApplication(spy, api_hot_path.HANDLERS)
    elif case == "nothing left":
        path, data = f"/api/projects/{project.pk}/next/", None
        call(hot, key, submit_url, submit_body(utterances[0].pk))
        spy.calls = 0
    elif case == "off by setting":
        settings.API_HOT_PATH = False
    elif case == "unknown middleware":
        settings.MIDDLEWARE = [*settings.MIDDLEWARE, "django.middleware.gzip.GZipMiddleware"]
    elif case == "PUT":
        options["method"] = "PUT"
    elif case == "another view":
        path, data, options["method"] = f"/api/projects/{project.pk}/my-annotations/", None, "GET"
    elif case == "unknown path":
        path = f"/api/projects/{project.pk}/submit-all/"
    elif case == "non-ASCII path":
        path = f"/api/projects/{project.pk}/submit/€".encode().decode("iso-8859-1")  # as a WSGI server passes it
    elif case == "token with a trailing NBSP":
        options["headers"] = {"Authorization": f"Token {key}\xa0"}
    annotations_before = Annotation.objects.count()
    response = call(hot, key, path, data, **options)
    assert response.status_code == expected_status, response.content
    assert spy.calls == 1
    if case in ("another view", "unknown path"):  # asked again, it goes to Django again
        assert call(hot, key, path, data, **options).status_code == expected_status
        assert spy.calls == 2
    if case == "https redirect":
        assert response["Location"] == f"https://testserver{submit_url}"
    if expected_status >= 400:
        assert Annotation.objects.count() == annotations_before
    if case == "field invalid":
        assert "emotion" in response.json()["value"]


def test_a_failure_after_the_write_is_answered_as_the_idempotent_retry(make_project, make_items, annotator, spy, caplog):
    utterances = make_items(2)
    project = make_project(members=[annotator])

    def submit_then_fail(request: HotRequest) -> Any:
        api_hot_path.submit(request)
        raise RuntimeError("rendering failed")

    app = HotPathApplication(spy, {**api_hot_path.HANDLERS, SubmitView: submit_then_fail})
    key = token(annotator)
    call(app, key, f"/api/projects/{project.pk}/next/")
    with caplog.at_level(logging.WARNING, logger="config.hot_path"):
        response = call(app, key, f"/api/projects/{project.pk}/submit/", submit_body(utterances[0].pk))
    assert response.status_code == 200 and response.json()["created"] is False
    assert Annotation.objects.filter(project=project).count() == 1
    assert spy.calls == 1
    assert "rendering failed" in caplog.text


def test_request_signals_are_sent_as_django_sends_them(make_project, make_items, annotator, hot, spy):
    make_items(1)
    project = make_project(members=[annotator])
    seen: list[str] = []

    def started(**kwargs: Any) -> None:
        seen.append("started")

    def finished(**kwargs: Any) -> None:
        seen.append("finished")

    request_started.connect(started)
    request_finished.connect(finished)
    try:
        assert call(hot, token(annotator), f"/api/projects/{project.pk}/next/").status_code == 200
    finally:
        request_started.disconnect(started)
        request_finished.disconnect(finished)
    assert spy.calls == 0
    assert seen == ["started", "finished"]


def test_a_view_whose_drf_set_up_differs_is_left_to_django(make_project, make_items, annotator, spy):
    class ThrottledSubmit(SubmitView):
        throttle_classes = [AnonRateThrottle]

    app = HotPathApplication(spy, {ThrottledSubmit: api_hot_path.submit})
    assert app.handlers == {}
