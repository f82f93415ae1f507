"""Token sign-in for scripts: POST a username and password, get the token to send as
``Authorization: Token <key>``. Tokens expire (``SENTIO_TOKEN_TTL_DAYS``) and users revoke them on /accounts/tokens/."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle

from accounts.services import api_token_issue

LOCKED_OUT = "Too many wrong passwords for this user from your address; try again later."


class TokenSignInSerializer(AuthTokenSerializer):
    """DRF's, with the lengths the sign-in form has: an over-long user name is a 400 before any password check (the
    lockout table stores it in 255 characters: a 500 the production fuzz run found)."""

    username = serializers.CharField(label="Username", max_length=150, write_only=True)
    password = serializers.CharField(label="Password", max_length=4096, style={"input_type": "password"},
                                     trim_whitespace=False, write_only=True)


class TokenObtainView(ObtainAuthToken):
    serializer_class = TokenSignInSerializer
    # Password guessing: throttled per client address across processes (the shared cache), and django-axes locks a
    # user name out for an address after SENTIO_LOGIN_FAILURE_LIMIT wrong passwords.
    throttle_classes = [AnonRateThrottle]

    @extend_schema(
        responses={
            200: inline_serializer("TokenOut", {"token": serializers.CharField()}),
            400: OpenApiResponse(description="Wrong user name or password, naming the field"),
            429: OpenApiResponse(description="Throttled, or locked out after too many wrong passwords"),
        },
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        try:
            serializer.is_valid(raise_exception=True)
        except ValidationError:
            # django-axes refused to check the password (it marks the request; AxesMiddleware sees only Django's).
            if getattr(request, "axes_locked_out", False):
                return Response({"detail": LOCKED_OUT}, status=status.HTTP_429_TOO_MANY_REQUESTS)
            raise
        token = api_token_issue(user=serializer.validated_data["user"])
        return Response({"token": token.key})
