"""Small pieces every API module uses: error shapes, the signed-in user, strict query filters."""

from __future__ import annotations

import re
from typing import Any

import django_filters
from django import forms
from django.contrib.auth.models import User
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request

from config.drf import INT64_MAX, INT64_MIN
from corpora.models import Language

_LANGUAGE_CODE = re.compile(r"[A-Za-z0-9-]{1,35}")

# Ids are bigint columns: a larger number is a 400 (or a 404 in a path), never a database error.
MAX_ID = INT64_MAX


def signed_in_user(request: Request) -> User:
    """The user of a request that passed IsAuthenticated."""
    assert isinstance(request.user, User)
    return request.user


def field_errors(errors: dict[str, str]) -> dict[str, list[str]]:
    """A service's ``{field: reason}`` in DRF's error shape."""
    return {str(field): [str(reason)] for field, reason in errors.items()}


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(django_filters.NumberFilter):
    """Filter on a related object's id without checking that it exists.

    django-filter's default for a foreign key answers 400 for an id that does not exist and 200 for
    one that does: an outsider could probe which hidden projects or corpora exist. Here both give
    an empty page. Whole numbers only, within 64 bits (beyond, SQLite overflows before any row is read).
    """

    field_class = forms.IntegerField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", INT64_MIN)
        kwargs.setdefault("max_value", INT64_MAX)
        super().__init__(*args, **kwargs)


class StrictBooleanField(forms.NullBooleanField):
    """true/false (or 1/0); anything else is an error instead of being silently ignored."""

    widget = forms.TextInput

    def to_python(self, value: Any) -> bool | None:  # type: ignore[override]  # None: no filter
        if value in (None, ""):
            return None
        if value in ("true", "True", "1"):
            return True
        if value in ("false", "False", "0"):
            return False
        raise forms.ValidationError("must be true or false")

    def validate(self, value: Any) -> None:
        return None


@extend_schema_field(OpenApiTypes.BOOL)
class StrictBooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField


class LanguageCodeField(serializers.SlugRelatedField):
    """A language by its BCP-47 code. Anything that cannot be a code (a NUL byte, say, which PostgreSQL refuses in a
    query: a 500 schemathesis found) is "no such language" before any query."""

    def __init__(self, **kwargs: Any):
        super().__init__(slug_field="code", queryset=Language.objects.all(), **kwargs)

    def to_internal_value(self, data: Any) -> Language:
        if not isinstance(data, str) or not _LANGUAGE_CODE.fullmatch(data):
            self.fail("does_not_exist", slug_name=self.slug_field, value=str(data)[:50])
        return super().to_internal_value(data)
