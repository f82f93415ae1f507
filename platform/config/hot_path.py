"""A short way through Django for the annotators' per-item API calls, in front of its WSGI handler.

An annotator's submit is one database round trip (see ``annotation/distribution.md``); around it, Django's
middleware chain, its request/response objects and DRF's view machinery cost about 0.6 ms of CPU, half of the
web server's work per submit (benchmarks/annotate_bench.py). ``HotPathApplication`` answers a request itself
only in the plain case: a route registered as hot, a ``Token`` authorization of an active user, no cookies, a
JSON body, and an endpoint handler that reports success. Everything else goes to Django untouched and gets
exactly the answer it always got: other URLs, browser (cookie) requests, bad or missing tokens, bodies that do
not validate, every refusal, and any error. Handing over is safe because the handlers write nothing before they
succeed (a submit that succeeded and then failed to render is replayed by Django as its idempotent retry).

What it keeps of Django's handler: the request_started/request_finished signals (database connections are
checked and closed as usual), the script prefix, ALLOWED_HOSTS, the upload size limit, and the header
middleware (SecurityMiddleware with its HTTPS redirect, CSP, X-Frame-Options), which it runs itself. The rest of
``MIDDLEWARE`` is known to do nothing for such a request; a middleware it does not know switches the short way
off, as does ``SENTIO_API_HOT_PATH=0``. ``tests/api/test_hot_path.py`` compares both ways' answers byte for byte.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from django.conf import settings
from django.core import signals
from django.core.exceptions import DisallowedHost
from django.core.handlers.wsgi import WSGIHandler, WSGIRequest, get_script_name
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.urls import Resolver404, get_resolver, set_script_prefix
from django.utils.cache import patch_vary_headers
from django.utils.http import parse_header_parameters
from django.utils.module_loading import import_string
from rest_framework.renderers import JSONRenderer

from accounts.authentication import token_user_get

logger = logging.getLogger(__name__)

# Middleware whose work for a hot request is its response headers (or a redirect): run here.
HEADER_MIDDLEWARE = (
    "django.middleware.security.SecurityMiddleware",
    "config.middleware.CSPMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
)
# Middleware that does nothing for a cookie-less, token-authenticated API request to a csrf-exempt DRF view:
# static files only under STATIC_URL; no session cookie to read or set (DRF's session check only adds
# "Vary: Cookie", added here too); CSRF is not enforced for token requests; no messages to store; CommonMiddleware's
# host check and Content-Length are done here, and its URL rewriting is declined below.
SKIPPED_MIDDLEWARE = (
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
)


class Declined(Exception):
    """The request is not the plain case: Django answers it."""


@dataclass
class HotRequest:
    request: HttpRequest  # Django's request object (no middleware ran on it)
    user_id: int
    body: bytes
    kwargs: Mapping[str, Any]  # the route's URL parameters, converted

    def json(self) -> Any:
        """The body as DRF's JSONParser would read it; Declined when it would not."""
        media_type, params = parse_header_parameters(self.request.META.get("CONTENT_TYPE", ""))
        if media_type != "application/json" or params.get("charset", "utf-8").lower() != "utf-8":
            raise Declined("not a UTF-8 JSON body")
        try:
            return json.loads(self.body.decode(), parse_constant=_reject_constant)
        except ValueError:
            raise Declined("malformed JSON") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")  # DRF's strict JSON


class HotHandler(Protocol):
    """An endpoint's plain case: ``(status, data)`` to answer, or None (or Declined) to leave it to Django."""

    def __call__(self, request: HotRequest) -> tuple[int, Any] | None: ...


def _no_inner_handler(request: HttpRequest) -> HttpResponseBase:
    raise AssertionError("header middleware is run without an inner handler")


class HotPathApplication:
    """WSGI application: the hot views' plain requests answered here, all others by ``django_application``."""

    def __init__(self, django_application: WSGIHandler, handlers: Mapping[type, HotHandler]) -> None:
        self.django_application = django_application
        self.handlers = dict(handlers)
        self._renderer = JSONRenderer()
        self._middleware_for: object = None  # the MIDDLEWARE list the loaded instances belong to
        self._header_middleware: list[Any] | None = None
        self._allow: dict[type, str] = {}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not settings.API_HOT_PATH or not self._eligible(environ):
            return self.django_application(environ, start_response)
        body = self._body_buffer(environ)
        if body is None:
            return self.django_application(environ, start_response)
        signals.request_started.send(sender=WSGIHandler, environ=environ)
        try:
            response = self._answer(environ, body)
        except Declined:
            response = None
        except Exception:  # Django answers instead, and reports the error itself if it happens again there
            logger.warning("hot path failed for %s; Django answers it", environ.get("PATH_INFO"), exc_info=True)
            response = None
        finally:
            signals.request_finished.send(sender=WSGIHandler)
        if response is None:
            environ["wsgi.input"] = io.BytesIO(body)
            return self.django_application(environ, start_response)
        start_response(f"{response.status_code} {response.reason_phrase}", list(response.items()))
        return [response.content]

    @staticmethod
    def _eligible(environ: Mapping[str, Any]) -> bool:
        authorization = environ.get("HTTP_AUTHORIZATION", "")
        return (
            environ.get("REQUEST_METHOD") in ("GET", "POST")
            and authorization[:6].lower() == "token "
            and "HTTP_COOKIE" not in environ  # a browser's session would take precedence in DRF
            and "HTTP_TRANSFER_ENCODING" not in environ
        )

    @staticmethod
    def _body_buffer(environ: dict[str, Any]) -> bytes | None:
        """The request body, read once so that Django can be handed it again; None if it is not a plain one."""
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return None
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if length < 0 or (limit is not None and length > limit):
            return None
        body = environ["wsgi.input"].read(length) if length else b""
        if len(body) != length:
            environ["wsgi.input"] = io.BytesIO(body)  # a short body: Django reports it
            return None
        return body

    def _answer(self, environ: dict[str, Any], body: bytes) -> HttpResponse | None:
        header_middleware = self._header_middleware_get()
        if header_middleware is None:
            return None
        set_script_prefix(get_script_name(environ))
        request = WSGIRequest(environ)
        try:
            match = get_resolver().resolve(request.path_info)
        except Resolver404:
            return None
        view_class: type | None = getattr(match.func, "view_class", None)
        handler = self.handlers.get(view_class) if view_class is not None else None
        if view_class is None or handler is None or not hasattr(view_class, str(request.method).lower()):
            return None
        try:
            request.get_host()
        except DisallowedHost:
            return None
        for middleware in header_middleware:
            if hasattr(middleware, "process_request") and middleware.process_request(request) is not None:
                return None  # SecurityMiddleware's HTTPS redirect
        parts = environ["HTTP_AUTHORIZATION"].split()
        if len(parts) != 2:
            return None
        user = token_user_get(parts[1])
        if user is None:
            return None
        answer = handler(HotRequest(request=request, user_id=user.pk, body=body, kwargs=match.kwargs))
        if answer is None:
            return None
        status, data = answer
        response = HttpResponse(self._renderer.render(data), status=status, content_type=self._renderer.media_type)
        # What DRF's finalize_response, SessionMiddleware and CommonMiddleware add to this view's answers.
        response["Allow"] = self._allowed_methods(view_class)
        patch_vary_headers(response, ("Cookie",))
        response["Content-Length"] = str(len(response.content))
        for middleware in reversed(header_middleware):
            response = middleware.process_response(request, response)
        return response  # type: ignore[return-value]

    def _allowed_methods(self, view_class: type) -> str:
        allow = self._allow.get(view_class)
        if allow is None:
            view = view_class()
            view.setup(HttpRequest())  # as Django's as_view() does, which adds HEAD for a view with GET
            allow = self._allow[view_class] = ", ".join(view.allowed_methods)
        return allow

    def _header_middleware_get(self) -> list[Any] | None:
        """Instances of the header middleware in MIDDLEWARE order; None when MIDDLEWARE holds an unknown one."""
        middleware = settings.MIDDLEWARE
        if middleware is not self._middleware_for:  # loaded again for override_settings in tests
            unknown = [path for path in middleware if path not in HEADER_MIDDLEWARE + SKIPPED_MIDDLEWARE]
            if unknown or settings.PREPEND_WWW or settings.DISALLOWED_USER_AGENTS:
                logger.warning("hot path off: MIDDLEWARE has %s, whose work it cannot vouch for", unknown or "settings")
                self._header_middleware = None
            else:
                self._header_middleware = [
                    import_string(path)(_no_inner_handler) for path in middleware if path in HEADER_MIDDLEWARE
                ]
            self._middleware_for = middleware
        return self._header_middleware
