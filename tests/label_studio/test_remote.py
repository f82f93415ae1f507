"""Importing straight from a running Label Studio (label-studio-sdk against a stand-in server on loopback, the one
part that cannot exist here), audio by URL and by file, and the SSRF guard in front of every fetch."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.management import CommandError, call_command

from annotation.models import Annotation
from config.outbound import OutboundRefused, outbound_addresses, outbound_get
from corpora.models import Utterance
from jobs.models import JobStatus
from tests.label_studio.conftest import AUDIO_CONFIG, wav_bytes

TOKEN = "ls-token-1234"


class FakeLabelStudio:
    """Answers the Label Studio API calls label-studio-sdk makes for an import, and serves uploaded audio."""

    def __init__(self, project: dict[str, Any], tasks: list[dict[str, Any]], files: dict[str, bytes]):
        self.project, self.tasks, self.files = project, tasks, files
        self.requests: list[tuple[str, str]] = []  # (path, Authorization header)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                parts = urlsplit(self.path)
                auth = self.headers.get("Authorization", "")
                outer.requests.append((self.path, auth))
                if parts.path == "/redirect-inside":
                    self._send(302, b"", headers={"Location": "http://10.255.255.1/secret"})
                    return
                if auth != f"Token {TOKEN}":
                    self._send(401, json.dumps({"detail": "Invalid token."}).encode(), "application/json")
                    return
                project_id = outer.project["id"]
                if parts.path == f"/api/projects/{project_id}/":
                    self._send(200, json.dumps(outer.project).encode(), "application/json")
                elif parts.path == f"/api/projects/{project_id}/export":
                    query = parse_qs(parts.query)
                    assert query.get("export_type") == ["JSON"] and query.get("download_all_tasks") == ["true"]
                    self._send(200, json.dumps(outer.tasks).encode(), "application/json")
                elif parts.path in outer.files:
                    self._send(200, outer.files[parts.path], "audio/wav")
                else:
                    self._send(404, json.dumps({"detail": "Not found."}).encode(), "application/json")

            def _send(self, code: int, body: bytes, kind: str = "text/plain",
                      headers: dict[str, str] | None = None) -> None:
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeLabelStudio:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def audio_project() -> Iterator[FakeLabelStudio]:
    tasks = []
    files = {}
    for i in range(4):
        path = f"/data/upload/7/abcd00{i}0-clip{i}.wav"
        files[path] = wav_bytes(0.3 + 0.1 * i, pitch=200 + 40 * i)
        tasks.append({"id": 70 + i, "data": {"audio": path, "transcript": f"clip {i}"}, "annotations": [
            {"id": 700 + 10 * i + k, "completed_by": user, "was_cancelled": False, "lead_time": 2.0,
             "created_at": "2024-05-01T12:00:00Z", "result": [
                 {"from_name": "emotion", "to_name": "audio", "type": "choices",
                  "value": {"choices": ["joy" if (i + k) % 3 else "anger"]}},
                 {"id": "s1", "from_name": "segments", "to_name": "audio", "type": "labels",
                  "value": {"start": 0.0, "end": 0.2, "channel": 0, "labels": ["joy"]}}]}
            for k, user in enumerate((1, 2, 3))], "predictions": []})
    project = {"id": 7, "title": "Call centre emotions", "label_config": AUDIO_CONFIG, "created_by": {"id": 1}}
    with FakeLabelStudio(project, tasks, files) as server:
        yield server


def test_the_guard_refuses_private_addresses_and_odd_urls(settings) -> None:
    settings.OUTBOUND_ALLOWED_HOSTS = []
    for url, reason in [
        ("http://127.0.0.1:8080/api", "non-public address 127.0.0.1"),
        ("http://localhost/", "non-public address"),
        ("http://10.1.2.3/", "non-public address 10.1.2.3"),
        ("http://169.254.169.254/latest/meta-data/", "non-public address 169.254.169.254"),
        ("http://[::1]/", "non-public address ::1"),
        ("http://[::ffff:127.0.0.1]/", "non-public address ::ffff:7f00:1"),
        ("http://0.0.0.0/", "non-public address 0.0.0.0"),
        ("file:///etc/passwd", "only http and https URLs are fetched"),
        ("gopher://example.org/", "only http and https URLs are fetched"),
        ("http://user:secret@example.org/", "carries a user name or password"),
        ("http://no-such-host.invalid/", "does not resolve"),
    ]:
        with pytest.raises(OutboundRefused) as refused:
            outbound_addresses(url)
        assert reason in str(refused.value), url
        assert "secret" not in str(refused.value)
    assert outbound_addresses("https://93.184.215.14/x")[2][0].is_global
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.0/8", "ls.internal"]
    assert str(outbound_addresses("http://127.0.0.1:8080/")[2][0]) == "127.0.0.1"
    with pytest.raises(OutboundRefused):
        outbound_addresses("http://10.1.2.3/")


def test_a_redirect_to_a_private_address_is_refused(settings, audio_project) -> None:
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    with pytest.raises(OutboundRefused, match="non-public address 10.255.255.1"):
        outbound_get(f"{audio_project.url}/redirect-inside", max_bytes=1000)
    with pytest.raises(OutboundRefused, match="more than the limit of 10"):
        outbound_get(f"{audio_project.url}/data/upload/7/abcd0000-clip0.wav", max_bytes=10,
                     headers={"Authorization": f"Token {TOKEN}"})


@pytest.mark.django_db
def test_import_from_a_running_label_studio_with_its_audio(settings, audio_project, monkeypatch) -> None:
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", TOKEN)
    out = StringIO()
    call_command("import_label_studio", "calls", "--url", audio_project.url, "--project-id", "7", "--language", "en",
                 "--create", "--name", "Calls", "--license", "CC-BY-4.0", "--resamples", "20", stdout=out)
    assert "fetched Label Studio project 7 ('Call centre emotions')" in out.getvalue()
    utterances = Utterance.objects.filter(corpus__slug="calls").order_by("external_id")
    assert [u.external_id for u in utterances] == [f"ls-task-{70 + i}" for i in range(4)]
    for i, utterance in enumerate(utterances):
        assert utterance.text == f"clip {i}" and utterance.audio.name.startswith(f"audio/{utterance.corpus_id}/")
        assert utterance.audio_duration_s == pytest.approx(0.3 + 0.1 * i, abs=1e-3)
        assert utterance.audio.read() == audio_project.files[f"/data/upload/7/abcd00{i}0-clip{i}.wav"]
    assert Annotation.objects.filter(utterance__corpus__slug="calls").count() == 12
    segments = Annotation.objects.filter(utterance__corpus__slug="calls").first().value["segments"]
    assert segments == [{"start": 0.0, "end": 0.2, "label": "joy"}]
    # Every request (the API and the uploaded audio) carried the token.
    assert {auth for _, auth in audio_project.requests} == {f"Token {TOKEN}"}
    assert sum(path.startswith("/data/upload/") for path, _ in audio_project.requests) == 4


@pytest.mark.django_db
def test_an_unlisted_private_server_or_a_bad_token_is_refused_before_anything_is_written(settings, audio_project,
                                                                                        monkeypatch) -> None:
    settings.OUTBOUND_ALLOWED_HOSTS = []
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", TOKEN)
    with pytest.raises(CommandError, match="url: .*non-public address 127.0.0.1"):
        call_command("import_label_studio", "calls", "--url", audio_project.url, "--project-id", "7",
                     "--create", "--license", "x", stdout=StringIO())
    assert audio_project.requests == []
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "wrong")
    with pytest.raises(CommandError, match="Label Studio answered 401: the token was refused"):
        call_command("import_label_studio", "calls", "--url", audio_project.url, "--project-id", "7",
                     "--create", "--license", "x", stdout=StringIO())
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", TOKEN)
    with pytest.raises(CommandError, match="Label Studio answered 404: there is no project 8"):
        call_command("import_label_studio", "calls", "--url", audio_project.url, "--project-id", "8",
                     "--create", "--license", "x", stdout=StringIO())
    assert not Utterance.objects.exists()


@pytest.mark.django_db
def test_task_audio_by_url_and_by_file_and_what_is_refused(settings, corpus, run_ls_import, audio_project,
                                                           tmp_path: Path) -> None:
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    folder = tmp_path / "uploads"
    (folder / "nested").mkdir(parents=True)
    (folder / "nested" / "clip9.wav").write_bytes(wav_bytes(0.5))
    (folder / "local.wav").write_bytes(wav_bytes(0.6))

    def task(i: int, audio: str) -> dict[str, Any]:
        return {"id": i, "data": {"audio": audio, "transcript": f"t{i}"}, "annotations": [
            {"id": i, "completed_by": 1, "result": [{"from_name": "emotion", "to_name": "audio", "type": "choices",
                                                     "value": {"choices": ["joy"]}}]}]}

    tasks = [
        task(1, f"{audio_project.url}/data/upload/7/abcd0000-clip0.wav?token=abc"),  # a URL: fetched (no token)
        task(2, "/data/upload/3/9f8e7d6c-clip9.wav"),  # an upload path: found in --audio-dir by its name
        task(3, "/data/local-files/?d=local.wav"),  # a local-files path: under --audio-dir
        task(4, "http://169.254.169.254/latest/meta-data/x.wav"),  # refused by the guard
        task(5, "s3://bucket/missing.wav"),  # not in the folder
    ]
    job = run_ls_import(corpus, tasks, config=AUDIO_CONFIG, audio_dir=str(folder), mode="skip_invalid")
    assert job.status == JobStatus.SUCCEEDED, job.message
    assert job.counts["utterances"] == 2 and job.counts["rejected_tasks"] == 3
    errors = {e.row: e.reason for e in job.errors.all()}
    assert "401 Unauthorized" in errors[1]  # the stand-in wants its token, which a plain URL does not get
    assert "non-public address 169.254.169.254" in errors[4]
    assert errors[5] == f"no file named 'missing.wav' in {folder}"
    durations = sorted(Utterance.objects.values_list("audio_duration_s", flat=True))
    assert durations == [pytest.approx(0.5, abs=1e-3), pytest.approx(0.6, abs=1e-3)]


@pytest.mark.django_db
def test_paths_need_the_folder_or_the_server(corpus, run_ls_import) -> None:
    tasks = [{"id": 1, "data": {"audio": "/data/upload/3/x.wav", "transcript": "t"}, "annotations": []}]
    job = run_ls_import(corpus, tasks, config=AUDIO_CONFIG)
    assert job.status == JobStatus.FAILED
    [error] = job.errors.all()
    assert error.column == "data.audio" and "give the folder that holds the files (--audio-dir)" in error.reason

