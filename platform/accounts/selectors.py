"""Reads for accounts: the user's API tokens as the tokens page shows them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token

from accounts.services import api_token_expired


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
