"""Token sign-in for scripts: POST a username and password, get the token to send as
``Authorization: Token <key>``."""

from __future__ import annotations

from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.throttling import AnonRateThrottle


class TokenObtainView(ObtainAuthToken):
    # Password guessing is throttled per client address (DEFAULT_THROTTLE_RATES["anon"]).
    throttle_classes = [AnonRateThrottle]
