"""Reads for accounts: an API token with its user (every API request), the user's tokens as the tokens page shows them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache

from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection
from rest_framework.authtoken.models import Token

from accounts.services import api_token_expired
from config.db import fetchone_prepared


@dataclass(frozen=True)
class ApiTokenView:
    """A token without its secret: the first characters to recognise it, and when it was made and expires."""

    prefix: str
    created: datetime
    expires: datetime
    expired: bool


def api_tokens_of(*, user: User) -> list[ApiTokenView]:
    return [
        ApiTokenView(
            prefix=token.key[:6], created=token.created, expires=token.created + settings.TOKEN_TTL,
            expired=api_token_expired(token),
        )
        for token in Token.objects.filter(user=user)
    ]


@cache
def _token_with_user_sql() -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """DRF's ``Token.objects.select_related("user").get(key=...)`` as SQL text, written once from the models."""
    def quote(name: str | None) -> str:  # concrete fields and tables always have a name
        return str(connection.ops.quote_name(str(name)))

    token_fields, user_fields = Token._meta.concrete_fields, User._meta.concrete_fields
    columns = [f"t.{quote(field.column)}" for field in token_fields] + [f"u.{quote(field.column)}" for field in user_fields]
    sql = (
        f"SELECT {', '.join(columns)} FROM {quote(Token._meta.db_table)} t "  # noqa: S608 - names from the models
        f"JOIN {quote(User._meta.db_table)} u ON u.{quote(User._meta.pk.column)} = t.{quote(Token.user.field.column)} "
        f"WHERE t.{quote(Token._meta.pk.column)} = %s"
    )
    return sql, tuple(field.attname for field in token_fields), tuple(field.attname for field in user_fields)


def api_token_with_user_get(*, key: str) -> Token | None:
    """The token with this key and its user (``token.user``, no second query), or None.

    Every API request reads it. On PostgreSQL the query is a prepared statement (``fetchone_prepared``): the ORM
    compiling the same join on every request was the largest share of an annotator's request's CPU.
    """
    if "\x00" in key:
        return None  # no key has one, and PostgreSQL refuses NUL characters in text
    if connection.vendor != "postgresql":
        return Token.objects.select_related("user").filter(key=key).first()
    sql, token_fields, user_fields = _token_with_user_sql()
    row = fetchone_prepared(sql, [key])
    if row is None:
        return None
    token = Token.from_db(connection.alias, token_fields, row[:len(token_fields)])
    token.user = User.from_db(connection.alias, user_fields, row[len(token_fields):])
    return token
