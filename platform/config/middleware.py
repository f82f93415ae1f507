"""Project middleware and the error-report filter."""

from __future__ import annotations

import re
from typing import Any

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject
from csp.middleware import CSPMiddleware as LibraryCSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase, JsonResponse
from django.views.debug import SafeExceptionReporterFilter

from config.drf import INT64_MAX

# Attributes django-csp's view decorators put on a response to change its policy.
_PER_RESPONSE_POLICY = (
    "_csp_config", "_csp_update", "_csp_replace", "_csp_config_ro", "_csp_update_ro", "_csp_replace_ro",
)


class CSPMiddleware(LibraryCSPMiddleware):
    """django-csp's middleware, with the policy headers built once per settings instead of once per response.

    Sentio's policy is static (no nonces, no per-view changes), and rebuilding the header strings was a
    measurable share of an annotator's API request. A response that uses a nonce or a decorator still goes
    through django-csp's own code.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._built: tuple[object, object, str, str] | None = None

    def _static_policies(self) -> tuple[str, str]:
        policy = getattr(settings, "CONTENT_SECURITY_POLICY", None)
        report_only = getattr(settings, "CONTENT_SECURITY_POLICY_REPORT_ONLY", None)
        built = self._built
        # Built for these very settings objects (held, so their identity cannot be reused): override_settings
        # swaps the objects and is honoured; settings are never changed in place.
        if built is None or built[0] is not policy or built[1] is not report_only:
            built = self._built = (policy, report_only, build_policy(), build_policy(report_only=True))
        return built[2], built[3]

    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        if getattr(request, "_csp_nonce", None) is not None or any(
            hasattr(response, name) for name in _PER_RESPONSE_POLICY
        ):
            return super().process_response(request, response)
        if response.status_code in (404, 500) and settings.DEBUG:
            return response  # as django-csp: Django's debug pages need inline scripts
        enforced, report_only = self._static_policies()
        for header, value, exempt, setting in (
            (HEADER, enforced, "_csp_exempt", "CONTENT_SECURITY_POLICY"),
            (HEADER_REPORT_ONLY, report_only, "_csp_exempt_ro", "CONTENT_SECURITY_POLICY_REPORT_ONLY"),
        ):
            if not value or header in response or getattr(response, exempt, False):
                continue
            excluded = (getattr(settings, setting, None) or {}).get("EXCLUDE_URL_PREFIXES") or ()
            if not request.path_info.startswith(tuple(excluded)):
                response[header] = value
        # As django-csp: a nonce asked for after the header was written would silently not be in it.
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)  # type: ignore[attr-defined]
        return response


class ExceptionReporterFilter(SafeExceptionReporterFilter):
    """Django's filter, also hiding connection URLs (they carry passwords: DATABASE_URL, CELERY_BROKER_URL...).

    granian copies the whole process environment into every request's WSGI environ, so error reports that show
    ``request.META`` would otherwise print those variables in full.
    """

    hidden_settings = re.compile("API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|URL|DSN|BROKER", flags=re.I)


class PathIdRangeMiddleware:
    """A number in the URL (``<int:project_id>``) beyond 64 bits names nothing that can exist: answer 404 naming
    the path parameter before it reaches SQL, where PostgreSQL says "bigint out of range" and SQLite overflows."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func: Any, view_args: Any, view_kwargs: dict[str, Any]) -> Any:
        for name, value in view_kwargs.items():
            if isinstance(value, int) and value > INT64_MAX:  # Django's int converter matches digits only
                return JsonResponse({"detail": f"Not found: {name} is larger than {INT64_MAX}."}, status=404)
        return None
