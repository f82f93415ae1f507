"""Outbound HTTP to URLs that users give (a Label Studio server, media links in imported tasks): the SSRF guard.

A URL is fetched only when it is http(s), carries no user name or password, and every address its host resolves
to is a public (globally routable) one, unless the host, the address or a network holding it is listed in
``OUTBOUND_ALLOWED_HOSTS`` (e.g. a Label Studio on this machine). The connection then goes to the very address
that was checked, so a second DNS answer cannot point it elsewhere (TLS still verifies the host's own name);
redirects are checked hop by hop like the first URL, and bodies are read up to a limit.

Every server-side fetch of a user-given URL goes through ``outbound_client`` (or ``outbound_get``).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
DEFAULT_TIMEOUT_SECONDS = 30.0
MAX_REDIRECTS = 5


class OutboundRefused(ValueError):
    """A URL the guard will not fetch, or a fetch that failed; str() names the URL and says why."""

    def __init__(self, url: str, reason: str):
        self.url = url
        self.reason = reason
        super().__init__(f"{_shown(url)}: {reason}")


def _shown(url: str) -> str:
    """The URL without credentials or query string, which may carry passwords, signatures or tokens."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return url.split("?")[0][:200]
    host = parts.netloc.rsplit("@", 1)[-1]
    return f"{parts.scheme}://{host}{parts.path}"[:500]


@dataclass(frozen=True)
class _Allowed:
    hosts: frozenset[str]
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]


def _allowed(entries: Iterable[str]) -> _Allowed:
    hosts: set[str] = set()
    networks = []
    for entry in entries:
        text = entry.strip().lower()
        if not text:
            continue
        try:
            networks.append(ipaddress.ip_network(text.strip("[]"), strict=False))
        except ValueError:
            hosts.add(text)
    return _Allowed(frozenset(hosts), tuple(networks))


def _public(address: IPAddress) -> bool:
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        return _public(mapped)
    return address.is_global and not address.is_multicast


def outbound_addresses(url: str) -> tuple[str, int, list[IPAddress]]:
    """(host, port, the addresses a fetch of ``url`` may connect to), or OutboundRefused saying why none."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise OutboundRefused(url, "only http and https URLs are fetched")
    if parts.username is not None or parts.password is not None:
        raise OutboundRefused(url, "the URL carries a user name or password; give credentials separately")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise OutboundRefused(url, "the URL names no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise OutboundRefused(url, "the URL's port is not a number from 0 to 65535") from None
    allowed = _allowed(getattr(settings, "OUTBOUND_ALLOWED_HOSTS", []))
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        candidates = [literal]
    else:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise OutboundRefused(url, f"the host {host!r} does not resolve ({exc})") from None
        candidates = list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos))
    host_allowed = host in allowed.hosts
    refused = [a for a in candidates
               if not (host_allowed or _public(a) or any(a in network for network in allowed.networks))]
    if refused:
        # All or nothing: a host with one private address among public ones is a rebinding trick.
        raise OutboundRefused(url, f"{host} resolves to the non-public address {refused[0]}; only public addresses "
                                   "are fetched unless SENTIO_OUTBOUND_ALLOWED_HOSTS lists the host or its network")
    if not candidates:
        raise OutboundRefused(url, f"the host {host!r} has no address")
    return host, port, candidates


class GuardedTransport(httpx.BaseTransport):
    """Checks every request's URL and connects to the checked address (the Host header and TLS name stay the
    host's). Redirects come back to the client, which sends the next hop through here again."""

    def __init__(self, **transport_options: Any):
        self._inner = httpx.HTTPTransport(**transport_options)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        host, _port, addresses = outbound_addresses(url)
        address = addresses[0]
        literal = f"[{address}]" if address.version == 6 else str(address)
        if request.url.host != str(address):
            request.headers["Host"] = request.url.netloc.decode("ascii")
            if request.url.scheme == "https":
                request.extensions = {**request.extensions, "sni_hostname": host}
            request.url = request.url.copy_with(host=literal.strip("[]"))
        try:
            return self._inner.handle_request(request)
        except httpx.TransportError as exc:
            raise OutboundRefused(url, f"the request failed ({type(exc).__name__}: {exc})") from None

    def close(self) -> None:
        self._inner.close()


def outbound_client(*, timeout: float = DEFAULT_TIMEOUT_SECONDS, headers: Mapping[str, str] | None = None) -> httpx.Client:
    """An httpx client whose every request (redirects included) passes the guard; no proxy from the environment."""
    return httpx.Client(transport=GuardedTransport(), timeout=timeout, follow_redirects=True,
                        max_redirects=MAX_REDIRECTS, headers=dict(headers or {}), trust_env=False)


def outbound_get(url: str, *, max_bytes: int, headers: Mapping[str, str] | None = None,
                 timeout: float = DEFAULT_TIMEOUT_SECONDS) -> bytes:
    """The body of a GET of ``url`` (at most ``max_bytes``), or OutboundRefused saying why not."""
    with outbound_client(timeout=timeout, headers=headers) as client:
        try:
            with client.stream("GET", url) as response:
                if response.status_code != 200:
                    raise OutboundRefused(url, f"the server answered {response.status_code} {response.reason_phrase}")
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > max_bytes:
                    raise OutboundRefused(url, f"is {int(declared)} bytes, more than the limit of {max_bytes}")
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > max_bytes:
                        raise OutboundRefused(url, f"is more than the limit of {max_bytes} bytes")
                return bytes(body)
        except httpx.TooManyRedirects:
            raise OutboundRefused(url, f"more than {MAX_REDIRECTS} redirects") from None
        except httpx.HTTPError as exc:
            raise OutboundRefused(url, f"the request failed ({type(exc).__name__}: {exc})") from None
