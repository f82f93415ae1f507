"""API token authentication with one plain SQL lookup.

DRF's ``TokenAuthentication`` builds an ORM query with a join for every request; on the annotators' hot path
that compile step cost as much as the rest of the request's database work. Same tokens, same errors.
"""

from __future__ import annotations

from functools import cache

from django.contrib.auth import get_user_model
from django.db import connection
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

from config.db import fetchone_prepared


@cache
def _user_by_token_query() -> tuple[str, list[str]]:
    """The lookup's SQL and the user fields it selects (built once: the models don't change while running)."""
    user_model = get_user_model()
    fields = user_model._meta.concrete_fields
    columns = ", ".join(f"u.{connection.ops.quote_name(str(field.column))}" for field in fields)
    sql = (
        f"SELECT {columns} FROM {Token._meta.db_table} t "  # noqa: S608 - identifiers from the model, key bound
        f"JOIN {user_model._meta.db_table} u ON u.{user_model._meta.pk.column} = t.user_id WHERE t.key = %s"
    )
    return sql, [field.attname for field in fields]


class TokenAuthentication(authentication.TokenAuthentication):
    def authenticate_credentials(self, key: str) -> tuple[object, Token]:
        sql, attnames = _user_by_token_query()
        row = fetchone_prepared(sql, [key])
        if row is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        user = get_user_model().from_db(connection.alias, attnames, row)
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return user, Token(key=key, user=user)
