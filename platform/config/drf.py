"""Django REST Framework helpers shared by the apps: content negotiation for one-renderer views, and the
exception handler that caps error bodies."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response

if TYPE_CHECKING:
    from rest_framework import serializers

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


# -- hostile JSON --------------------------------------------------------------------------------------------------

MAX_JSON_DEPTH = 32  # Sentio's deepest real body (a schema's questions with their labels) nests 4 levels
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class JsonRefused(ValueError):
    """Valid JSON that Sentio refuses before it reaches a serializer or SQL; ``path`` names the field."""

    def __init__(self, path: str, reason: str):
        self.path = path or "non_field_errors"
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def json_loads_checked(text: str | bytes) -> Any:
    """``json.loads`` that refuses, naming the field, what would otherwise fail deep inside the server.

    Integers beyond 64 bits (no id or count is that big; as floats they overflow), non-finite numbers (NaN,
    Infinity, 1e400), NUL characters (PostgreSQL stores none, in text or jsonb) and nesting deeper than
    ``MAX_JSON_DEPTH`` (recursive code would hit Python's recursion limit). Malformed JSON raises ValueError.
    """
    try:
        data = json.loads(text)
    except RecursionError:
        raw = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
        raise JsonRefused(_deep_field(raw), f"is nested deeper than {MAX_JSON_DEPTH} levels") from None
    _check(data)
    return data


def _check(data: Any) -> None:
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, dict):
            if len(path) >= MAX_JSON_DEPTH:
                raise JsonRefused(_path(path[:1]), f"is nested deeper than {MAX_JSON_DEPTH} levels")
            for key, item in value.items():
                if "\x00" in key:
                    raise JsonRefused(_path(path), f"has a key with a NUL character ({key!r})")
                stack.append((item, (*path, key)))
        elif isinstance(value, list):
            if len(path) >= MAX_JSON_DEPTH:
                raise JsonRefused(_path(path[:1]), f"is nested deeper than {MAX_JSON_DEPTH} levels")
            stack.extend((item, (*path, index)) for index, item in enumerate(value))
        elif isinstance(value, str):
            if "\x00" in value:
                raise JsonRefused(_path(path), "contains a NUL character (\\u0000), which cannot be stored")
        elif isinstance(value, bool):
            continue
        elif isinstance(value, int):
            if not INT64_MIN <= value <= INT64_MAX:
                raise JsonRefused(_path(path), f"is a number beyond the 64-bit range ({INT64_MIN} to {INT64_MAX})")
        elif isinstance(value, float) and not math.isfinite(value):
            raise JsonRefused(_path(path), "must be a finite number (not NaN, Infinity or beyond 1.8e308)")


def _path(path: tuple[str | int, ...]) -> str:
    """("value", "regions", 0, "end") -> "value.regions[0].end", the way schema errors name fields."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _deep_field(text: str) -> str:
    """The top-level field of a body too deep for ``json.loads`` to parse (found by a scan that skips strings)."""
    depth, key, current, i = 0, "", "", 0
    while i < len(text):
        char = text[i]
        if char == '"':
            end = i + 1
            while end < len(text) and text[end] != '"':
                end += 2 if text[end] == "\\" else 1
            if depth == 1:
                key = text[i + 1:end]
            i = end + 1
            continue
        if char in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return current
        elif char in "]}":
            depth -= 1
        elif char == ":" and depth == 1:
            current = key
        i += 1
    return current


class CheckedJSONDecoder(json.JSONDecoder):
    """For ``serializers.JSONField(decoder=...)``: JSON that arrives inside a form field gets the same checks."""

    def decode(self, s: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return json_loads_checked(s)
        except JsonRefused as exc:
            raise ValidationError({exc.path: [exc.reason]}) from None


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser with ``json_loads_checked``: a hostile body is a 400 naming the field, never a 500."""

    def parse(self, stream: Any, media_type: str | None = None,
              parser_context: Mapping[str, Any] | None = None) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = stream.read().decode(encoding) if stream is not None else ""
        except UnicodeDecodeError as exc:
            raise ParseError(f"JSON parse error - the body is not {encoding}: {exc}") from None
        try:
            return json_loads_checked(text)
        except JsonRefused as exc:
            raise ValidationError({exc.path: [exc.reason]}) from None
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
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
    # Imported here: rest_framework.views reads DRF's settings, which name this module's JSONParser.
    from rest_framework.views import exception_handler as drf_exception_handler

    response = drf_exception_handler(exc, context)
    if response is not None and response.status_code >= 400:
        response.data = _capped(response.data)
    return response


def paginated(serializer_class: type[serializers.Serializer], name: str) -> serializers.Serializer:
    """The OpenAPI shape of a page of ``serializer_class`` rows (PageNumberPagination), for views that paginate by
    hand: documented as a bare array, such a page was a schema violation."""
    # Imported here: drf_spectacular and serializers read DRF's settings, which name this module's JSONParser.
    from drf_spectacular.utils import inline_serializer
    from rest_framework import serializers

    return inline_serializer(
        name=name,
        fields={
            "count": serializers.IntegerField(),
            "next": serializers.CharField(allow_null=True, help_text="URL of the next page"),
            "previous": serializers.CharField(allow_null=True, help_text="URL of the previous page"),
            "results": serializer_class(many=True),
        },
    )
