"""Settings from the environment: production refuses unsafe or broken values loudly, and passes --deploy checks.

Each case runs in a subprocess so that config.settings is evaluated afresh with that environment.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SETTINGS_FILE = REPO / "platform" / "config" / "settings.py"
VALID_SECRET_KEY = "k3y-for-tests-only-" + "x7Qp9Lm2Vr5Tz8Nc4Bw6" * 3

PRODUCTION = {
    "SENTIO_MODE": "production",
    "SECRET_KEY": VALID_SECRET_KEY,
    "ALLOWED_HOSTS": "sentio.example.org",
    "DATABASE_URL": "postgres://sentio:db-password@db.internal:5432/sentio",
    "CELERY_BROKER_URL": "redis://redis.internal:6379/0",
    "SENTIO_STORAGE": "s3",
    "AWS_STORAGE_BUCKET_NAME": "sentio-media",
    "AWS_S3_ENDPOINT_URL": "https://s3.example.org",
    "AWS_S3_REGION_NAME": "us-east-1",
    "SENTIO_CACHE_URL": "redis://redis.internal:6379/1",
}


def settings_variables() -> set[str]:
    """Every environment variable settings.py reads through the env_* helpers."""
    return set(re.findall(r"env_(?:str|bool|int|list|choice)\(\s*\"([A-Z0-9_]+)\"", SETTINGS_FILE.read_text()))


def run_with_env(args: list[str], env_overrides: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    # DJANGO_ALLOW_ASYNC_UNSAFE is set for the browser tests' process only; a deployment must not inherit it.
    env = {
        key: value for key, value in os.environ.items()
        if key not in settings_variables() and key != "DJANGO_ALLOW_ASYNC_UNSAFE"
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.update(
        PYTHONPATH=f"{REPO}{os.pathsep}{REPO / 'platform'}",
        SENTIO_DATA_DIR=str(tmp_path / "data"),
        **env_overrides,
    )
    return subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=180)


def load_settings(env_overrides: dict[str, str], tmp_path: Path, *, show: str = "") -> subprocess.CompletedProcess[str]:
    code = "import config.settings as s"
    if show:
        code += f"; import json; print(json.dumps({show}, default=str))"
    return run_with_env([sys.executable, "-c", code], env_overrides, tmp_path)


def improperly_configured(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode != 0, "settings loaded although they should have been refused"
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("django.core.exceptions.ImproperlyConfigured: "), done.stderr
    return last.removeprefix("django.core.exceptions.ImproperlyConfigured: ")


def without(key: str) -> dict[str, str]:
    return {k: v for k, v in PRODUCTION.items() if k != key}


def test_settings_file_reads_the_variables_this_test_knows() -> None:
    assert {"SECRET_KEY", "SENTIO_MODE", "DATABASE_URL", "SENTIO_STORAGE", "DJANGO_DEBUG"} <= settings_variables()


def test_env_example_lists_every_variable_settings_read() -> None:
    listed = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", (REPO / ".env.example").read_text(), flags=re.MULTILINE))
    assert settings_variables() - listed == set()


def test_compose_passes_only_variables_settings_read() -> None:
    compose = yaml.safe_load((REPO / "docker" / "compose.yml").read_text())
    shared = set(compose["x-sentio-env"]) - {"PYTHONPATH"}
    assert shared - settings_variables() == set()
    for required in ("SENTIO_MODE", "SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "CELERY_BROKER_URL", "SENTIO_STORAGE",
                     "SENTIO_CACHE_URL", "SENTIO_TRUSTED_PROXIES"):
        assert required in shared
    assert compose["services"]["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]


def test_production_without_secret_key_is_refused(tmp_path: Path) -> None:
    message = improperly_configured(load_settings(without("SECRET_KEY"), tmp_path))
    assert message == "SECRET_KEY is required when SENTIO_MODE=production (50+ random characters)."


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"SECRET_KEY": "too-short"}, "SECRET_KEY must be at least 50 characters long in production."),
        ({"DJANGO_DEBUG": "maybe"}, "Environment variable DJANGO_DEBUG='maybe' is not a boolean"),
        ({"DJANGO_DEBUG": "true"}, "DJANGO_DEBUG must be off when SENTIO_MODE=production."),
        ({"SENTIO_MODE": "prod"}, "Environment variable SENTIO_MODE='prod' must be one of: embedded, production."),
        ({"SENTIO_STORAGE": "ftp"}, "Environment variable SENTIO_STORAGE='ftp' must be one of: local, s3."),
        ({"AWS_STORAGE_BUCKET_NAME": " "}, "AWS_STORAGE_BUCKET_NAME is required when SENTIO_STORAGE=s3."),
        ({"AWS_S3_ENDPOINT_URL": "minio:9000"}, "AWS_S3_ENDPOINT_URL='minio:9000' is not an http(s) URL"),
        ({"DATABASE_URL": "garbage"}, "DATABASE_URL is not a valid database URL"),
        ({"DATABASE_URL": "sqlite:////tmp/sentio.db"}, "DATABASE_URL must point to a PostgreSQL database"),
        ({"DATABASE_URL": "postgres://db.internal"}, "DATABASE_URL must point to a PostgreSQL database"),
        ({"ALLOWED_HOSTS": "*"}, "ALLOWED_HOSTS must list the site's host names explicitly in production."),
        ({"ALLOWED_HOSTS": "sentio.example.org, *"}, "ALLOWED_HOSTS must list the site's host names"),
        ({"SENTIO_IMPORT_MAX_AUDIO_SECONDS": "ten"}, "SENTIO_IMPORT_MAX_AUDIO_SECONDS='ten' is not an integer."),
        ({"SECURE_HSTS_SECONDS": "-1"}, "SECURE_HSTS_SECONDS=-1 must be at least 0."),
        # Weak keys are refused at start-up, not only warned about by the deploy check.
        ({"SECRET_KEY": "a" * 60}, "SECRET_KEY is weak"),
        ({"SECRET_KEY": "abab" * 20}, "SECRET_KEY is weak"),
        ({"SECRET_KEY": "django-insecure-" + "x7Qp9Lm2Vr5Tz8Nc4Bw6" * 3}, "SECRET_KEY is weak"),
        ({"SENTIO_CACHE_URL": "memcached://cache:11211"}, "SENTIO_CACHE_URL='memcached://cache:11211' must be a redis://"),
        ({"SENTIO_TRUSTED_PROXIES": "10.0.0.1, nginx"}, "SENTIO_TRUSTED_PROXIES:"),
        ({"SENTIO_TOKEN_SIGN_IN_RATE": "lots"}, "SENTIO_TOKEN_SIGN_IN_RATE='lots' must look like 60/minute."),
        ({"SENTIO_TOKEN_TTL_DAYS": "0"}, "SENTIO_TOKEN_TTL_DAYS=0 must be at least 1."),
        ({"SENTIO_PUBLIC_URL": "sentio.example.org"}, "SENTIO_PUBLIC_URL='sentio.example.org' is not an http(s) URL"),
    ],
)
def test_production_refuses_bad_values_naming_the_variable(
    tmp_path: Path, overrides: dict[str, str], expected: str
) -> None:
    message = improperly_configured(load_settings({**PRODUCTION, **overrides}, tmp_path))
    assert expected in message


@pytest.mark.parametrize(
    "missing", ["ALLOWED_HOSTS", "DATABASE_URL", "CELERY_BROKER_URL", "AWS_STORAGE_BUCKET_NAME", "SENTIO_CACHE_URL"]
)
def test_production_requires_its_services(tmp_path: Path, missing: str) -> None:
    message = improperly_configured(load_settings(without(missing), tmp_path))
    assert missing in message


@pytest.mark.slow
def test_valid_production_environment_passes_the_deploy_checks(tmp_path: Path) -> None:
    done = run_with_env(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], PRODUCTION, tmp_path
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout


def test_production_hardens_cookies_https_and_csp(tmp_path: Path) -> None:
    show = (
        "{'debug': s.DEBUG, 'hsts': s.SECURE_HSTS_SECONDS, 'ssl_redirect': s.SECURE_SSL_REDIRECT,"
        " 'session_secure': s.SESSION_COOKIE_SECURE, 'csrf_secure': s.CSRF_COOKIE_SECURE,"
        " 'storage': s.STORAGES['default']['BACKEND'], 'bucket': s.STORAGES['default']['OPTIONS']['bucket_name'],"
        " 'media_src': s.CONTENT_SECURITY_POLICY['DIRECTIVES']['media-src'],"
        " 'connect_src': s.CONTENT_SECURITY_POLICY['DIRECTIVES']['connect-src'],"
        " 'static': s.STORAGES['staticfiles']['BACKEND']}"
    )
    done = load_settings(PRODUCTION, tmp_path, show=show)
    assert done.returncode == 0, done.stderr
    values = json.loads(done.stdout.strip().splitlines()[-1])
    assert values == {
        "debug": False,
        "hsts": 31536000,
        "ssl_redirect": True,
        "session_secure": True,
        "csrf_secure": True,
        "storage": "storages.backends.s3.S3Storage",
        "bucket": "sentio-media",
        "media_src": ["'self'", "blob:", "https://s3.example.org"],
        "connect_src": ["'self'", "https://s3.example.org"],
        "static": "whitenoise.storage.CompressedManifestStaticFilesStorage",
    }


def test_amazon_s3_without_endpoint_lets_the_browser_play_signed_audio_links(tmp_path: Path) -> None:
    env = {**without("AWS_S3_ENDPOINT_URL"), "AWS_S3_REGION_NAME": "eu-central-1"}
    done = load_settings(env, tmp_path, show="s.CONTENT_SECURITY_POLICY['DIRECTIVES']['media-src']")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [
        "'self'",
        "blob:",
        "https://sentio-media.s3.amazonaws.com",
        "https://sentio-media.s3.eu-central-1.amazonaws.com",
    ]


def test_embedded_default_needs_no_environment(tmp_path: Path) -> None:
    done = load_settings(
        {}, tmp_path, show="[s.MODE, s.DEBUG, s.DATABASES['default']['ENGINE'], s.STORAGES['default']['BACKEND'],"
        " s.CACHES['default']['BACKEND']]"
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [
        "embedded",
        False,
        "django.db.backends.sqlite3",
        "django.core.files.storage.FileSystemStorage",
        # Shared by every local process (throttles and lockouts count across them), unlike a per-process cache.
        "django.core.cache.backends.filebased.FileBasedCache",
    ]
    # The embedded secret key is random per installation and kept private.
    key_file = tmp_path / "data" / "secret_key"
    assert len(key_file.read_text().strip()) >= 50 and oct(key_file.stat().st_mode & 0o777) == "0o600"


def test_pages_carry_content_security_policy_and_frame_options(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/")

    assert response.status_code == 200
    csp = response["Content-Security-Policy"]
    for directive in ("default-src 'self'", "script-src 'self'", "object-src 'none'", "frame-ancestors 'none'"):
        assert directive in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


def test_jobs_and_connections_recover_within_a_minute_by_default(tmp_path: Path) -> None:
    """A dropped database connection is replaced before use; a dead worker's job is sent again within stale window +
    reaper period (under a minute); Redis keys get the configured prefix."""
    show = (
        "[s.DATABASES['default']['CONN_HEALTH_CHECKS'], s.JOB_STALE_AFTER_SECONDS + s.JOB_REAP_EVERY_SECONDS,"
        " s.CELERY_BEAT_SCHEDULE['reap-stuck-jobs']['schedule'], s.CELERY_TASK_ACKS_LATE,"
        " s.CELERY_TASK_REJECT_ON_WORKER_LOST, s.CELERY_BROKER_TRANSPORT_OPTIONS['global_keyprefix']]"
    )
    done = load_settings({**PRODUCTION, "SENTIO_CELERY_KEY_PREFIX": "site-a:"}, tmp_path, show=show)
    assert done.returncode == 0, done.stderr
    health, recovery, every, acks_late, reject_lost, prefix = json.loads(done.stdout.strip().splitlines()[-1])
    assert health is True and recovery < 60 and every == 15.0 and acks_late and reject_lost and prefix == "site-a:"
