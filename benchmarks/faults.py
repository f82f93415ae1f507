"""Fault injection: kill workers, restart Redis and drop database connections in the middle of imports, then
count what landed and time how long the API took to show each job's true state.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python benchmarks/faults.py

Loopback only and bounded: the PostgreSQL server must be on this machine; the script creates a database of its own
there (``<name>_faults_<random>``, migrated, dropped at the end), starts a Redis server of its own on a free
loopback port (it restarts that one, never a shared one), a Celery worker (prefork, one child, as deployed) and
Celery beat running the reaper on its default schedule, all with Sentio's default job settings. Every scenario
has a deadline (``--deadline``); a job not finished by then counts as lost.

Scenarios, each on a fresh corpus with the same CSV (``--rows`` rows):

- ``child-kill``: SIGKILL the worker's pool child while it reads the import (the parent survives);
- ``worker-kill``: SIGKILL the whole worker (parent and child) mid-import, then start a new one (a supervisor);
- ``redis-restart-queued``: the import waits in the queue, no worker running; Redis restarts (without
  persistence, as the test machine runs it: the message is gone); then a worker starts;
- ``redis-restart-running``: Redis restarts while the worker is writing the import;
- ``db-drop-read`` / ``db-drop-write``: PostgreSQL terminates the worker's connections while the import reads /
  while it writes (inside its transaction).

Reported per scenario: rows expected and found, duplicates, jobs lost, ``truth_s`` (seconds from the fault until
the API — ``GET /api/jobs/{id}/`` through Django and DRF — showed a state true after it: a new attempt, or the job
no longer claiming to run on a dead worker) and ``done_s`` (until it showed the job succeeded).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "platform")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

LOOPBACK = {"127.0.0.1", "localhost", "::1", ""}
SCENARIOS = ["child-kill", "worker-kill", "redis-restart-queued", "redis-restart-running", "db-drop-read",
             "db-drop-write"]
TRUTH_TARGET_S = 60.0
POLL_S = 0.1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


class Redis:
    """A Redis server of the script's own, without persistence, on a loopback port."""

    def __init__(self, folder: Path):
        self.port = free_port()
        self.folder = folder
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
             "--dir", str(self.folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True).stdout.strip() == b"PONG":
                return
            time.sleep(0.1)
        raise RuntimeError("the script's Redis did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)

    def restart(self) -> None:
        self.stop()
        self.start()


class Database:
    """A database of the script's own on the given (loopback) PostgreSQL server."""

    def __init__(self, server_url: str):
        import psycopg

        parts = urlsplit(server_url)
        self.name = f"{(parts.path.lstrip('/') or 'sentio')}_faults_{os.urandom(4).hex()}"
        self.admin = psycopg.connect(server_url.replace("postgres://", "postgresql://", 1), autocommit=True)
        self.admin.execute(f'CREATE DATABASE "{self.name}"')
        self.url = parts._replace(path=f"/{self.name}").geturl()

    def drop(self) -> None:
        self.admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        self.admin.close()


class Celery:
    def __init__(self, name: str, args: list[str], env: dict[str, str], logs: Path, ready: str):
        self.name, self.args, self.env, self.ready = name, args, env, ready
        self.log_path = logs / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "celery", "-A", "config", *self.args,
                                          "--loglevel", "INFO"], cwd=REPO, env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.ready in self.log_path.read_text(errors="replace")[offset:]:
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"celery {self.name} exited: see {self.log_path}")
            time.sleep(0.2)
        raise RuntimeError(f"celery {self.name} did not start: see {self.log_path}")

    def kill_child(self) -> int:
        assert self.proc is not None
        child = children(self.proc.pid)[0]
        os.kill(child, signal.SIGKILL)
        return child

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill()


def write_csv(path: Path, rows: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "text", "emotion"])
        for i in range(rows):
            writer.writerow([f"r{i}", f"row {i}: the weather today is {('fine', 'awful', 'odd')[i % 3]}",
                             ("joy", "sadness", "fear")[i % 3]])


class Bench:
    def __init__(self, args: argparse.Namespace, env: dict[str, str], logs: Path, redis: Redis, csv_path: Path):
        from django.contrib.auth.models import User
        from django.test import Client

        self.args, self.redis, self.csv = args, redis, csv_path
        self.worker = Celery("worker", ["worker", "-Q", "default", "--concurrency", "1", "--without-gossip",
                                        "--without-mingle"], env, logs, "ready.")
        self.beat = Celery("beat", ["beat", "--schedule", str(logs / "beat-schedule")], env, logs, "beat: Starting")
        self.user = User.objects.get_or_create(username="faults-lead", defaults={"is_staff": True})[0]
        self.client = Client()
        self.client.force_login(self.user)

    # -- the import under test -------------------------------------------------------------------------------------

    def import_job(self, name: str) -> tuple[int, int]:
        from django.core.files import File
        from django.db import transaction

        from annotation.models import LabelSchema
        from annotation.services import label_schema_create
        from corpora.importing.services import import_job_create
        from corpora.services import corpus_create

        if not LabelSchema.objects.filter(slug="faults").exists():
            label_schema_create(name="Faults", slug="faults", questions=[
                {"key": "emotion", "type": "single_choice", "labels": ["joy", "sadness", "fear"]}])
        corpus = corpus_create(name=f"faults {name} {time.time():.0f}", license="CC0-1.0", created_by=self.user)
        with self.csv.open("rb") as fh, transaction.atomic():  # sent to the worker when this commits
            job = import_job_create(corpus=corpus, files=[File(fh, name="faults.csv")], created_by=self.user, options={
                "mapping": {"text": "text", "external_id": "id", "labels": {"emotion": "emotion"}},
                "language": "en", "schema": "faults"})
        return job.pk, corpus.pk

    def api(self, job_id: int) -> dict[str, Any]:
        response = self.client.get(f"/api/jobs/{job_id}/")
        assert response.status_code == 200, response.content
        return dict(response.json())

    def wait(self, job_id: int, check: Callable[[dict[str, Any]], bool], what: str) -> tuple[dict[str, Any], float]:
        started = time.monotonic()
        while True:
            seen = self.api(job_id)
            if check(seen):
                return seen, time.monotonic() - started
            if time.monotonic() - started > self.args.deadline:
                raise TimeoutError(f"job {job_id}: {what} not seen in {self.args.deadline} s; last: {seen['status']} "
                                   f"attempt {seen['attempts']} {seen['message']!r}")
            time.sleep(POLL_S)

    def phase(self, job_id: int, phase: str) -> dict[str, Any]:
        """Wait until the import reads (progress below the rows) or writes (beyond them), watching the job's row
        closely (the reading of a few hundred thousand rows takes about a second)."""
        from jobs.models import Job

        rows, started = self.args.rows, time.monotonic()
        while time.monotonic() - started < self.args.deadline:
            job = Job.objects.get(pk=job_id)
            if job.status == "running" and (job.progress_done < rows if phase == "read" else job.progress_done > rows):
                return self.api(job_id)
            if job.is_finished or (phase == "read" and job.progress_done > rows):
                raise RuntimeError(f"job {job_id} went past its {phase} phase before the fault: use more --rows")
            time.sleep(0.01)
        raise TimeoutError(f"job {job_id} did not reach its {phase} phase in {self.args.deadline} s")

    def drop_worker_connections(self) -> int:
        """Terminate every connection to the database but the script's own (the worker's: main thread, progress and
        heartbeat threads)."""
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = "
                           "current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'")
            row = cursor.fetchone()
        return int(row[0]) if row else 0

    # -- scenarios -------------------------------------------------------------------------------------------------

    def run(self, scenario: str) -> dict[str, Any]:
        if not (self.worker.proc and self.worker.proc.poll() is None) and scenario != "redis-restart-queued":
            self.worker.start()
        fault_at = 0.0
        if scenario == "redis-restart-queued":
            self.worker.stop()
            job_id, corpus_id = self.import_job(scenario)
            self.wait(job_id, lambda j: j["status"] == "pending", "pending")
            self.redis.restart()
            fault_at = time.monotonic()
            self.worker.start()
            truth: Callable[[dict[str, Any]], bool] = lambda j: j["status"] in ("running", "succeeded")  # noqa: E731
        else:
            job_id, corpus_id = self.import_job(scenario)
            phase = "write" if scenario in ("db-drop-write", "redis-restart-running") else "read"
            before = self.phase(job_id, phase)
            fault_at = time.monotonic()
            if scenario == "child-kill":
                self.worker.kill_child()
            elif scenario == "worker-kill":
                self.worker.kill()
                self.worker.start()  # as a supervisor (systemd, Docker's restart policy) would
            elif scenario == "redis-restart-running":
                self.redis.restart()
            else:
                self.drop_worker_connections()
            attempts = before["attempts"]
            if scenario == "redis-restart-running":  # the job goes on: the truth is that it still runs, then ends
                truth = lambda j: j["status"] in ("running", "succeeded")  # noqa: E731
            else:  # a new attempt started, or the job ended (never still "running" on a dead attempt)
                truth = lambda j: j["attempts"] > attempts or j["status"] != "running"  # noqa: E731
        result: dict[str, Any] = {"scenario": scenario, "job": job_id, "rows_expected": self.args.rows}
        try:
            _, truth_s = self.wait(job_id, truth, "its true state")
            final, _ = self.wait(job_id, lambda j: j["status"] in ("succeeded", "failed", "cancelled"), "the end")
            result.update(truth_s=round(truth_s, 1), done_s=round(time.monotonic() - fault_at, 1),
                          status=final["status"], attempts=final["attempts"], lost=int(final["status"] != "succeeded"),
                          message=final["message"])
        except TimeoutError as exc:
            result.update(truth_s=None, done_s=None, status="lost", attempts=None, lost=1, message=str(exc))
        result.update(self.count(corpus_id))
        return result

    def count(self, corpus_id: int) -> dict[str, int]:
        from django.db.models import Count

        from annotation.models import Annotation
        from corpora.models import Utterance

        utterances = Utterance.objects.filter(corpus_id=corpus_id)
        found = utterances.count()
        distinct = utterances.values("external_id").distinct().count()
        labels = Annotation.objects.filter(utterance__corpus_id=corpus_id)
        doubled = labels.values("utterance_id").annotate(n=Count("id")).filter(n__gt=1).count()
        return {"rows_found": found, "duplicates": found - distinct + doubled, "labels_found": labels.count()}

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=400_000, help="rows per import (enough to fault it mid-way)")
    parser.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=SCENARIOS)
    parser.add_argument("--deadline", type=float, default=240.0, help="seconds a scenario may take before its job "
                                                                      "counts as lost")
    parser.add_argument("--keep", action="store_true", help="keep the database and logs for a look")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres") or urlsplit(url).hostname not in LOOPBACK:
        print("set DATABASE_URL to a PostgreSQL server on this machine (postgres://user@127.0.0.1:5432/postgres)",
              file=sys.stderr)
        return 2
    if shutil.which("redis-server") is None:
        print("redis-server is needed (apt-get install redis-server)", file=sys.stderr)
        return 2

    scratch = Path(tempfile.mkdtemp(prefix="sentio-faults-"))
    database = Database(url)
    redis = Redis(scratch)
    redis.start()
    # The processes under test get Sentio's defaults for everything about jobs; only the services are set here.
    os.environ.update(DATABASE_URL=database.url, CELERY_BROKER_URL=redis.url, SENTIO_DATA_DIR=str(scratch / "data"),
                      PYTHONPATH=f"{REPO}{os.pathsep}{REPO / 'platform'}")
    for name in ("SENTIO_JOB_STALE_AFTER_SECONDS", "SENTIO_JOB_REAP_EVERY_SECONDS",
                 "SENTIO_JOB_PENDING_RESEND_SECONDS", "SENTIO_CELERY_KEY_PREFIX", "SENTIO_TEST_DB_NAME"):
        os.environ.pop(name, None)
    env = dict(os.environ)
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    write_csv(scratch / "faults.csv", args.rows)
    bench = Bench(args, env, scratch, redis, scratch / "faults.csv")
    print(f"stale window {settings.JOB_STALE_AFTER_SECONDS} s, reaper every {settings.JOB_REAP_EVERY_SECONDS} s, "
          f"waiting jobs sent again after {settings.JOB_PENDING_RESEND_SECONDS} s; {args.rows:,} rows per import; "
          f"logs in {scratch}", flush=True)
    results: list[dict[str, Any]] = []
    try:
        bench.beat.start()
        for scenario in args.scenarios:
            results.append(bench.run(scenario))
            print(json.dumps(results[-1]), flush=True)
    finally:
        bench.worker.stop()
        bench.beat.stop()
        redis.stop()
        if not args.keep:
            from django.db import connections

            connections.close_all()
            database.drop()
    header = ("scenario", "rows_expected", "rows_found", "duplicates", "lost", "truth_s", "done_s", "attempts")
    print("\n| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for r in results:
        print("| " + " | ".join(str(r.get(k)) for k in header) + " |")
    bad = [r["scenario"] for r in results if r["lost"] or r["rows_found"] != r["rows_expected"] or r["duplicates"]
           or r["truth_s"] is None or r["truth_s"] > TRUTH_TARGET_S]
    print(f"\n{'all scenarios held' if not bad else 'FAILED: ' + ', '.join(bad)} (0 rows lost, 0 duplicated, 0 jobs "
          f"lost, true state within {TRUTH_TARGET_S:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    if not bad and not args.keep:
        shutil.rmtree(scratch, ignore_errors=True)  # else its logs stay for a look
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
