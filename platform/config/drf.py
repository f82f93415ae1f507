"""Django REST Framework helpers shared by the apps: content negotiation for one-renderer views, and the
exception handler that caps error bodies."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from drf_spectacular.utils import inline_serializer
from rest_framework import serializers
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

ERROR_ENTRIES_MAX = 100  # fields of an error object, or reasons of a list, shown per level
ERROR_TEXT_MAX = 1000  # characters of one reason (a reason may quote what the client sent)


class FirstRendererNegotiation(DefaultContentNegotiation):
    """For views with one renderer: answer with it whatever the Accept header says (DRF's documented pattern).

    Parsing Accept against one renderer cost more than rendering a small body; request bodies are still chosen
    by Content-Type as usual.
    """

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


def _capped(data: Any, depth: int = 0) -> Any:
    """An error body cut to ERROR_ENTRIES_MAX entries per level and ERROR_TEXT_MAX characters per reason, saying how
    many were left out, so an error's size follows from the limits and not from how much the client sent."""
    if depth > 8:
        return "…"
    if isinstance(data, dict):
        items = list(data.items())
        capped = {key[:ERROR_TEXT_MAX] if isinstance(key, str) else key: _capped(value, depth + 1)
                  for key, value in items[:ERROR_ENTRIES_MAX]}
        if len(items) > ERROR_ENTRIES_MAX:
            capped["more_errors"] = f"{len(items) - ERROR_ENTRIES_MAX} more errors not shown"
        return capped
    if isinstance(data, list):
        capped_list = [_capped(value, depth + 1) for value in data[:ERROR_ENTRIES_MAX]]
        if len(data) > ERROR_ENTRIES_MAX:
            capped_list.append(f"{len(data) - ERROR_ENTRIES_MAX} more errors not shown")
        return capped_list
    if isinstance(data, str) and len(data) > ERROR_TEXT_MAX:
        return data[:ERROR_TEXT_MAX] + "…"
    return data


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, with error bodies capped in size (``_capped``)."""
    response = drf_exception_handler(exc, context)
    if response is not None and response.status_code >= 400:
        response.data = _capped(response.data)
    return response


def paginated(serializer_class: type[serializers.Serializer], name: str) -> serializers.Serializer:
    """The OpenAPI shape of a page of ``serializer_class`` rows (PageNumberPagination), for views that paginate by
    hand: documented as a bare array, such a page was a schema violation."""
    return inline_serializer(
        name=name,
        fields={
            "count": serializers.IntegerField(),
            "next": serializers.CharField(allow_null=True, help_text="URL of the next page"),
            "previous": serializers.CharField(allow_null=True, help_text="URL of the previous page"),
            "results": serializer_class(many=True),
        },
    )
