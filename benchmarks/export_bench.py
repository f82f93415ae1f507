"""Benchmark: export a gold split of N utterances (one label each) from PostgreSQL to Parquet.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/sentio_export_bench \\
        python benchmarks/export_bench.py --utterances 1000000 --runs 3

Setup (once per size; skipped when the database already holds that many) bulk-loads with COPY: conversations
of 10 utterances, 4 speakers per "show" of 10 conversations (so speakers recur across conversations and the
conversation+speaker grouping has real work), two languages, 7 emotions, 20% human labels and 80% LLM labels
(whole shows, as in the MahaEmotions recipe). Each run is a fresh process that runs the export job's service and reports its wall
time, its CPU time (user + system, from getrusage; steadier than wall time on a shared machine), the CPU time
of the PostgreSQL backend serving it (from /proc, when the server runs on this machine) and peak RSS
(ru_maxrss, whole process, Django included); the medians over runs are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "platform")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/sentio_export_bench")

EMOTIONS = ["neutral", "joy", "surprise", "anger", "sadness", "disgust", "fear"]
CORPUS_SLUG = "export-bench"


def _ensure_database() -> None:
    import psycopg

    url = os.environ["DATABASE_URL"]
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def _setup(n: int) -> int:
    """Load n utterances with one annotation each; return the project id."""
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    from django.contrib.auth.models import User

    from annotation.models import Project
    from annotation.services import label_schema_create, project_create
    from corpora.models import Corpus, Language

    existing = Corpus.objects.filter(slug=CORPUS_SLUG).first()
    if existing is not None and existing.utterances.count() == n:
        return Project.objects.get(corpus=existing).pk
    if existing is not None:
        Project.objects.filter(corpus=existing).delete()
        existing.delete()
    started = time.perf_counter()
    lead = User.objects.get_or_create(username="bench_lead")[0]
    languages = [Language.objects.get_or_create(code=c, defaults={"name": c, "script": s})[0]
                 for c, s in (("en", "Latn"), ("mr", "Deva"))]
    corpus = Corpus.objects.create(name="Export benchmark", slug=CORPUS_SLUG, license="CC-BY-4.0",
                                   source="synthetic, benchmarks/export_bench.py")
    version = label_schema_create(
        name="Bench emotions", slug=f"bench-emotions-{int(time.time())}",
        questions=[{"key": "emotion", "type": "single_choice", "labels": EMOTIONS, "required": True}],
    )
    project = project_create(name="Bench", corpus=corpus, schema_version=version, created_by=lead)
    n_conversations = (n + 9) // 10
    n_shows = (n_conversations + 9) // 10
    with connection.cursor() as cursor:
        raw = cursor.connection
        with raw.cursor() as cur:
            with cur.copy("COPY corpora_conversation (corpus_id, external_id, metadata) FROM STDIN") as copy:
                for c in range(n_conversations):
                    copy.write_row((corpus.pk, f"dia{c}", "{}"))
            with cur.copy("COPY corpora_speaker (corpus_id, external_id, attributes) FROM STDIN") as copy:
                for s in range(n_shows * 4):
                    copy.write_row((corpus.pk, f"spk{s}", "{}"))
            first_conversation = cur.execute("SELECT min(id) FROM corpora_conversation WHERE corpus_id = %s",
                                             (corpus.pk,)).fetchone()[0]
            first_speaker = cur.execute("SELECT min(id) FROM corpora_speaker WHERE corpus_id = %s",
                                        (corpus.pk,)).fetchone()[0]
            columns = ("corpus_id, external_id, conversation_id, turn_index, speaker_id, language_id, text, audio, "
                       "transcript_source, transcript_model, metadata, content_hash, created_at")
            with cur.copy(f"COPY corpora_utterance ({columns}) FROM STDIN") as copy:
                for i in range(n):
                    c, turn = divmod(i, 10)
                    show = c // 10
                    copy.write_row((
                        corpus.pk, f"u{i}", first_conversation + c, turn, first_speaker + show * 4 + turn % 4,
                        languages[show % 2].pk, f"utterance {i} of dialogue {c}: a line said with some feeling",
                        "", "source", "", "{}", f"{i:032x}", "2026-01-01T00:00:00Z",
                    ))
            first_utterance = cur.execute("SELECT min(id) FROM corpora_utterance WHERE corpus_id = %s",
                                          (corpus.pk,)).fetchone()[0]
            columns = ("utterance_id, project_id, schema_version_id, value, perspective, origin, external_rater, "
                       "model_version, created_at, updated_at")
            with cur.copy(f"COPY annotation_annotation ({columns}) FROM STDIN") as copy:
                for i in range(n):
                    emotion = EMOTIONS[(i * 7919) % 23 % 7]
                    human = (i // 100) % 5 == 0  # whole shows are human-labelled, the rest synthetic
                    copy.write_row((
                        first_utterance + i, project.pk, version.pk, json.dumps({"emotion": emotion}), "",
                        "human" if human else "llm", f"r{i % 5}" if human else "", "" if human else "gpt-cot",
                        "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z",
                    ))
        cursor.execute("ANALYZE corpora_utterance; ANALYZE annotation_annotation;")
    print(f"setup: {n} utterances loaded with COPY in {time.perf_counter() - started:.1f} s", flush=True)
    return project.pk


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _backend_cpu_seconds(pid: int) -> float | None:
    """User + system CPU of a local PostgreSQL backend process, or None when it cannot be read."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _run_one(project_id: int, formats: list[str]) -> None:
    import django

    django.setup()
    from django.conf import settings

    from annotation.export.options import export_options_parse
    from annotation.export.services import export_run
    from jobs.models import Job, JobKind
    from jobs.services import job_create

    settings.MEDIA_ROOT = Path(os.environ.get("SENTIO_BENCH_MEDIA", "/tmp/sentio-export-bench-media"))  # noqa: S108
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # The job is made directly (not through export_job_create) so that nothing is sent to a broker.
    options = export_options_parse({"formats": formats, "bootstrap_resamples": 0})
    job = job_create(kind=JobKind.EXPORT, project_id=project_id,
                     params={"source": {"project": project_id}, "options": options.as_params()})
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend_pid = cursor.fetchone()[0]
    backend_before = _backend_cpu_seconds(backend_pid)
    cpu_before = _cpu_seconds()
    started = time.perf_counter()
    export_run(job_id=job.pk)
    seconds = time.perf_counter() - started
    cpu = _cpu_seconds() - cpu_before
    backend_after = _backend_cpu_seconds(backend_pid)
    db_cpu = None if backend_before is None or backend_after is None else backend_after - backend_before
    job = Job.objects.get(pk=job.pk)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "db_cpu_seconds": db_cpu, "peak_rss_mb": peak,
                      "baseline_rss_mb": baseline, "status": job.status, "counts": job.counts,
                      "message": job.message}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--utterances", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--formats", default="parquet")
    parser.add_argument("--run-one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    formats = args.formats.split(",")
    if args.run_one is not None:
        _run_one(args.run_one, formats)
        return
    _ensure_database()
    project_id = _setup(args.utterances)
    results = []
    for run in range(args.runs):
        out = subprocess.run([sys.executable, __file__, "--run-one", str(project_id), "--formats", args.formats],
                             capture_output=True, text=True, check=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        if result["status"] != "succeeded":
            raise SystemExit(f"export failed: {result['message']}")
        results.append(result)
        print(f"run {run + 1}: wall {result['seconds']:.1f} s, CPU {result['cpu_seconds']:.1f} s, "
              f"DB backend CPU {_seconds(result['db_cpu_seconds'])}, peak RSS {result['peak_rss_mb']:.0f} MB "
              f"(after Django setup {result['baseline_rss_mb']:.0f} MB), counts {result['counts']}", flush=True)
    db_cpu = [r["db_cpu_seconds"] for r in results if r["db_cpu_seconds"] is not None]
    print(f"median over {len(results)} runs: wall {statistics.median(r['seconds'] for r in results):.1f} s, "
          f"CPU {statistics.median(r['cpu_seconds'] for r in results):.1f} s, "
          f"DB backend CPU {_seconds(statistics.median(db_cpu) if db_cpu else None)}, "
          f"peak RSS {statistics.median(r['peak_rss_mb'] for r in results):.0f} MB "
          f"(targets: wall under 30 s, under 1024 MB)")


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} s"


if __name__ == "__main__":
    main()
