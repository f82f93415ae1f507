"""Real Celery processes (workers, beat) on real Redis, sharing the test database with the test.

Every Redis key of this test run starts with the run's own prefix (``tests/conftest.py`` sets it), so runs that
share a Redis database never take each other's messages, and a fixture deletes only this run's keys.

Waits are on the state of the thing waited for, with a generous deadline (these tests must pass on a loaded
machine); a timeout says what was last seen and shows the tail of the processes' logs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from django.conf import settings
from django.db import connection

from jobs.models import FINISHED_STATUSES, Job

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 180.0  # a Celery process importing Django and torch on a busy 2-core machine
JOB_TIMEOUT_S = 300.0
LOG_TAIL_CHARS = 4000

T = TypeVar("T")


def redis_broker_url() -> str:
    url = os.environ.get("CELERY_BROKER_URL", "")
    if not url.startswith("redis://"):
        pytest.fail("Worker tests need CELERY_BROKER_URL=redis://... (./scripts/test sets it)")
    return url


def run_key_prefix() -> str:
    prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("global_keyprefix", "")
    assert prefix, "tests/conftest.py gives every test run its own Celery key prefix"
    return str(prefix)


def run_keys_delete() -> int:
    """Delete this test run's Redis keys (only those: never a whole database, which others may be using)."""
    import redis

    client = redis.Redis.from_url(redis_broker_url())
    keys = list(client.scan_iter(match=f"{run_key_prefix()}*", count=1000))
    return int(client.delete(*keys)) if keys else 0


def _test_database_url() -> str:
    db = settings.DATABASES["default"]
    name = connection.settings_dict["NAME"]  # the test database pytest-django created
    user = db.get("USER") or "postgres"
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    password = db.get("PASSWORD") or ""
    auth = f"{user}:{password}@" if password else f"{user}@"
    return f"postgres://{auth}{host}:{port}/{name}"


class CeleryProcess:
    """One Celery process (``worker`` or ``beat``) in its own process group, logging to a file."""

    ready_marker = "ready."

    def __init__(self, env: dict[str, str], log_path: Path, args: Iterable[str]):
        self.env = env
        self.log_path = log_path
        self.args = list(args)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "config", *self.args, "--loglevel", "INFO"],
                cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.ready_marker in self.log():
                return
            if self.proc.poll() is not None:
                pytest.fail(f"celery {self.args[0]} exited early (code {self.proc.returncode}):\n{self.log_tail()}")
            time.sleep(0.2)
        pytest.fail(f"celery {self.args[0]} did not say {self.ready_marker!r} within {START_TIMEOUT_S:.0f} s:\n"
                    f"{self.log_tail()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self) -> str:
        return f"--- {self.log_path.name} (last {LOG_TAIL_CHARS} characters) ---\n{self.log()[-LOG_TAIL_CHARS:]}"

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.running():
            assert self.proc is not None
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=60)

    def stop(self) -> None:
        if self.running():
            assert self.proc is not None
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill()


class WorkerProcess(CeleryProcess):
    def __init__(self, env: dict[str, str], log_path: Path, queues: str = "default"):
        super().__init__(env, log_path, ["worker", "-Q", queues, "--pool", "solo", "--without-gossip",
                                         "--without-mingle"])


class BeatProcess(CeleryProcess):
    ready_marker = "beat: Starting"

    def __init__(self, env: dict[str, str], log_path: Path):
        super().__init__(env, log_path, ["beat", "--schedule", str(log_path.with_suffix(".schedule"))])


@pytest.fixture
def celery_env(transactional_db, settings) -> Iterator[dict[str, str]]:  # type: ignore[no-untyped-def]
    """The environment of this test's Celery processes: the test database, this run's Redis keys, its files."""
    if "postgresql" not in settings.DATABASES["default"]["ENGINE"]:
        pytest.fail("Worker tests need PostgreSQL (mark them postgres: on SQLite they are skipped)")
    broker = redis_broker_url()
    run_keys_delete()  # no message left over from an earlier test of this run
    env = {
        **os.environ,
        "DATABASE_URL": _test_database_url(),
        "CELERY_BROKER_URL": broker,
        "SENTIO_CELERY_KEY_PREFIX": run_key_prefix(),
        "SENTIO_DATA_DIR": str(settings.DATA_DIR),
        "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'platform'}",
    }
    env.pop("SENTIO_TEST_DB_NAME", None)
    yield env
    run_keys_delete()


@pytest.fixture
def celery_worker_process(celery_env, tmp_path) -> Iterator[WorkerProcess]:  # type: ignore[no-untyped-def]
    worker = WorkerProcess(celery_env, tmp_path / "worker.log")
    worker.start()
    yield worker
    worker.stop()


def wait_until(check: Callable[[], T | None], *, describe: Callable[[], str], processes: Iterable[CeleryProcess] = (),
               timeout: float = JOB_TIMEOUT_S, interval: float = 0.2) -> T:
    """Poll ``check`` until it returns something truthy. A timeout (or a process that died) fails with what
    ``describe`` says was last seen and the processes' log tails."""
    processes = list(processes)
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        dead = [p for p in processes if p.proc is not None and not p.running()]
        if dead or time.monotonic() > deadline:
            why = (f"celery {dead[0].args[0]} exited (code {dead[0].proc.returncode})" if dead and dead[0].proc
                   else f"not met within {timeout:.0f} s")
            tails = "\n".join(p.log_tail() for p in processes)
            raise AssertionError(f"{why}; last seen: {describe()}\n{tails}")
        time.sleep(interval)


def job_state(job_id: int) -> str:
    job = Job.objects.filter(pk=job_id).first()
    if job is None:
        return f"job {job_id} does not exist"
    return (f"job {job.pk} ({job.kind}) status={job.status} attempts={job.attempts} progress={job.progress_done}/"
            f"{job.progress_total} heartbeat_at={job.heartbeat_at} message={job.message!r}")


def wait_for_job(job_id: int, *processes: CeleryProcess, statuses: Iterable[str] = FINISHED_STATUSES,
                 timeout: float = JOB_TIMEOUT_S, **filters: Any) -> Job:
    """Wait until the job reaches one of ``statuses`` (and matches ``filters``, e.g. attempts=2)."""
    wanted = list(statuses)
    return wait_until(lambda: Job.objects.filter(pk=job_id, status__in=wanted, **filters).first(),
                      describe=lambda: f"{job_state(job_id)} (waiting for status in {wanted} {filters or ''})",
                      processes=processes, timeout=timeout)
