"""API token authentication: DRF's tokens, refused once they are older than ``settings.TOKEN_TTL``.

The token and its user are read from the database on every request (one prepared query,
``accounts.selectors.api_token_with_user_get``), so a revoked token, a changed password (accounts.services revokes
the tokens) or a deactivated user take effect at once in every process.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

from accounts.selectors import api_token_with_user_get
from accounts.services import api_token_expired


class ExpiringTokenAuthentication(TokenAuthentication):
    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        # DRF's checks and messages, on the token read by one prepared query instead of an ORM query per request.
        token = api_token_with_user_get(key=key)
        if token is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        if api_token_expired(token):
            token.delete()
            raise exceptions.AuthenticationFailed("Token has expired; sign in again for a new one.")
        return token.user, token
