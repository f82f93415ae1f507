"""The client's address and scheme, trusted from the reverse proxy only.

Behind the proxy (docker/compose.yml), every request arrives from the proxy's address with the client's address in
``X-Forwarded-For`` and the scheme in ``X-Forwarded-Proto``. Those headers are believed only when the direct peer is
one of ``SENTIO_TRUSTED_PROXIES``; from anyone else they are removed, so a client cannot choose the address that
login lockouts and throttles count against, nor pretend its plain HTTP request was HTTPS.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from functools import cache

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase

# Headers a proxy sets; believed from a trusted proxy only.
FORWARDED_HEADERS = (
    "HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST", "HTTP_X_FORWARDED_PORT",
    "HTTP_X_REAL_IP", "HTTP_FORWARDED",
)
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@cache
def trusted_networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def _is_trusted(address: str, networks: Iterable[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(request: HttpRequest) -> str:
    """The one rule for "who is this client": ``REMOTE_ADDR`` as TrustedProxyMiddleware left it."""
    return str(request.META.get("REMOTE_ADDR", ""))


class TrustedProxyMiddleware:
    """First in MIDDLEWARE: from a trusted proxy, take the client's address from ``X-Forwarded-For`` (the right-most
    address that is not itself a trusted proxy) and keep ``X-Forwarded-Proto``; from anyone else drop both."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        meta = request.META
        networks = trusted_networks(tuple(settings.SENTIO_TRUSTED_PROXIES))
        if networks and _is_trusted(str(meta.get("REMOTE_ADDR", "")), networks):
            hops = [hop.strip() for hop in str(meta.get("HTTP_X_FORWARDED_FOR", "")).split(",") if hop.strip()]
            client = next((hop for hop in reversed(hops) if not _is_trusted(hop, networks)), None)
            if client is not None:
                meta["REMOTE_ADDR"] = client
        else:
            for header in FORWARDED_HEADERS:
                meta.pop(header, None)
        return self.get_response(request)
