"""A real Label Studio on loopback, for the import benchmark and the ML-backend check.

Installed from PyPI into its own virtualenv (``var/label-studio/venv``; Label Studio pins its own Django, so it
cannot share Sentio's), run with its documented pip set-up (``label-studio start``: Django's server, one process)
on its own PostgreSQL database, or SQLite, with a user and a legacy API token made at start. Nothing here imports
Label Studio or Django: it is driven over HTTP, as a user's scripts would.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

REPO = Path(__file__).resolve().parents[1]
VERSION = "1.23.0"
HOME = REPO / "var" / "label-studio"
VENV = HOME / "venv"
EMAIL = "bench@example.com"


def installed() -> bool:
    return (VENV / f".installed-{VERSION}").exists()


def install() -> float:
    """Install Label Studio into its virtualenv unless it is there; the seconds it took (0.0 when it was there)."""
    if installed():
        return 0.0
    started = time.perf_counter()
    HOME.mkdir(parents=True, exist_ok=True)
    base_python = getattr(sys, "_base_executable", sys.executable)  # not this virtualenv's python: its own venv
    subprocess.run([base_python, "-m", "venv", "--clear", str(VENV)], check=True)
    subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", f"label-studio=={VERSION}"], check=True)
    (VENV / f".installed-{VERSION}").touch()
    return time.perf_counter() - started


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _postgres_create(url: str, name: str) -> dict[str, str]:
    """Drop and create database ``name`` on the server of ``url`` (a postgres:// URL); Label Studio's env for it."""
    import psycopg

    parts = urlsplit(url)
    admin = dict(host=parts.hostname or "127.0.0.1", port=parts.port or 5432, user=parts.username or "postgres",
                 password=parts.password or None, dbname="postgres", autocommit=True)
    with psycopg.connect(**admin) as conn:  # type: ignore[arg-type]
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return {"DJANGO_DB": "default", "POSTGRE_NAME": name, "POSTGRE_USER": str(admin["user"]),
            "POSTGRE_PASSWORD": parts.password or "", "POSTGRE_HOST": str(admin["host"]),
            "POSTGRE_PORT": str(admin["port"])}


class LabelStudio:
    """A started Label Studio: ``url``, ``token``, ``api()``, and the memory and CPU of its processes."""

    def __init__(self, process: subprocess.Popen[bytes], url: str, token: str, log: Path):
        self.process, self.url, self.token, self.log = process, url, token, log
        self.http = httpx.Client(base_url=url, headers={"Authorization": f"Token {token}"}, timeout=3600)

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(f"Label Studio {method} {path}: {response.status_code} {response.text[:500]}")
        return response.json() if response.content else None

    def _pids(self) -> list[int]:
        """The server and its children (its process group)."""
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if os.getpgid(int(entry.name)) == self.process.pid:
                        pids.append(int(entry.name))
                except (ProcessLookupError, PermissionError):
                    continue
        return pids

    def rss_kb(self) -> int:
        total = 0
        for pid in self._pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                continue
        return total

    def cpu_s(self) -> float:
        total = 0.0
        for pid in self._pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total


@contextmanager
def label_studio(*, database_url: str = "", database_name: str = "sentio_label_studio",
                 start_timeout: float = 900, env: dict[str, str] | None = None) -> Iterator[LabelStudio]:
    """Start Label Studio on 127.0.0.1 with a fresh data folder and database (PostgreSQL when ``database_url`` names
    one, else SQLite); stop it (its whole process group) on exit."""
    HOME.mkdir(parents=True, exist_ok=True)
    data = Path(tempfile.mkdtemp(prefix="data-", dir=HOME))  # its own: two may run side by side
    port = _free_port()
    token = secrets.token_hex(20)
    env = {**(env or {}), "PATH": f"{VENV / 'bin'}:/usr/bin:/bin", "HOME": str(HOME), "LANG": "C.UTF-8",
           "LABEL_STUDIO_BASE_DATA_DIR": str(data), "DATA_UPLOAD_MAX_MEMORY_SIZE": str(2 * 1024 ** 3),
           "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED": "false", "SENTRY_DSN": "", "FRONTEND_SENTRY_DSN": "",
           "COLLECT_ANALYTICS": "false", "DJANGO_DB": "sqlite"}
    if database_url.startswith("postgres"):
        env.update(_postgres_create(database_url, database_name))
    log = data / "server.log"
    command = [str(VENV / "bin" / "label-studio"), "start", "--no-browser", "--internal-host", "127.0.0.1",
               "--port", str(port), "--data-dir", str(data), "--username", EMAIL,
               "--password", secrets.token_hex(12), "--user-token", token, "--enable-legacy-api-token",
               "--log-level", "ERROR"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                   cwd=str(HOME))
    server = LabelStudio(process, f"http://127.0.0.1:{port}", token, log)
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"Label Studio exited ({process.returncode}); see {log}")
            try:
                if httpx.get(f"{server.url}/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"Label Studio did not answer /health in {start_timeout:.0f} s; see {log}")
            time.sleep(2)
        yield server
    finally:
        server.http.close()
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if process.returncode is not None and log.exists():
            shutil.copyfile(log, HOME / "server.log")  # the last run's log stays for reading
        shutil.rmtree(data, ignore_errors=True)
