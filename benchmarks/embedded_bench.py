"""Benchmark the embedded default (SQLite, folder broker): a 1,000-row CSV imported from the command line and
through the worker. Target: under 5 s each (it stalled for 30-67 s on "database is locked" before).

    python benchmarks/embedded_bench.py --runs 5

Everything runs in a fresh data folder with no service in the environment, as ``./scripts/demo`` runs Sentio.
Each measurement is the median of ``--runs`` runs, next to a baseline measured in the same runs:

- command line: wall time of ``manage.py import_corpus`` against ``manage.py import_corpus --help`` (the same
  start-up and imports, without importing anything), so the difference is the import itself;
- worker: from the upload's commit to the job's ``succeeded`` (polling the job row), against the import's own
  work as the job records it (read + write seconds), so the difference is queueing and hand-over.
"""

from __future__ import annotations

import argparse
import csv
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SERVICE_VARIABLES = {"DATABASE_URL", "CELERY_BROKER_URL", "SENTIO_STORAGE", "SENTIO_MODE", "SENTIO_TEST_DB_NAME",
                     "SENTIO_CELERY_KEY_PREFIX"}


def write_csv(path: Path, rows: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "text"])
        for i in range(rows):
            writer.writerow([f"r{i}", f"row {i}: the weather today is {('fine', 'awful', 'odd')[i % 3]}"])


def timed(args: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(args, cwd=REPO, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    data = Path(tempfile.mkdtemp(prefix="sentio-embedded-bench-"))
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARIABLES}
    env.update(SENTIO_DATA_DIR=str(data), PYTHONPATH=f"{REPO}{os.pathsep}{REPO / 'platform'}")
    os.environ.clear()
    os.environ.update(env, DJANGO_SETTINGS_MODULE="config.settings")
    sys.path[:0] = [str(REPO), str(REPO / "platform")]
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], cwd=REPO, env=env, check=True)
    source = data / "rows.csv"
    write_csv(source, args.rows)

    # Command line.
    startup, command = [], []
    for run in range(args.runs):
        startup.append(timed([*manage, "import_corpus", "--help"], env))
        command.append(timed([*manage, "import_corpus", f"cli-{run}", str(source), "--create", "--name", f"CLI {run}",
                              "--license", "CC0-1.0", "--language", "en", "-v", "0", "--mapping",
                              '{"text": "text", "external_id": "id"}'], env))

    # Through the worker on the folder broker.
    import django

    django.setup()
    from django.core.files import File
    from django.db import transaction

    from corpora.importing.services import import_job_create
    from corpora.services import corpus_create
    from jobs.models import Job

    log = (data / "worker.log").open("wb")
    worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "default",
                               "--concurrency", "1", "--loglevel", "INFO"], cwd=REPO, env=env, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)
    end_to_end, work = [], []
    try:
        deadline = time.monotonic() + 180
        while "ready." not in (data / "worker.log").read_text(errors="replace"):
            if time.monotonic() > deadline or worker.poll() is not None:
                raise RuntimeError(f"the worker did not start: see {data / 'worker.log'}")
            time.sleep(0.2)
        for run in range(args.runs):
            corpus = corpus_create(name=f"Worker {run}", license="CC0-1.0", created_by=None)
            with source.open("rb") as fh, transaction.atomic():
                job = import_job_create(corpus=corpus, files=[File(fh, name="rows.csv")], created_by=None,
                                        options={"mapping": {"text": "text", "external_id": "id"}, "language": "en"})
            started = time.perf_counter()
            while not (done := Job.objects.get(pk=job.pk)).is_finished:
                if time.perf_counter() - started > 300:
                    raise RuntimeError(f"job {job.pk} did not finish in 300 s: see {data / 'worker.log'}")
                time.sleep(0.02)
            end_to_end.append(time.perf_counter() - started)
            assert done.status == "succeeded" and done.counts["created"] == args.rows, done.message
            work.append(done.result["timings"]["read_s"] + done.result["timings"]["write_s"])
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=60)
    stalled = "database is locked" in (data / "worker.log").read_text(errors="replace")

    def med(values: list[float]) -> float:
        return statistics.median(values)

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{args.rows:,} rows, {args.runs} runs each, medians (min-max); load average {load} on {os.cpu_count()} "
          "cores:")
    print(f"command line  import_corpus {med(command):.2f} s ({min(command):.2f}-{max(command):.2f}); "
          f"start-up alone (--help) {med(startup):.2f} s; the import adds {med(command) - med(startup):.2f} s "
          f"(ratio {med(command) / med(startup):.2f})")
    print(f"worker        commit -> succeeded {med(end_to_end):.2f} s ({min(end_to_end):.2f}-{max(end_to_end):.2f}); "
          f"the import's own read+write {med(work):.2f} s; queue and hand-over {med(end_to_end) - med(work):.2f} s")
    print(f"'database is locked' in the worker log: {'yes' if stalled else 'no'}")
    return 0 if med(command) < 5 and med(end_to_end) < 5 and not stalled else 1


if __name__ == "__main__":
    sys.exit(main())
