"""Django REST Framework helpers shared by the apps."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.fields import SkipField
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request


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


# Serializer methods whose override would make validation more than "each field on its own".
_VALIDATION_METHODS = ("validate", "to_internal_value", "run_validation", "validate_empty_values", "get_fields")


@cache
def _prebuilt_fields(serializer_class: type[serializers.Serializer]) -> list[serializers.Field] | None:
    """The writable fields of a flat input serializer, bound once; None if the serializer is not that simple."""
    instance = serializer_class()
    fields = list(instance._writable_fields)
    flat = (
        all(getattr(serializer_class, name) is getattr(serializers.Serializer, name) for name in _VALIDATION_METHODS)
        and not instance.validators
        and all(
            not isinstance(field, serializers.BaseSerializer)
            and len(field.source_attrs) == 1
            and getattr(instance, f"validate_{field.field_name}", None) is None
            # DRF copies defaults per instance; shared prebuilt fields may only hand out immutable ones.
            and not isinstance(field.default, (list, dict, set))
            for field in fields
        )
    )
    return fields if flat else None


def input_validated(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    """``serializer_class(data=data)``'s validated data, or its ValidationError, as DRF would give them.

    DRF deep-copies every declared field for each serializer instance, which for a small request body costs more
    than the validation itself. A flat serializer (plain fields, no validate methods) is checked here with its
    fields built once: they keep no state between calls. Any failure is re-run through a real serializer, so error
    bodies are exactly DRF's.
    """
    fields = _prebuilt_fields(serializer_class)
    if fields is not None and isinstance(data, Mapping):
        validated: dict[str, Any] = {}
        try:
            for field in fields:
                try:
                    validated[field.source_attrs[0]] = field.run_validation(field.get_value(data))
                except SkipField:
                    continue
            return validated
        except (ValidationError, DjangoValidationError):
            pass  # the serializer below reports every field's error, not just this one
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)
