"""The production web server (granian, as in docker/Dockerfile.web) serving config.wsgi: the short way answers
plain next/submit requests over real HTTP, and everything else reaches Django as before."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from rest_framework.authtoken.models import Token

from annotation.models import Annotation

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def server(transactional_db: None, tmp_path: Path) -> Iterator[int]:
    if connection.vendor != "postgresql":
        pytest.skip("the short way serves PostgreSQL deployments")
    db = connection.settings_dict
    database_url = f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    port = _free_port()
    env = {
        **os.environ, "DATABASE_URL": database_url, "PYTHONPATH": f"{REPO}:{REPO / 'platform'}",
        "DJANGO_SETTINGS_MODULE": "config.settings", "SENTIO_API_HOT_PATH": "1", "LOG_LEVEL": "WARNING",
    }
    log = (tmp_path / "granian.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "granian", "--interface", "wsgi", "config.wsgi:application", "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1", "--blocking-threads", "2", "--no-ws", "--log-level", "warning"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        for _ in range(300):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if process.poll() is not None:
                pytest.fail(f"granian exited: {(tmp_path / 'granian.log').read_text()}")
            time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def _request(port: int, method: str, path: str, token: str, body: Any = None,
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        all_headers = {"Authorization": f"Token {token}", "Host": "localhost", **(headers or {})}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            all_headers["Content-Type"] = "application/json"
        conn.request(method, path, payload, all_headers)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def test_granian_serves_the_short_way_and_django_alike(server, make_project, make_items, annotator):
    utterances = make_items(3)
    project = make_project(members=[annotator])
    token = Token.objects.create(user=annotator).key
    base = f"/api/projects/{project.pk}"

    status, headers, body = _request(server, "POST", f"{base}/next/", token)
    assert status == 200, body
    assert json.loads(body)["utterance"]["id"] == utterances[0].pk
    assert headers["content-type"] == "application/json" and "content-security-policy" in headers
    assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"

    client_id = str(uuid.uuid4())
    answer = {"client_id": client_id, "utterance": utterances[0].pk, "value": {"emotion": "joy"}, "next": True}
    status, _, body = _request(server, "POST", f"{base}/submit/", token, answer)
    assert status == 201, body
    assert json.loads(body)["next"]["utterance"]["id"] == utterances[1].pk
    status, _, body = _request(server, "POST", f"{base}/submit/", token, answer)  # a retry
    assert status == 200 and json.loads(body)["created"] is False

    # Not the plain case: Django answers, as before.
    bad = {**answer, "client_id": str(uuid.uuid4()), "utterance": utterances[1].pk, "value": {"emotion": "bored"}}
    status, _, body = _request(server, "POST", f"{base}/submit/", token, bad)
    assert status == 400 and "emotion" in json.loads(body)["value"]
    status, _, body = _request(server, "POST", f"{base}/submit/", "0" * 40, answer)
    assert status == 403
    status, _, body = _request(server, "GET", f"{base}/my-annotations/", token)
    assert status == 200 and json.loads(body)["count"] == 1
    status, _, _ = _request(server, "POST", f"{base}/next/", token, headers={"Host": "evil.example"})
    assert status == 400

    assert Annotation.objects.filter(project=project).count() == 1
