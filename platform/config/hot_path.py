"""A short way through Django for the annotators' per-item API calls, in front of its WSGI handler.

An annotator's submit is one database round trip (see ``annotation/distribution.md``); around it, Django's
middleware chain, its request/response objects and DRF's view machinery cost about 0.4 ms of CPU, over a third of
the web server's work per submit (1.15 -> 0.75 ms measured by benchmarks/annotate_bench.py).
``HotPathApplication`` answers a request itself only in the plain case: a route registered as hot, a ``Token``
authorization of an active user, no cookies, a JSON body, and an endpoint handler that reports success.
Everything else goes to Django untouched and gets exactly the answer it always got: other URLs, browser (cookie)
requests, bad or missing tokens, bodies that do not validate, every refusal, and any error. Handing over after a
handler ran is safe because the handlers' services are idempotent: a refused submit wrote nothing, a submit that
succeeded and then failed to render is answered by Django as the replay of its client id, and a next item that
failed to render is handed out again as the held one. (A database error thus makes Django try once more.)

What it keeps of Django's handler: the request_started/request_finished signals (database connections are
checked and closed as usual), the script prefix, ALLOWED_HOSTS, the upload size limit, and the header
middleware (SecurityMiddleware with its HTTPS redirect, CSP, X-Frame-Options), which it runs itself in
``MIDDLEWARE`` order, so headers come out as Django sends them. The rest of ``MIDDLEWARE`` is known to do nothing
for such a request but add ``Content-Length`` and ``Vary: Cookie``; a middleware it does not know switches the
short way off, as does ``SENTIO_API_HOT_PATH=0``, and a hot view whose DRF authentication, permissions,
throttles, parsers or renderers are not the ones this relies on is left to Django.
``tests/distribution/test_hot_path.py`` compares both ways' answers byte for byte.
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
from django.core.handlers.wsgi import WSGIHandler, WSGIRequest, get_path_info, get_script_name
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.urls import Resolver404, get_resolver, set_script_prefix
from django.utils.cache import patch_vary_headers
from django.utils.http import parse_header_parameters
from django.utils.module_loading import import_string
from rest_framework.authentication import SessionAuthentication
from rest_framework.parsers import JSONParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer

from accounts.authentication import TokenAuthentication, active_user_id_for_token
from config.drf import FirstRendererNegotiation

logger = logging.getLogger(__name__)

# Middleware whose work for a hot request is its response headers (or a redirect): run here.
HEADER_MIDDLEWARE = (
    "django.middleware.security.SecurityMiddleware",
    "config.middleware.CSPMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
)
# Middleware that does nothing for a cookie-less, token-authenticated API request to a csrf-exempt DRF view, but
# the header named: static files only under STATIC_URL; no session cookie to read or set (DRF's session check
# only makes the response vary on Cookie); CSRF is not enforced for token requests; no messages to store;
# CommonMiddleware's host check is done here, its URL rewriting declined below, its Content-Length added.
SKIPPED_MIDDLEWARE = {
    "whitenoise.middleware.WhiteNoiseMiddleware": None,
    "django.contrib.sessions.middleware.SessionMiddleware": "Vary",
    "django.middleware.common.CommonMiddleware": "Content-Length",
    "django.middleware.csrf.CsrfViewMiddleware": None,
    "django.contrib.auth.middleware.AuthenticationMiddleware": None,
    "django.contrib.messages.middleware.MessageMiddleware": None,
}

_ROUTES_MAX = 4096


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


def _view_supported(view_class: type) -> bool:
    """Whether the view's DRF set-up is what the short way does in its place: token (or session) authentication,
    authenticated users only, no throttles, JSON in and out."""
    return (
        TokenAuthentication in view_class.authentication_classes  # type: ignore[attr-defined]
        and all(issubclass(auth, (TokenAuthentication, SessionAuthentication))
                for auth in view_class.authentication_classes)  # type: ignore[attr-defined]
        and list(view_class.permission_classes) == [IsAuthenticated]  # type: ignore[attr-defined]
        and not view_class.throttle_classes  # type: ignore[attr-defined]
        and list(view_class.parser_classes) == [JSONParser]  # type: ignore[attr-defined]
        and list(view_class.renderer_classes) == [JSONRenderer]  # type: ignore[attr-defined]
        # JSON whatever the Accept header says, as the short way answers (DRF's default would refuse with 406).
        and issubclass(view_class.content_negotiation_class, FirstRendererNegotiation)  # type: ignore[attr-defined]
    )


@dataclass(frozen=True)
class _Route:
    view_class: type
    handler: HotHandler
    kwargs: Mapping[str, Any]
    allow: str  # the Allow header DRF sends for the view


class HotPathApplication:
    """WSGI application: the hot views' plain requests answered here, all others by ``django_application``."""

    def __init__(self, django_application: WSGIHandler, handlers: Mapping[type, HotHandler]) -> None:
        self.django_application = django_application
        self.handlers = {view: handler for view, handler in handlers.items() if self._supported(view)}
        self._renderer = JSONRenderer()
        self._middleware_for: object = None  # the MIDDLEWARE list the loaded instances belong to
        self._response_steps: list[Any] | None = None
        self._routes: dict[tuple[object, str], _Route] = {}

    @staticmethod
    def _supported(view_class: type) -> bool:
        if _view_supported(view_class):
            return True
        logger.warning("hot path off for %s: its DRF set-up is not the one it stands in for", view_class.__name__)
        return False

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not self.handlers or not settings.API_HOT_PATH or not self._eligible(environ):
            return self.django_application(environ, start_response)
        response_steps = self._response_steps_get()
        route = self._route(get_path_info(environ)) if response_steps is not None else None
        body = self._body_buffer(environ) if route is not None else None
        if route is None or body is None or response_steps is None:
            return self.django_application(environ, start_response)
        signals.request_started.send(sender=WSGIHandler, environ=environ)
        try:
            response = self._answer(environ, body, route, response_steps)
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

    @staticmethod
    def _token(environ: Mapping[str, Any]) -> str | None:
        """The key as DRF's TokenAuthentication reads it (split as bytes, decoded as UTF-8), or None."""
        try:
            parts = environ["HTTP_AUTHORIZATION"].encode("iso-8859-1").split()
            return parts[1].decode() if len(parts) == 2 else None
        except UnicodeError:
            return None

    def _answer(self, environ: dict[str, Any], body: bytes, route: _Route, response_steps: list[Any]) -> HttpResponse | None:
        set_script_prefix(get_script_name(environ))
        request = WSGIRequest(environ.copy())  # a copy: WSGIRequest writes decoded paths back, Django may need the original
        if not hasattr(route.view_class, str(request.method).lower()):
            return None
        try:
            request.get_host()
        except DisallowedHost:
            return None
        for step in response_steps:
            if hasattr(step, "process_request") and step.process_request(request) is not None:
                return None  # SecurityMiddleware's HTTPS redirect
        key = self._token(environ)
        user_id = active_user_id_for_token(key) if key is not None else None
        if user_id is None:
            return None
        answer = route.handler(HotRequest(request=request, user_id=user_id, body=body, kwargs=route.kwargs))
        if answer is None:
            return None
        status, data = answer
        response = HttpResponse(self._renderer.render(data), status=status, content_type=self._renderer.media_type)
        response["Allow"] = route.allow  # DRF's finalize_response
        for step in reversed(response_steps):  # as Django's chain would, innermost first
            if step == "Vary":
                patch_vary_headers(response, ("Cookie",))
            elif step == "Content-Length":
                response["Content-Length"] = str(len(response.content))
            elif step is not None:
                response = step.process_response(request, response)
        return response

    def _route(self, path_info: str) -> _Route | None:
        """The hot view for this path with its handler and URL parameters, or None for any other view.

        Hot routes are remembered (resolving was a tenth of a hot request's Python work); others are resolved
        again by Django, so that no one can fill this memory with paths of their choosing.
        """
        resolver = get_resolver()
        route = self._routes.get((resolver, path_info))
        if route is not None:
            return route
        try:
            match = resolver.resolve(path_info)
        except Resolver404:
            return None
        view_class = getattr(match.func, "view_class", None)
        handler = self.handlers.get(view_class) if view_class is not None else None
        if view_class is None or handler is None:
            return None
        view = view_class()
        view.setup(HttpRequest())  # as Django's as_view() does, which adds HEAD for a view with GET
        route = _Route(view_class, handler, match.kwargs, ", ".join(view.allowed_methods))
        if len(self._routes) >= _ROUTES_MAX:
            self._routes.clear()
        self._routes[(resolver, path_info)] = route
        return route

    def _response_steps_get(self) -> list[Any] | None:
        """MIDDLEWARE, in order, as what each adds here: a header middleware instance, the name of the one header
        a skipped middleware adds, or None; None as a whole when MIDDLEWARE holds one it does not know."""
        middleware = settings.MIDDLEWARE
        if middleware is not self._middleware_for:  # loaded again for override_settings in tests
            unknown = [path for path in middleware if path not in HEADER_MIDDLEWARE and path not in SKIPPED_MIDDLEWARE]
            if unknown or settings.PREPEND_WWW or settings.DISALLOWED_USER_AGENTS:
                logger.warning("hot path off: MIDDLEWARE has %s, whose work it cannot vouch for", unknown or "settings")
                self._response_steps = None
            else:
                self._response_steps = [
                    import_string(path)(_no_inner_handler) if path in HEADER_MIDDLEWARE else SKIPPED_MIDDLEWARE[path]
                    for path in middleware
                ]
            self._middleware_for = middleware
        return self._response_steps
