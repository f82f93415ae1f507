"""API token authentication with one plain SQL lookup, remembered for a few seconds.

DRF's ``TokenAuthentication`` builds an ORM query with a join for every request; on the annotators' hot path
that compile step cost as much as the rest of the request's database work. Same tokens, same errors.

An annotator sends the same token with every item, so each process keeps the user row of a valid token for
``API_TOKEN_CACHE_SECONDS`` (default 5; 0 turns it off): benchmarks/annotate_bench.py measured 9-18% more
submits/s with it. Deleting or re-assigning a token or saving a user (deactivating, say) clears this process's
memory at once and again when the transaction commits; a lookup that raced with the change is not remembered.
Other processes notice within those seconds, as does a change made without signals (``QuerySet.update``).
Unknown tokens are never remembered, and every request gets its own user object.
"""

from __future__ import annotations

import time
from functools import cache
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models.signals import post_delete, post_save
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token, TokenProxy

from config.db import fetchone_prepared

_REMEMBERED: dict[str, tuple[float, tuple[Any, ...]]] = {}  # token key -> (forget after, user row)
_REMEMBERED_MAX = 10_000
_changes = [0]  # bumped on every forget: a row read before a change must not be remembered after it


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


def _user_row(key: str) -> tuple[Any, ...] | None:
    seconds = settings.API_TOKEN_CACHE_SECONDS
    now = time.monotonic()
    remembered = _REMEMBERED.get(key)
    if remembered is not None and remembered[0] > now and seconds > 0:
        return remembered[1]
    changes_before = _changes[0]
    row = fetchone_prepared(_user_by_token_query()[0], [key])
    if row is not None and seconds > 0 and _changes[0] == changes_before:
        if len(_REMEMBERED) >= _REMEMBERED_MAX:
            _REMEMBERED.clear()
        _REMEMBERED[key] = (now + seconds, row)
    return row


def _forget() -> None:
    _changes[0] += 1
    _REMEMBERED.clear()


def remembered_tokens_forget(**_: object) -> None:
    """Signal receiver: a token or user changed, so nothing remembered may be trusted any more.

    Signals fire before the change commits, when other threads still read the old row; so forget again once
    it is committed (at once when there is no transaction).
    """
    _forget()
    transaction.on_commit(_forget)


def signals_connect() -> None:
    # TokenProxy is the model DRF's admin edits; its saves are not sent as Token's.
    for model in (Token, TokenProxy, get_user_model()):
        post_save.connect(remembered_tokens_forget, sender=model, dispatch_uid=f"token-cache-{model._meta.label}")
        post_delete.connect(remembered_tokens_forget, sender=model, dispatch_uid=f"token-cache-{model._meta.label}")


@cache
def _id_and_active_positions() -> tuple[int, int]:
    attnames = _user_by_token_query()[1]
    return attnames.index(get_user_model()._meta.pk.attname), attnames.index("is_active")


def active_user_id_for_token(key: str) -> int | None:
    """The id of the active user whose API token this is, or None (unknown token, inactive user)."""
    row = _user_row(key)
    if row is None:
        return None
    id_at, active_at = _id_and_active_positions()
    return row[id_at] if row[active_at] else None


class TokenAuthentication(authentication.TokenAuthentication):
    def authenticate_credentials(self, key: str) -> tuple[object, Token]:
        row = _user_row(key)
        if row is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        user = get_user_model().from_db(connection.alias, _user_by_token_query()[1], row)
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return user, Token(key=key, user=user)
