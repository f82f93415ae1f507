"""Benchmark the Label Studio import: a synthetic Label Studio JSON export (tasks with three annotators each and a
model prediction) -> label_studio_import_job_create -> label_studio_import_run, as ``import_label_studio`` runs it.

    createdb -h 127.0.0.1 -U postgres sentio_bench
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/sentio_bench \\
        python benchmarks/label_studio_bench.py --tasks 100000 --runs 3 --migrate

Each run imports the same file into a fresh corpus and reports tasks/s, annotation rows/s (human annotations,
predictions and their model annotations) and the peak resident memory of this process (sampled every 50 ms).
The baseline, measured in the same run on the same content: Sentio's own CSV import (utterances with the first
annotator's label, then the other two annotators' labels in a second file), the path the issue's "Sentio took
18-34 s" figure comes from.

``--label-studio`` also measures Label Studio's own import of the same export in the same run: it installs Label
Studio from PyPI into var/label-studio/venv (once; the time is printed), starts it on loopback with its documented
``label-studio start`` on its own PostgreSQL database (``<db>_label_studio``; ``--label-studio-sqlite`` for SQLite),
uploads the export to its import API and prints tasks/s, rows/s and its server's peak RSS next to Sentio's.
``--label-studio-tasks N`` gives Label Studio only the first N tasks when the whole export would take it too long;
the comparison is then per task. Without the flag the figures of issue 21 (350-456 s per 100k tasks) stand in.

``--rich`` gives every annotation six answers (choices, multi-label, rating, number, text, taxonomy) instead of one.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "platform"), str(REPO / "benchmarks")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from import_bench import RssSampler, backend_cpu_s, process_cpu_s  # noqa: E402

LABELS = ["joy", "sadness", "anger", "fear", "neutral"]
WORDS = ("the of and to in is that it for was on are as with his they at be this from have or by one had not "
         "but what all were when we there can an your which their said if do will each about how up out them").split()
# Label Studio refuses annotations by users it does not have: in a fresh one the benchmark makes these three after
# its own user (id 1).
ANNOTATORS = (2, 3, 4)
SIMPLE_CONFIG = ('<View><Text name="text" value="$text"/><Choices name="emotion" toName="text">'
                 + "".join(f'<Choice value="{label}"/>' for label in LABELS) + "</Choices></View>")
RICH_CONFIG = SIMPLE_CONFIG.replace("</View>", (
    '<Choices name="present" toName="text" choice="multiple">'
    + "".join(f'<Choice value="{label}"/>' for label in LABELS[:4]) + "</Choices>"
    '<Rating name="intensity" toName="text" maxRating="5"/>'
    '<Number name="valence" toName="text" min="1" max="5"/>'
    '<TextArea name="why" toName="text"/>'
    '<Taxonomy name="topic" toName="text"><Choice value="Family"><Choice value="Parents"/></Choice>'
    '<Choice value="Work"/></Taxonomy></View>'))


def _region(name: str, kind: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"id": f"{name[:2]}{random.getrandbits(24):x}", "from_name": name, "to_name": "text", "type": kind,
            "value": value, "origin": "manual"}


def generate(path: Path, csv_dir: Path, tasks: int, *, rich: bool, seed: int = 7) -> None:
    """The Label Studio export, and the same content as the two CSV files of the baseline."""
    rng = random.Random(seed)
    random.seed(seed)
    with path.open("w", encoding="utf-8") as out, (csv_dir / "utterances.csv").open("w", newline="") as first, \
            (csv_dir / "labels.csv").open("w", newline="") as rest:
        utterances, labels = csv.writer(first), csv.writer(rest)
        utterances.writerow(["id", "text", "rater", "emotion"])
        labels.writerow(["id", "rater", "emotion"])
        out.write("[")
        annotation_id = 0
        for i in range(tasks):
            text = " ".join(rng.choices(WORDS, k=rng.randint(4, 16))) + f" #{i}"
            truth = rng.randrange(5)
            annotations = []
            for k, user in enumerate(ANNOTATORS):
                annotation_id += 1
                label = LABELS[truth if rng.random() < 0.8 else rng.randrange(5)]
                result = [_region("emotion", "choices", {"choices": [label]})]
                if rich:
                    result += [_region("present", "choices", {"choices": [] if label == "neutral" else [label]}),
                               _region("intensity", "rating", {"rating": rng.randint(1, 5)}),
                               _region("valence", "number", {"number": rng.randint(1, 5)}),
                               _region("topic", "taxonomy", {"taxonomy": [["Family", "Parents"]]})]
                    if k == 0:
                        result.append(_region("why", "textarea", {"text": ["because " + text[:20]]}))
                annotations.append({
                    "id": annotation_id, "completed_by": user, "result": result, "was_cancelled": False,
                    "ground_truth": False, "created_at": "2024-03-01T10:00:00.000000Z",
                    "updated_at": "2024-03-01T10:00:00.000000Z", "lead_time": round(rng.uniform(2, 30), 3),
                    "prediction": {}, "result_count": 0, "unique_id": f"u{annotation_id}", "import_id": None,
                    "last_action": None, "task": i + 1, "project": 1, "updated_by": user,
                    "parent_prediction": None, "parent_annotation": None, "last_created_by": None,
                })
                (utterances if k == 0 else labels).writerow(
                    [f"t{i + 1}", text, f"ls:{user}", label] if k == 0 else [f"t{i + 1}", f"ls:{user}", label])
            task = {"id": i + 1, "data": {"text": text}, "annotations": annotations,
                    "predictions": [{"id": i + 1, "model_version": "bench-model", "score": 0.7,
                                     "result": [_region("emotion", "choices", {"choices": [LABELS[truth]]})]}],
                    "drafts": [], "meta": {}, "created_at": "2024-02-28T09:00:00Z", "updated_at": "2024-03-01T10:00:00Z",
                    "inner_id": i + 1, "total_annotations": 3, "cancelled_annotations": 0, "total_predictions": 1,
                    "comment_count": 0, "unresolved_comment_count": 0, "last_comment_updated_at": None,
                    "project": 1, "updated_by": None, "file_upload": 1, "comment_authors": []}
            out.write(("\n" if i == 0 else ",\n") + json.dumps(task))
        out.write("\n]\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rich", action="store_true", help="six answers per annotation instead of one")
    parser.add_argument("--no-baseline", action="store_true", help="skip Sentio's CSV import of the same content")
    parser.add_argument("--migrate", action="store_true", help="run migrations on the database first")
    parser.add_argument("--label-studio", action="store_true",
                        help="also install Label Studio (own virtualenv under var/label-studio, once) and time its own "
                             "import of the same export, in this run")
    parser.add_argument("--label-studio-tasks", type=int, default=0,
                        help="tasks for Label Studio's import (the first N of the same export; default: all)")
    parser.add_argument("--label-studio-sqlite", action="store_true",
                        help="run Label Studio on SQLite instead of its own PostgreSQL database")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        print("set DATABASE_URL to a PostgreSQL database (the bulk path under test is COPY)", file=sys.stderr)
        return 2

    import django

    media = tempfile.TemporaryDirectory(prefix="sentio-bench-media-")
    os.environ.setdefault("SENTIO_DATA_DIR", media.name)
    django.setup()
    from django.conf import settings
    from django.core.files import File
    from django.core.management import call_command
    from django.db import connection

    settings.MEDIA_ROOT = media.name
    if args.migrate:
        call_command("migrate", verbosity=0)

    from annotation.label_studio.services import label_studio_import_job_create, label_studio_import_run
    from annotation.models import LabelSchema
    from annotation.services import label_schema_create
    from corpora.importing.services import import_job_create, import_run
    from corpora.services import corpus_create
    from jobs.models import JobStatus

    if not LabelSchema.objects.filter(slug="bench-ls-emotion").exists():
        label_schema_create(name="Bench LS emotion", slug="bench-ls-emotion",
                            questions=[{"key": "emotion", "type": "single_choice", "labels": LABELS}])
    config = RICH_CONFIG if args.rich else SIMPLE_CONFIG

    def cleanup(corpus_id: int) -> None:
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM annotation_prediction WHERE utterance_id IN "
                           "(SELECT id FROM corpora_utterance WHERE corpus_id = %s)", [corpus_id])
            cursor.execute("DELETE FROM annotation_annotation WHERE utterance_id IN "
                           "(SELECT id FROM corpora_utterance WHERE corpus_id = %s)", [corpus_id])
            for table in ("corpora_utterance", "corpora_conversation", "corpora_speaker", "corpora_corpus_languages"):
                cursor.execute(f"DELETE FROM {table} WHERE corpus_id = %s", [corpus_id])
            cursor.execute("DELETE FROM jobs_joberror WHERE job_id IN (SELECT id FROM jobs_job WHERE corpus_id = %s)",
                           [corpus_id])
            cursor.execute("DELETE FROM jobs_job WHERE corpus_id = %s", [corpus_id])
            cursor.execute("DELETE FROM corpora_corpus WHERE id = %s", [corpus_id])
            for table in ("annotation_annotation", "annotation_prediction", "corpora_utterance"):
                cursor.execute(f"VACUUM {table}")

    def measured(work: Any) -> tuple[float, float, float, float | None, Any]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backend_pid = cursor.fetchone()[0]
        backend_before, process_before = backend_cpu_s(backend_pid), process_cpu_s()
        with RssSampler() as rss:
            started = time.perf_counter()
            outcome = work()
            wall = time.perf_counter() - started
        backend_after = backend_cpu_s(backend_pid)
        backend = backend_after - backend_before if backend_before is not None and backend_after is not None else None
        return wall, rss.peak_kb / 1024, process_cpu_s() - process_before, backend, outcome

    with tempfile.TemporaryDirectory(prefix="sentio-ls-bench-") as tmp:
        export = Path(tmp) / "export.json"
        started = time.perf_counter()
        generate(export, Path(tmp), args.tasks, rich=args.rich)
        print(f"generated {args.tasks:,} tasks x {len(ANNOTATORS)} annotations ({export.stat().st_size / 1e6:.0f} MB) "
              f"in {time.perf_counter() - started:.1f} s; {'rich' if args.rich else 'one question'}")
        label_studio_result = None
        if args.label_studio:
            ls_tasks = min(args.label_studio_tasks or args.tasks, args.tasks)
            ls_export = export
            if ls_tasks < args.tasks:
                ls_export = Path(tmp) / "export-label-studio.json"
                ls_dir = Path(tmp) / "ls-csv"
                ls_dir.mkdir()
                generate(ls_export, ls_dir, ls_tasks, rich=args.rich)  # the same seed: the first tasks of the export
            label_studio_result = label_studio_import(ls_export, ls_tasks, config, sqlite=args.label_studio_sqlite)
        walls, peaks, rows_rates, cpus, baseline_walls, baseline_peaks, baseline_cpus = [], [], [], [], [], [], []
        for run in range(1, args.runs + 1):
            corpus = corpus_create(name=f"ls bench {time.time_ns()}", license="CC0-1.0", created_by=None)

            def ls_import(corpus: Any = corpus, run: int = run) -> Any:
                with export.open("rb") as fh:
                    job = label_studio_import_job_create(
                        corpus=corpus, export_file=File(fh, name="export.json"), label_config=config,
                        options={"language": "en", "schema": f"bench-ls-{run}"}, created_by=None, enqueue=False)
                label_studio_import_run(job_id=job.pk)
                job.refresh_from_db()
                return job

            wall, peak, process_cpu, backend_cpu, job = measured(ls_import)
            if job.status != JobStatus.SUCCEEDED:
                print(f"run {run}: job {job.status}: {job.message}", file=sys.stderr)
                return 1
            counts = job.counts
            rows = counts["utterances"] + counts["annotations"] + counts["predictions"] + counts["model_annotations"]
            walls.append(wall)
            peaks.append(peak)
            cpus.append(process_cpu + (backend_cpu or 0.0))
            rows_rates.append(rows / wall)
            backend_text = f"{backend_cpu:.1f} s" if backend_cpu is not None else "unreadable"
            print(f"run {run}: Sentio's import of the Label Studio export, {counts['tasks']:,} tasks ({counts['annotations']:,} annotations, "
                  f"{counts['predictions']:,} predictions) in {wall:.1f} s = {counts['tasks'] / wall:,.0f} tasks/s, "
                  f"{rows / wall:,.0f} rows/s; CPU process {process_cpu:.1f} s + PostgreSQL {backend_text}; "
                  f"peak RSS {peak:.0f} MB")
            cleanup(corpus.pk)
            if args.no_baseline:
                continue
            baseline = corpus_create(name=f"csv bench {time.time_ns()}", license="CC0-1.0", created_by=None)

            def csv_import(baseline: Any = baseline) -> Any:
                jobs = []
                for name, mapping in (
                    ("utterances.csv", {"external_id": "id", "text": "text", "rater_column": "rater",
                                        "labels": {"emotion": "emotion"}}),
                    ("labels.csv", {"external_id": "id", "target": "existing", "rater_column": "rater",
                                    "labels": {"emotion": "emotion"}}),
                ):
                    with (Path(tmp) / name).open("rb") as fh:
                        job = import_job_create(corpus=baseline, files=[File(fh, name=name)], created_by=None,
                                                options={"mapping": mapping, "schema": "bench-ls-emotion",
                                                         "language": "en"}, enqueue=False)
                    import_run(job_id=job.pk)
                    job.refresh_from_db()
                    jobs.append(job)
                return jobs

            base_wall, base_peak, base_process, base_backend, jobs = measured(csv_import)
            failed = [j for j in jobs if j.status != JobStatus.SUCCEEDED]
            if failed:
                print(f"baseline run {run}: {failed[0].status}: {failed[0].message}", file=sys.stderr)
                return 1
            baseline_walls.append(base_wall)
            baseline_peaks.append(base_peak)
            baseline_cpus.append(base_process + (base_backend or 0.0))
            print(f"run {run}: baseline CSV import of the same utterances and labels "
                  f"({sum(j.counts.get('annotations', 0) for j in jobs):,} labels) in {base_wall:.1f} s; CPU process "
                  f"{base_process:.1f} s + PostgreSQL {base_backend or 0.0:.1f} s; peak RSS {base_peak:.0f} MB")
            cleanup(baseline.pk)
        median, cpu = statistics.median(walls), statistics.median(cpus)
        print(f"median over {args.runs} run(s): {median:.1f} s = {args.tasks / median:,.0f} tasks/s, "
              f"{statistics.median(rows_rates):,.0f} rows/s, CPU {cpu:.1f} s (this process + PostgreSQL), "
              f"peak RSS {statistics.median(peaks):.0f} MB")
        if baseline_walls:
            base, base_cpu = statistics.median(baseline_walls), statistics.median(baseline_cpus)
            print(f"baseline (Sentio CSV import, same run): median {base:.1f} s, CPU {base_cpu:.1f} s, peak RSS "
                  f"{statistics.median(baseline_peaks):.0f} MB; Label Studio import / CSV import = {median / base:.2f} "
                  f"(wall), {cpu / base_cpu:.2f} (CPU)")
        scale = args.tasks / 100_000
        low, high = 350 * scale, 456 * scale
        # On a quiet machine the wall time is at most the CPU sum (the import and PostgreSQL take turns).
        print(f"vs Label Studio's own import (issue 21: 350-456 s per 100k tasks, scaled: {low:.0f}-{high:.0f} s): "
              f"{low / median:.1f}x-{high / median:.1f}x faster by this run's wall time, {low / cpu:.1f}x-"
              f"{high / cpu:.1f}x by CPU time (target >= 10x); load average now {os.getloadavg()[0]:.1f}")
        if label_studio_result is not None:
            ls_wall, ls_tasks, ls_rows, ls_peak_mb, ls_cpu = label_studio_result
            ls_per_100k = ls_wall / ls_tasks * 100_000
            sentio_per_100k = median / args.tasks * 100_000
            print(f"Label Studio (same run): {ls_tasks:,} tasks in {ls_wall:.1f} s = {ls_tasks / ls_wall:,.0f} tasks/s, "
                  f"{ls_rows / ls_wall:,.0f} rows/s, peak RSS {ls_peak_mb:.0f} MB; per 100k tasks {ls_per_100k:.0f} s "
                  f"vs Sentio {sentio_per_100k:.1f} s = Sentio {ls_per_100k / sentio_per_100k:.1f}x faster "
                  f"(target >= 10x); rows/s {statistics.median(rows_rates) / (ls_rows / ls_wall):.1f}x; CPU per 100k "
                  f"tasks: Label Studio's server alone {ls_cpu / ls_tasks * 100_000:.0f} s (its PostgreSQL not counted) "
                  f"vs Sentio {cpu / args.tasks * 100_000:.1f} s with PostgreSQL")
    media.cleanup()
    return 0


def label_studio_import(export: Path, tasks: int, config: str, *,
                        sqlite: bool) -> tuple[float, int, int, float, float]:
    """Label Studio's own import of ``export`` (POST /api/projects/<id>/import, as its UI uploads a file; the
    Community edition imports within the request): (seconds, tasks, rows, peak RSS MB and CPU seconds of its
    server)."""
    import label_studio_live as live

    install_s = live.install()
    print(f"Label Studio {live.VERSION}: " + (f"installed into {live.VENV} in {install_s:.0f} s" if install_s
                                               else f"already installed in {live.VENV}"), flush=True)
    started = time.perf_counter()
    database = "" if sqlite else os.environ["DATABASE_URL"]
    with live.label_studio(database_url=database, database_name=f"{_database_name()}_label_studio") as server:
        print(f"Label Studio started ({'SQLite' if sqlite else 'PostgreSQL'}) in {time.perf_counter() - started:.0f} s "
              f"at {server.url}; RSS {server.rss_kb() / 1024:.0f} MB", flush=True)
        users = [server.api("POST", "/api/users", json={"email": f"annotator{n}@example.com", "username": f"annotator{n}"})
                 for n in ANNOTATORS]
        if tuple(user["id"] for user in users) != ANNOTATORS:
            raise RuntimeError(f"Label Studio gave the annotators ids {[u['id'] for u in users]}, not {ANNOTATORS}")
        project = server.api("POST", "/api/projects", json={"title": "Sentio benchmark", "label_config": config})
        cpu_before, peak = server.cpu_s(), server.rss_kb()
        stop = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not stop.wait(0.05):
                peak = max(peak, server.rss_kb())

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.perf_counter()
        with export.open("rb") as fh:
            answer = server.api("POST", f"/api/projects/{project['id']}/import",
                                files={"file": ("export.json", fh, "application/json")})
        wall = time.perf_counter() - started
        stop.set()
        sampler.join()
        cpu = server.cpu_s() - cpu_before
        counts = server.api("GET", f"/api/projects/{project['id']}")
        imported = (counts["task_number"], counts["total_annotations_number"], counts["total_predictions_number"])
        print(f"Label Studio import: {answer.get('task_count')} tasks, {answer.get('annotation_count')} annotations, "
              f"{answer.get('prediction_count')} predictions in {wall:.1f} s; its server's CPU {cpu:.1f} s, peak RSS "
              f"{peak / 1024:.0f} MB; the project now holds {imported[0]:,} tasks, {imported[1]:,} annotations, "
              f"{imported[2]:,} predictions", flush=True)
        if imported[0] != tasks:
            raise RuntimeError(f"Label Studio holds {imported[0]} tasks, not {tasks}")
    return wall, tasks, sum(imported), peak / 1024, cpu


def _database_name() -> str:
    from urllib.parse import urlsplit

    return urlsplit(os.environ["DATABASE_URL"]).path.lstrip("/") or "sentio"


if __name__ == "__main__":
    sys.exit(main())
