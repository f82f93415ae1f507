"""The production server as the web image runs it: granian with the Dockerfile's GRANIAN_* settings and production
Django settings, started on loopback against the test database; optionally behind the compose file's nginx proxy
(docker/nginx/sentio.conf.template rendered as the nginx image would), with a self-signed certificate."""

from __future__ import annotations

import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

REPO = Path(__file__).resolve().parents[2]
SECRET_KEY = "k3y-for-deploy-tests-only-" + "x7Qp9Lm2Vr5Tz8Nc4Bw6" * 3


def dockerfile_granian_env() -> dict[str, str]:
    """The GRANIAN_* variables the web image sets (docker/Dockerfile.web), so the test runs its very settings."""
    text = (REPO / "docker" / "Dockerfile.web").read_text()
    return dict(re.findall(r"^\s+(GRANIAN_[A-Z0-9_]+)=(\S+?)\s*\\?$", text, flags=re.MULTILINE))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on {port} within {timeout} s")


def database_url() -> str:
    db = settings.DATABASES["default"]
    assert "postgresql" in db["ENGINE"], "production mode needs PostgreSQL"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def redis_url() -> str:
    url = str(settings.CELERY_BROKER_URL)
    if not url.startswith("redis://"):
        pytest.skip("the production server needs Redis (run ./scripts/test, which sets CELERY_BROKER_URL)")
    return url


@dataclass
class Server:
    port: int
    process: subprocess.Popen[bytes]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def clear_throttles(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter("sentio:*throttle*"))
    if keys:
        client.delete(*keys)


def start_granian(tmp_path: Path, **overrides: str) -> Server:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRANIAN_", "DJANGO_ALLOW_ASYNC"))}
    env.update(dockerfile_granian_env())
    env.update(
        SENTIO_MODE="production", SECRET_KEY=SECRET_KEY, ALLOWED_HOSTS="127.0.0.1,localhost",
        DATABASE_URL=database_url(), CELERY_BROKER_URL=redis_url(), SENTIO_CACHE_URL=redis_url(),
        SENTIO_STORAGE="local", SENTIO_DATA_DIR=str(tmp_path / "data"), DJANGO_SETTINGS_MODULE="config.settings",
        PYTHONPATH=f"{REPO}{os.pathsep}{REPO / 'platform'}", GRANIAN_LOG_ACCESS_ENABLED="false",
        SENTIO_TEST_DB_NAME="", **overrides,
    )
    clear_throttles(env["SENTIO_CACHE_URL"])
    log = (tmp_path / f"granian-{port}.log").open("wb")
    process = subprocess.Popen(  # the web image's command, on loopback
        [sys.executable, "-m", "granian", "config.wsgi:application", "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, process, "granian")
    except BaseException:
        stop(process)
        raise
    return Server(port=port, process=process)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class Proxy:
    port: int
    server: Server

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    @staticmethod
    def tls() -> ssl.SSLContext:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # the test's self-signed certificate
        return context


def render_proxy_config(tmp_path: Path, values: dict[str, str]) -> Path:
    """The compose file's template with the nginx image's envsubst semantics: only ${SENTIO_*} are replaced."""
    template = (REPO / "docker" / "nginx" / "sentio.conf.template").read_text()
    rendered = re.sub(r"\$\{(SENTIO_[A-Z_]+)\}", lambda m: values[m.group(1)], template)
    site = tmp_path / "sentio.conf"
    site.write_text(rendered)
    temp = tmp_path / "nginx-temp"
    temp.mkdir()
    main = tmp_path / "nginx.conf"
    user = "user root;\n" if os.geteuid() == 0 else ""
    main.write_text(
        f"{user}worker_processes 1;\npid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/nginx-error.log warn;\n"
        "events { worker_connections 1024; }\n"
        f"http {{\n access_log off;\n client_body_temp_path {temp}/body;\n proxy_temp_path {temp}/proxy;\n"
        f" fastcgi_temp_path {temp}/fastcgi;\n uwsgi_temp_path {temp}/uwsgi;\n scgi_temp_path {temp}/scgi;\n"
        f" include {site};\n}}\n"
    )
    return main


@pytest.fixture
def production_server(transactional_db: Any, tmp_path: Path) -> Iterator[Server]:
    """granian alone, plain HTTP, no proxy trusted (clients talk to it directly)."""
    server = start_granian(tmp_path, SECURE_SSL_REDIRECT="false", SENTIO_TOKEN_SIGN_IN_RATE="10/minute")
    try:
        yield server
    finally:
        stop(server.process)


@pytest.fixture
def proxied_server(transactional_db: Any, tmp_path: Path) -> Iterator[Proxy]:
    """granian behind the compose file's nginx proxy, which terminates TLS; the proxy (loopback) is trusted."""
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx is None:
        pytest.fail("nginx is not installed (scripts/test installs the Debian package)")
    server = start_granian(tmp_path, SENTIO_TRUSTED_PROXIES="127.0.0.1")
    process = None
    try:
        tls = tmp_path / "tls"
        tls.mkdir()
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
             "-keyout", str(tls / "privkey.pem"), "-out", str(tls / "fullchain.pem")],
            check=True, capture_output=True,
        )
        http_port, https_port = free_port(), free_port()
        config = render_proxy_config(tmp_path, {
            "SENTIO_SERVER_NAME": "127.0.0.1 localhost", "SENTIO_UPSTREAM": f"127.0.0.1:{server.port}",
            "SENTIO_HTTP_LISTEN": f"127.0.0.1:{http_port}", "SENTIO_HTTPS_LISTEN": f"127.0.0.1:{https_port}",
            "SENTIO_TLS_DIR": str(tls), "SENTIO_MAX_BODY": "4g",
        })
        checked = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-c", str(config)], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stderr
        process = subprocess.Popen(
            [nginx, "-p", str(tmp_path), "-c", str(config), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for_port(https_port, process, "nginx")
        yield Proxy(port=https_port, server=server)
    finally:
        if process is not None:
            stop(process)
        stop(server.process)


def get(url: str, *, token: str | None = None, context: ssl.SSLContext | None = None,
        timeout: float = 30.0) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Token {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
