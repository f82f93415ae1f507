"""The README's first command: the embedded default (SQLite, local files, broker-less worker) with the demo."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _embedded_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "SENTIO_STORAGE", "SENTIO_MODE", "SENTIO_TEST_DB_NAME"}}
    env["SENTIO_DATA_DIR"] = str(data_dir)
    env["PYTHONPATH"] = f"{REPO}{os.pathsep}{REPO / 'platform'}"
    return env


def _manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["python", "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_demo_installs_on_sqlite_with_speech_and_right_to_left_text(tmp_path):
    env = _embedded_env(tmp_path)
    assert _manage(env, "migrate", "--noinput").returncode == 0
    first = _manage(env, "sentio_demo")
    assert first.returncode == 0, first.stderr
    assert "16 utterances" in first.stdout and "audio clips" in first.stdout
    again = _manage(env, "sentio_demo")  # idempotent
    assert again.returncode == 0, again.stderr
    check = _manage(env, "shell", "-c", (
        "from corpora.models import Utterance; from annotation.models import Membership;"
        "u = Utterance.objects.filter(corpus__slug='sentio-demo');"
        "print(u.count(), u.exclude(audio='').count(), sorted(set(u.filter(language__direction='rtl').values_list('language__code', flat=True))),"
        " Membership.objects.filter(project__corpus__slug='sentio-demo').count())"
    ))
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip().splitlines()[-1] == "16 7 ['ar', 'he', 'ur'] 4"
    assert (tmp_path / "sentio.sqlite3").exists() and any((tmp_path / "media" / "audio").rglob("*.wav"))


def test_demo_is_refused_in_production(tmp_path):
    env = _embedded_env(tmp_path)
    env.update({"SENTIO_MODE": "production", "SECRET_KEY": "demo-test-" + "x7Qp9Lm2Vr5Tz8Nc4Bw6" * 3,
                "ALLOWED_HOSTS": "sentio.example", "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/sentio",
                "CELERY_BROKER_URL": "redis://127.0.0.1:6379/14", "SENTIO_CACHE_URL": "redis://127.0.0.1:6379/14"})
    result = _manage(env, "sentio_demo")
    assert result.returncode != 0 and "refused when SENTIO_MODE=production" in result.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_readme_demo_command_serves_the_site_and_starts_the_worker(tmp_path):
    port = _free_port()
    env = _embedded_env(tmp_path)
    env["SENTIO_PORT"] = str(port)
    log = (tmp_path / "demo.log").open("wb")
    proc = subprocess.Popen([str(REPO / "scripts" / "demo")], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        body = ""
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                    body = response.read().decode()
                    break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail((tmp_path / "demo.log").read_text())
                time.sleep(1)
        assert "Sentio" in body
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/docs/", timeout=10) as response:
            assert response.status == 200
        deadline = time.monotonic() + 120
        worker_log = tmp_path / "worker.log"
        while time.monotonic() < deadline and "ready." not in (worker_log.read_text() if worker_log.exists() else ""):
            time.sleep(1)
        assert "ready." in worker_log.read_text()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
