"""The embedded default end to end: SQLite, local files and a Celery worker on the folder broker, as the README's
first command runs them, driven over HTTP as a lead and two annotators would.

It runs in every suite (whatever database the suite itself uses): the server and the worker are processes of their
own, with no database or broker in their environment, so they fall back to the embedded default.
"""

from __future__ import annotations

import csv
import io
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 180.0
JOB_TIMEOUT_S = 300.0
ROWS = 1000
SERVICE_VARIABLES = {"DATABASE_URL", "CELERY_BROKER_URL", "SENTIO_STORAGE", "SENTIO_MODE", "SENTIO_TEST_DB_NAME",
                     "SENTIO_CELERY_KEY_PREFIX"}

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Embedded:
    """A web server and a worker on one data folder, with no service in their environment."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self.env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARIABLES}
        self.env.update(SENTIO_DATA_DIR=str(data_dir), PYTHONPATH=f"{REPO}{os.pathsep}{REPO / 'platform'}",
                        SENTIO_AGREEMENT_SYNC_MAX_ANNOTATIONS="0")  # agreement as a job, on the worker
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def manage(self, *args: str) -> str:
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=self.env, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, f"manage.py {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def start(self, name: str, args: list[str]) -> None:
        with (self.data_dir / f"{name}.log").open("ab") as log:
            self.processes[name] = subprocess.Popen(args, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                                    start_new_session=True)

    def log(self, name: str) -> str:
        path = self.data_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def logs(self) -> str:
        return "\n".join(f"--- {name}.log (tail) ---\n{self.log(name)[-3000:]}" for name in self.processes)

    def wait(self, check: Callable[[], Any], describe: Callable[[], str], timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            dead = [name for name, proc in self.processes.items() if proc.poll() is not None]
            if dead or time.monotonic() > deadline:
                why = f"{dead[0]} exited" if dead else f"not within {timeout:.0f} s"
                raise AssertionError(f"{why}; last seen: {describe()}\n{self.logs()}")
            time.sleep(0.2)

    def stop(self) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.processes.values():
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


class Client:
    def __init__(self, embedded: Embedded, username: str, password: str):
        self.embedded = embedded
        self.session = requests.Session()
        response = self.session.post(f"{embedded.base}/api/auth/token/",
                                     json={"username": username, "password": password}, timeout=60)
        assert response.status_code == 200, response.text
        self.session.headers["Authorization"] = f"Token {response.json()['token']}"

    def call(self, method: str, path: str, expect: int | tuple[int, ...] = 200, **kwargs: Any) -> Any:
        response = self.session.request(method, f"{self.embedded.base}{path}", timeout=120, **kwargs)
        allowed = (expect,) if isinstance(expect, int) else expect
        assert response.status_code in allowed, f"{method} {path}: {response.status_code} {response.text[:500]}"
        return response.json() if response.content and "json" in response.headers.get("Content-Type", "") else response

    def job(self, job_id: int, path: str | None = None) -> dict[str, Any]:
        url = path or f"/api/jobs/{job_id}/"
        last: dict[str, Any] = {}

        def finished() -> dict[str, Any] | None:
            last.update(self.call("GET", url))
            return dict(last) if last["status"] in ("succeeded", "failed", "cancelled") else None

        return self.embedded.wait(finished, lambda: f"job {job_id}: {last}", JOB_TIMEOUT_S)  # type: ignore[no-any-return]


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[Embedded]:
    site = Embedded(tmp_path)
    site.manage("migrate", "--noinput", "-v", "0")
    site.manage("shell", "-c", (
        "from django.contrib.auth.models import User\n"
        "User.objects.create_user('lead', password='lead-pass-123')\n"
        "User.objects.create_user('asha', password='asha-pass-123')\n"
        "User.objects.create_user('bilal', password='bilal-pass-123')\n"))
    site.start("worker", [sys.executable, "-m", "celery", "-A", "config", "worker", "-B", "-Q", "default,gpu,llm",
                          "--concurrency", "1", "--loglevel", "INFO", "--schedule", str(tmp_path / "beat-schedule")])
    site.start("web", [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{site.port}"])
    try:
        site.wait(lambda: "ready." in site.log("worker"), lambda: "the worker to say ready.", START_TIMEOUT_S)
        site.wait(lambda: _answers(site.base), lambda: f"{site.base} to answer", START_TIMEOUT_S)
        yield site
    finally:
        site.stop()


def _answers(base: str) -> bool:
    try:
        return requests.get(f"{base}/api/", timeout=5).status_code in (200, 401, 403)
    except requests.RequestException:
        return False


def _csv(rows: int) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", "text"])
    for i in range(rows):
        writer.writerow([f"u{i:04d}", f"utterance number {i}: the weather is {'fine' if i % 2 else 'awful'} today"])
    return out.getvalue().encode()


def test_main_path_on_the_embedded_default(embedded: Embedded) -> None:
    """Import through the folder-broker worker → annotate → agreement → export, all on SQLite."""
    lead = Client(embedded, "lead", "lead-pass-123")
    corpus = lead.call("POST", "/api/corpora/", 201, json={"name": "Embedded", "license": "CC0-1.0"})

    # Import: a 1,000-row CSV through the worker.
    job = lead.call("POST", f"/api/corpora/{corpus['id']}/imports/", 202,
                    files={"files": ("rows.csv", _csv(ROWS), "text/csv")},
                    data={"options": '{"mapping": {"text": "text", "external_id": "id"}, "language": "en"}'})
    imported = lead.job(job["id"])
    assert imported["status"] == "succeeded", imported["message"]
    assert imported["counts"]["created"] == ROWS and imported["progress_done"] == imported["progress_total"]
    assert lead.call("GET", f"/api/utterances/?corpus={corpus['id']}")["count"] == ROWS
    # Ids beyond 64 bits are a 400 on SQLite too (it cannot even hold them), not a 500.
    lead.call("GET", f"/api/utterances/?corpus={'9' * 30}", 400)
    lead.call("GET", f"/api/annotations/?project={'9' * 30}", 400)

    # A project with two annotators, each labelling the same first items.
    schema = lead.call("POST", "/api/schemas/", 201, json={"name": "Weather mood", "slug": "weather-mood", "questions": [
        {"key": "emotion", "type": "single_choice", "labels": ["joy", "sadness"], "required": True}]})
    project = lead.call("POST", "/api/projects/", 201, json={
        "name": "Moods", "corpus": corpus["id"], "schema_version": schema["versions"][0]["id"], "overlap": 2})
    for username in ("asha", "bilal"):
        lead.call("POST", f"/api/projects/{project['id']}/memberships/", 202,
                  json={"username": username, "role": "annotator"})
    for username, password, agree in (("asha", "asha-pass-123", True), ("bilal", "bilal-pass-123", False)):
        annotator = Client(embedded, username, password)
        for invitation in annotator.call("GET", "/api/invitations/")["results"]:  # added by invitation they accept
            annotator.call("POST", f"/api/invitations/{invitation['id']}/accept/", 201)
        for n in range(8):
            item = annotator.call("POST", f"/api/projects/{project['id']}/next/")["utterance"]
            label = "sadness" if "awful" in item["text"] else "joy"
            if not agree and n % 4 == 0:
                label = "joy" if label == "sadness" else "sadness"
            annotator.call("POST", f"/api/projects/{project['id']}/submit/", 201, json={
                "client_id": str(uuid.uuid4()), "utterance": item["id"], "value": {"emotion": label}})

    # Agreement, computed by a job on the worker.
    started = lead.call("GET", f"/api/projects/{project['id']}/agreement/?refresh=1", 202)
    measured = lead.job(started["job"]["id"])
    assert measured["status"] == "succeeded", measured["message"]
    agreement = lead.call("GET", f"/api/projects/{project['id']}/agreement/")
    assert agreement["report"] is not None and agreement["report_annotation_count"] == 16

    # Export, by a job on the worker, and a download.
    export = lead.call("POST", f"/api/projects/{project['id']}/exports/", 202, json={"formats": ["jsonl"]})
    exported = lead.job(export["id"], f"/api/projects/{project['id']}/exports/{export['id']}/")
    assert exported["status"] == "succeeded", exported["message"]
    files = [f for f in exported["files"] if f["format"] == "jsonl"]
    # Every annotated item once, but the two 1-1 ties: they wait for a reviewer (no gold label is made up).
    assert sum(f.get("rows") or 0 for f in files) == 6
    download = lead.call("GET", files[0]["download_url"].removeprefix(embedded.base), (200, 302))
    assert download.content.count(b"\n") == files[0]["rows"]

    # No write waited on a lock the whole time (the import used to stall for the busy timeout).
    assert "database is locked" not in embedded.log("worker") + embedded.log("web")
