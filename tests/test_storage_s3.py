"""Django storage on an S3-compatible server (moto's standalone server, started here as a subprocess)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import override_settings

from corpora.importing.audio import audio_delete, audio_probe, audio_store
from tests.fixtures.speech import SpeechFactory

REPO = Path(__file__).resolve().parents[1]
ACCESS_KEY = "sentio-test-access"
SECRET_KEY = "sentio-test-secret"
REGION = "us-east-1"

pytestmark = pytest.mark.services


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    bucket: str

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def storages(self, base: dict[str, Any]) -> dict[str, Any]:
        """STORAGES as platform/config/settings.py builds it for SENTIO_STORAGE=s3."""
        return {
            **base,
            "default": {
                "BACKEND": "storages.backends.s3.S3Storage",
                "OPTIONS": {
                    "bucket_name": self.bucket,
                    "endpoint_url": self.endpoint_url,
                    "region_name": REGION,
                    "access_key": ACCESS_KEY,
                    "secret_key": SECRET_KEY,
                    "default_acl": None,
                    "querystring_auth": True,
                    "signature_version": "s3v4",  # botocore would sign links with SigV2, which newer regions refuse
                    "file_overwrite": False,
                },
            },
        }

    def keys(self, prefix: str) -> list[str]:
        listing = self.client().list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return sorted(item["Key"] for item in listing.get("Contents", []))


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    log_path = tmp_path_factory.mktemp("moto") / "moto.log"
    port = _free_loopback_port()
    endpoint = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.fail(f"moto server exited with {process.returncode}: {log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"moto server did not answer on {endpoint} within 30 s: {log_path.read_text()[-2000:]}")
                time.sleep(0.2)
        server = S3Server(endpoint_url=endpoint, bucket=f"sentio-test-{uuid.uuid4().hex[:12]}")
        server.client().create_bucket(Bucket=server.bucket)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture
def s3_storage(s3_server: S3Server, settings) -> Iterator[S3Server]:  # type: ignore[no-untyped-def]
    # override_settings fires setting_changed, which resets django.core.files.storage.storages and default_storage.
    with override_settings(STORAGES=s3_server.storages(settings.STORAGES)):
        yield s3_server


@pytest.fixture(scope="session")
def speech(tmp_path_factory: pytest.TempPathFactory) -> SpeechFactory:
    return SpeechFactory(tmp_path_factory.mktemp("speech-s3"))


def test_storage_saves_opens_signs_and_deletes_on_s3(s3_storage: S3Server) -> None:
    from storages.backends.s3 import S3Storage

    name = default_storage.save("notes/greeting.txt", ContentFile("नमस्ते, S3".encode()))

    assert isinstance(default_storage._wrapped, S3Storage)
    assert name == "notes/greeting.txt"
    assert default_storage.exists(name)
    assert s3_storage.keys("notes/") == ["notes/greeting.txt"]
    with default_storage.open(name) as stored:
        assert stored.read().decode() == "नमस्ते, S3"

    url = default_storage.url(name)
    assert url.startswith(f"{s3_storage.endpoint_url}/{s3_storage.bucket}/notes/greeting.txt?")
    assert "X-Amz-Signature=" in url  # private bucket: links are signed, not public
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read().decode() == "नमस्ते, S3"

    # file_overwrite is off: a second save under the same name must not clobber the first.
    second = default_storage.save("notes/greeting.txt", ContentFile(b"other"))
    assert second != name and second.startswith("notes/greeting_")

    default_storage.delete(name)
    default_storage.delete(second)
    assert not default_storage.exists(name)
    assert s3_storage.keys("notes/") == []


@pytest.mark.django_db
def test_audio_store_and_read_back_through_s3(s3_storage: S3Server, speech: SpeechFactory) -> None:
    clip = speech.encode(speech.wav("hi"), "flac").read_bytes()

    name = audio_store(corpus_id=41, data=clip, name="clips/u1.flac")
    again = audio_store(corpus_id=41, data=clip, name="elsewhere/u1.flac")

    assert name == again
    assert s3_storage.keys("audio/41/") == [name]  # idempotent: one object, no name_XXXX duplicate
    with default_storage.open(name) as stored:
        read_back = stored.read()
    assert read_back == clip
    assert audio_probe(read_back, name=name) == audio_probe(clip, name="clips/u1.flac")

    audio_delete([name])
    assert s3_storage.keys("audio/41/") == []


@pytest.mark.slow
def test_settings_select_s3_from_the_environment(s3_server: S3Server, tmp_path: Path) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "SENTIO_", "DJANGO_")) and key not in ("SECRET_KEY", "ALLOWED_HOSTS")
    }
    env.update(
        SENTIO_DATA_DIR=str(tmp_path / "data"),
        SENTIO_STORAGE="s3",
        AWS_STORAGE_BUCKET_NAME=s3_server.bucket,
        AWS_S3_ENDPOINT_URL=s3_server.endpoint_url,
        AWS_S3_REGION_NAME=REGION,
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        PYTHONPATH=f"{REPO}{os.pathsep}{REPO / 'platform'}",
    )
    code = (
        "from django.core.files.base import ContentFile;"
        "from django.core.files.storage import default_storage as s;"
        "n = s.save('from-settings/hello.txt', ContentFile(b'settings path works'));"
        "print(type(s._wrapped).__name__, n, s.open(n).read().decode(), sep='|')"
    )
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "S3Storage|from-settings/hello.txt|settings path works"
    body = s3_server.client().get_object(Bucket=s3_server.bucket, Key="from-settings/hello.txt")["Body"].read()
    assert body == b"settings path works"
