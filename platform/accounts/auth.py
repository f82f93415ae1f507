"""API token authentication: DRF's tokens, refused once they are older than ``settings.TOKEN_TTL``.

DRF reads the token and its user from the database on every request, so a revoked token, a changed password
(accounts.services revokes the tokens) or a deactivated user take effect at once in every process.
"""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

from accounts.services import api_token_expired


class ExpiringTokenAuthentication(TokenAuthentication):
    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        user, token = super().authenticate_credentials(key)
        if api_token_expired(token):
            token.delete()
            raise exceptions.AuthenticationFailed("Token has expired; sign in again for a new one.")
        return user, token
