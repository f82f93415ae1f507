"""Receivers of django.contrib.auth's saves: the one place every password change passes (sign-in forms, admin,
manage.py changepassword, password resets), so API tokens are rotated there (accounts.services decides)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User

from accounts.services import api_tokens_revoke_if_credentials_changed

CREDENTIAL_FIELDS = {"password", "is_active"}


def user_pre_save(sender: type[User], instance: User, update_fields: Any = None, **kwargs: Any) -> None:
    if update_fields is not None and not CREDENTIAL_FIELDS & set(update_fields):
        return  # e.g. last_login at every sign-in: no read of the stored row
    api_tokens_revoke_if_credentials_changed(user=instance)
