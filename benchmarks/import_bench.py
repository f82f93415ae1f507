"""Benchmark the corpus import end to end: synthetic CSV -> import_job_create -> import_run (PostgreSQL COPY).

    createdb -h 127.0.0.1 -U postgres sentio_bench
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/sentio_bench \
        python benchmarks/import_bench.py --rows 1000000 --runs 3 --migrate

Each run imports the same generated file into a fresh corpus through the service path the worker uses,
and reports rows/s and the peak resident memory of this process during the run (sampled from
/proc/self/status every 50 ms; ru_maxrss is printed too, but it is a lifetime maximum). Target:
>= 30,000 rows/s and < 1 GB peak RSS for a million rows.

Wall time is noisy on a shared machine, so each run also reports CPU time: this process's user+system
time (getrusage, all its threads) plus that of the PostgreSQL backend serving the import's connection
(/proc/<pg_backend_pid()>/stat, readable when PostgreSQL runs on this machine), and "CPU rows/s" =
rows / (process CPU + backend CPU). On a quiet machine with a core for each, wall rows/s lands between
rows / max(process, backend) and rows / (process + backend).
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import resource
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "platform")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

LABELS = ["joy", "sadness", "anger", "fear", "neutral"]
LANGUAGES = ["en", "mr", "hi"]
WORDS = ("the of and to in is that it for was on are as with his they at be this from have or by one had not "
         "but what all were when we there can an your which their said if do will each about how up out them").split()


def generate(path: Path, rows: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "language", "speaker", "conversation", "turn", "emotion"])
        for i in range(rows):
            text = " ".join(rng.choices(WORDS, k=rng.randint(4, 16))) + f" #{i}"
            writer.writerow([text, LANGUAGES[i % 3], f"spk{rng.randrange(2000)}", f"conv{i // 12}", i % 12,
                             LABELS[rng.randrange(5)]])


def backend_cpu_s(pid: int | None) -> float | None:
    """User+system CPU seconds of a local process from /proc (None when it cannot be read)."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class RssSampler:
    def __init__(self, interval: float = 0.05):
        self.interval = interval
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def current_kb() -> int:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, self.current_kb())
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self.peak_kb = self.current_kb()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_kb = max(self.peak_kb, self.current_kb())


OPTIONS = {"mapping": {"text": "text", "language": "language", "speaker": "speaker", "conversation": "conversation",
                       "turn_index": "turn", "labels": {"emotion": "emotion"}},
           "schema": "bench-emotion", "mode": "all_or_nothing"}
# The tables an import of the bench file writes rows into, and how to find a corpus's rows in each.
CORPUS_TABLES = {
    "corpora_conversation": "corpus_id = %s",
    "corpora_speaker": "corpus_id = %s",
    "corpora_utterance": "corpus_id = %s",
    "annotation_annotation": "utterance_id IN (SELECT id FROM corpora_utterance WHERE corpus_id = %s)",
}


def django_ready(*, migrate: bool) -> None:
    """Django set up on DATABASE_URL, with media in a temporary folder and the bench schema."""
    import django

    media = tempfile.mkdtemp(prefix="sentio-bench-media-")
    os.environ.setdefault("SENTIO_DATA_DIR", media)
    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    settings.MEDIA_ROOT = media
    if migrate:
        call_command("migrate", verbosity=0)
    from annotation.models import LabelSchema
    from annotation.services import label_schema_create

    if not LabelSchema.objects.filter(slug="bench-emotion").exists():
        label_schema_create(name="Bench emotion", slug="bench-emotion",
                            questions=[{"key": "emotion", "type": "single_choice", "labels": LABELS}])


def corpus_new() -> Any:
    from corpora.services import corpus_create

    return corpus_create(name=f"bench {time.time_ns()}", license="CC0-1.0", created_by=None)


def import_file(corpus: Any, data: Path) -> tuple[Any, float, float]:
    """Import the bench file into ``corpus`` through the worker's service path: (job, store seconds, run seconds)."""
    from django.core.files import File

    from corpora.importing.services import import_job_create, import_run

    t0 = time.perf_counter()
    with data.open("rb") as fh:
        job = import_job_create(corpus=corpus, files=[File(fh, name="bench.csv")], options=OPTIONS, created_by=None,
                                enqueue=False)
    t1 = time.perf_counter()
    import_run(job_id=job.pk)
    t2 = time.perf_counter()
    job.refresh_from_db()
    return job, t1 - t0, t2 - t1


def corpus_purge(corpus: Any, job: Any | None) -> None:
    """Delete an imported corpus with its rows (and any project on it), then vacuum so the next run starts clean."""
    from django.db import connection

    with connection.cursor() as cursor:
        for table in ("annotation_reservation", "annotation_projectitem"):
            cursor.execute(f"DELETE FROM {table} WHERE project_id IN (SELECT id FROM annotation_project "
                           "WHERE corpus_id = %s)", [corpus.pk])
        cursor.execute("DELETE FROM annotation_annotation WHERE utterance_id IN "
                       "(SELECT id FROM corpora_utterance WHERE corpus_id = %s)", [corpus.pk])
        for table in ("corpora_utterance", "corpora_conversation", "corpora_speaker", "corpora_corpus_languages"):
            cursor.execute(f"DELETE FROM {table} WHERE corpus_id = %s", [corpus.pk])
        if job is not None:
            cursor.execute("DELETE FROM jobs_joberror WHERE job_id = %s", [job.pk])
            cursor.execute("DELETE FROM jobs_job WHERE id = %s", [job.pk])
    from annotation.models import Project

    Project.objects.filter(corpus_id=corpus.pk).delete()  # its items are gone already; the ORM cascades the rest
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM corpora_corpus WHERE id = %s", [corpus.pk])
    # Dead rows of the deleted run would bloat the next run's inserts and indexes.
    with connection.cursor() as cursor:
        for table in ("annotation_annotation", "corpora_utterance", "corpora_conversation", "corpora_speaker",
                      "annotation_projectitem"):
            cursor.execute(f"VACUUM {table}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--migrate", action="store_true", help="run migrations on the database first")
    parser.add_argument("--keep", action="store_true", help="keep the imported corpora (default: delete after each run)")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        print("set DATABASE_URL to a PostgreSQL database (the bulk path under test is COPY)", file=sys.stderr)
        return 2
    django_ready(migrate=args.migrate)
    from django.db import connection

    from jobs.models import JobStatus

    with tempfile.TemporaryDirectory(prefix="sentio-bench-") as tmp:
        data = Path(tmp) / "bench.csv"
        started = time.perf_counter()
        generate(data, args.rows)
        print(f"generated {args.rows:,} rows ({data.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - started:.1f} s")
        rates, run_rates, peaks, cpu_rates, process_cpus, backend_cpus = [], [], [], [], [], []
        for run in range(1, args.runs + 1):
            corpus = corpus_new()
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                backend_pid = cursor.fetchone()[0]
            backend_before = backend_cpu_s(backend_pid)
            process_before = process_cpu_s()
            with RssSampler() as rss:
                job, store_s, run_s = import_file(corpus, data)
            process_cpu = process_cpu_s() - process_before
            backend_after = backend_cpu_s(backend_pid)
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                same_backend = cursor.fetchone()[0] == backend_pid
            backend_cpu = (backend_after - backend_before
                           if backend_before is not None and backend_after is not None and same_backend else None)
            if job.status != JobStatus.SUCCEEDED:
                print(f"run {run}: job {job.status}: {job.message}", file=sys.stderr)
                return 1
            created = job.counts["created"]
            rate, run_rate = created / (store_s + run_s), created / run_s
            rates.append(rate)
            run_rates.append(run_rate)
            peaks.append(rss.peak_kb / 1024)
            process_cpus.append(process_cpu)
            cpu_total = process_cpu + (backend_cpu or 0.0)
            cpu_rate = created / cpu_total
            cpu_rates.append(cpu_rate)
            if backend_cpu is not None:
                backend_cpus.append(backend_cpu)
            backend_text = f"{backend_cpu:.1f} s" if backend_cpu is not None else "unreadable"
            print(f"run {run}: {created:,} utterances + {job.counts['annotations']:,} labels in {store_s + run_s:.1f} s "
                  f"(store {store_s:.1f} s, import_run {run_s:.1f} s) = {rate:,.0f} rows/s end to end, "
                  f"{run_rate:,.0f} rows/s import_run; CPU: process {process_cpu:.1f} s + PostgreSQL backend "
                  f"{backend_text} = {cpu_rate:,.0f} CPU rows/s; peak RSS {rss.peak_kb / 1024:.0f} MB; "
                  f"{job.result.get('timings')}")
            if not args.keep:
                corpus_purge(corpus, job)
        ru_max_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        backend_median = f"{statistics.median(backend_cpus):.1f} s" if backend_cpus else "unreadable"
        print(f"median over {args.runs} run(s): {statistics.median(rates):,.0f} rows/s end to end (wall), "
              f"{statistics.median(run_rates):,.0f} rows/s import_run (wall), "
              f"{statistics.median(cpu_rates):,.0f} CPU rows/s (process {statistics.median(process_cpus):.1f} s + "
              f"backend {backend_median}), peak RSS {statistics.median(peaks):.0f} MB "
              f"(process ru_maxrss {ru_max_mb:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
