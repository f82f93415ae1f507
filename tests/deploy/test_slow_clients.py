"""Slow clients cannot freeze the production server, and sign-in throttles count across its processes.

Before the proxy, about 8 connections sending their bodies byte by byte held granian's 2 workers x 4 threads, with
no account needed (the login form was enough): every other request waited. Behind docker/compose.yml's nginx proxy
the bodies are read there, so the app's threads stay free.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
import urllib.request
from typing import Any

import pytest
from rest_framework.authtoken.models import Token

from tests.deploy.conftest import Proxy, Server, dockerfile_granian_env, get

pytestmark = pytest.mark.slow


def slow_connection(proxy: Proxy, path: str, *, body: bool) -> ssl.SSLSocket:
    """A TLS connection that sends a request's headers (or only their start) and then trickles."""
    raw = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    conn = Proxy.tls().wrap_socket(raw, server_hostname="localhost")
    if body:
        head = (f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                "Content-Length: 100000\r\n\r\nusername=")
    else:
        head = f"GET {path} HTTP/1.1\r\nHost: localhost\r\n"
    conn.sendall(head.encode())
    return conn


def test_slow_bodies_and_headers_do_not_hold_the_app_servers_threads(proxied_server, make_user):
    user = make_user("ada_annotator")
    token = Token.objects.create(user=user).key
    granian = dockerfile_granian_env()
    threads = int(granian["GRANIAN_WORKERS"]) * int(granian["GRANIAN_BLOCKING_THREADS"])
    assert get(proxied_server.url("/api/projects/"), token=token, context=Proxy.tls())[0] == 200

    # Twice as many slow clients as the app server has threads, on the sign-in form, the token API and the API.
    attackers = [slow_connection(proxied_server, "/accounts/login/", body=True) for _ in range(threads)]
    attackers += [slow_connection(proxied_server, "/api/auth/token/", body=True) for _ in range(threads // 2)]
    attackers += [slow_connection(proxied_server, "/api/projects/", body=False) for _ in range(threads // 2)]
    stop = threading.Event()

    def trickle() -> None:
        while not stop.is_set():
            for conn in attackers:
                try:
                    conn.send(b"x")
                except OSError:
                    pass
            stop.wait(0.5)

    dripper = threading.Thread(target=trickle, daemon=True)
    dripper.start()
    try:
        time.sleep(1.5)  # every slow request is in flight
        timings = []
        for _ in range(5):
            started = time.perf_counter()
            status, body = get(proxied_server.url("/api/projects/"), token=token, context=Proxy.tls(), timeout=10)
            timings.append(time.perf_counter() - started)
            assert status == 200, body[:200]
        assert max(timings) < 1.0, timings
    finally:
        stop.set()
        dripper.join()
        for conn in attackers:
            conn.close()


def test_the_proxy_states_the_client_and_scheme_the_app_believes(proxied_server):
    # A client's own X-Forwarded-Proto/-For are replaced by the proxy's: the app sees https from the proxy's word.
    request = urllib.request.Request(
        proxied_server.url("/api/auth/token/"), data=json.dumps({"username": "x", "password": "y"}).encode(),
        headers={"Content-Type": "application/json", "X-Forwarded-For": "203.0.113.1"}, method="POST",
    )
    answers = []
    for _ in range(3):
        try:
            with urllib.request.urlopen(request, context=Proxy.tls(), timeout=10) as response:  # noqa: S310
                answers.append(response.status)
        except urllib.error.HTTPError as error:
            answers.append(error.code)
    assert answers == [400, 400, 400]  # no HTTPS redirect: the proxy's X-Forwarded-Proto was believed


def sign_in(server: Server, username: str, *, forwarded_for: str) -> int:
    request = urllib.request.Request(
        server.url("/api/auth/token/"), data=json.dumps({"username": username, "password": "wrong"}).encode(),
        headers={"Content-Type": "application/json", "X-Forwarded-For": forwarded_for, "Connection": "close"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_token_sign_in_throttle_counts_across_processes_and_ignores_forwarded_for(production_server):
    # 10/minute for this server (SENTIO_TOKEN_SIGN_IN_RATE); each request on a new connection, so the kernel spreads
    # them over granian's worker processes; each claims another client address.
    answers = [sign_in(production_server, f"user{i}", forwarded_for=f"203.0.113.{i}") for i in range(25)]
    assert answers == [400] * 10 + [429] * 15, answers


def test_a_lockout_holds_across_processes(production_server, make_user: Any):
    make_user("lena_lead")
    answers = [sign_in(production_server, "lena_lead", forwarded_for=f"198.51.100.{i}") for i in range(10)]
    assert answers == [400] * 9 + [429]
