"""Every benchmark at a small and a large size, as one table of ratios against the physical limit, each ratio
measured in the same run (the platform and its bare reference interleaved, so both see the same load).

    createdb -h 127.0.0.1 -U postgres sentio_bench
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/sentio_bench PYTHONPATH=.:platform \\
        python benchmarks/run_all.py --migrate                      # small sizes (a few minutes)
    ... python benchmarks/run_all.py --large                        # small and large sizes
    ... python benchmarks/run_all.py --only import,alpha --large    # some sections

Rows (reference in brackets; ratio = Sentio / reference, lower is better):

- ``import``: the corpus import (``import_bench.import_file``: CSV upload + ``import_run``, the worker's path)
  [a bare ``COPY ... FROM STDIN`` of the very rows that import wrote, into the same tables with the same indexes:
  read back with ``COPY TO`` (for a new corpus, ids moved past the largest), the import's rows deleted, then
  copied in one transaction without the per-row foreign-key triggers, which the import skips too]. Target <= 1.5.
- ``time to annotatable``: the same import into a corpus that already has a project, timed until its items
  exist (they are inserted in the import's transaction) [the import without a project]. Target <= 1.2.
- ``alpha``: Krippendorff's alpha of a raters x units matrix, Sentio including the encoding, and per-label binary
  alpha of multi-label data from long ratings (``agreement_bench``) [``krippendorff.alpha`` on the same data].
  Target <= 1.
- ``report``: the full quality report (``agreement_bench.make_columns`` + ``agreement_report_build``: every
  question, per label, language, annotator, pairwise, per week, 1,000 resamples) [the 5 s target itself].
- ``preannotate``: ``preannotate_bench.py`` in a subprocess (text head through a real Celery worker and
  PostgreSQL) [the bare model over the same texts, measured by that script in the same run].

Not here yet: export against a bare ``pandas.read_sql`` + ``to_parquet``, and submits against the bare SQL
function in a loop (``export_bench.py`` and ``annotate_bench.py`` measure the platform side on their own).

Sizes: small = 10k rows / 1k units / 30k annotations; large (``--large``) = 100k rows / 300k units / 300k
annotations. Each figure is the median of ``--runs`` runs (wall seconds, but CPU seconds for the report; the
machine's load average is printed, as wall time on a shared machine is at the mercy of other work). On the 2-core
development machine at a load average of 10-20, ``--large --runs 3`` with every section took about 35 minutes
(import 100k about 13 of them) and the small sizes alone about 4 minutes.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "platform"), str(REPO / "benchmarks")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import agreement_bench  # noqa: E402
import export_bench  # noqa: E402
import import_bench  # noqa: E402

Row = tuple[str, str, float, float, str]  # what, size, Sentio seconds, reference seconds, target
SIZES = {"import": (10_000, 100_000), "export": (10_000, 100_000), "alpha": (1_000, 300_000),
         "report": (30_000, 300_000), "preannotate": (200, 600)}


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


# --- import and time to annotatable ------------------------------------------------------------------------------


# Columns that point at rows of the copied tables: they move with those rows' ids.
_POINTERS = {"conversation_id": "corpora_conversation", "speaker_id": "corpora_speaker",
             "utterance_id": "corpora_utterance"}


def _dump(corpus_id: int, target_corpus_id: int) -> dict[str, tuple[list[str], bytes]]:
    """The rows the import wrote, per table, as COPY text for another (empty) corpus: every column, ids moved past
    the table's largest so that no key, live or dead, is met again (as the import met none)."""
    from django.db import connection

    dumps = {}
    with connection.cursor() as cursor:
        offsets = {}
        for table in import_bench.CORPUS_TABLES:
            cursor.execute(f"SELECT COALESCE(max(id), 0) FROM {table}")
            offsets[table] = int(cursor.fetchone()[0])
        raw = cursor.connection.cursor()
        for table, where in import_bench.CORPUS_TABLES.items():
            cursor.execute("SELECT column_name FROM information_schema.columns WHERE table_name = %s "
                           "ORDER BY ordinal_position", [table])
            columns = [name for (name,) in cursor.fetchall()]
            select = []
            for name in columns:
                if name == "id":
                    select.append(f"id + {offsets[table]}")
                elif name == "corpus_id":
                    select.append(str(int(target_corpus_id)))
                elif name in _POINTERS:
                    select.append(f"{name} + {offsets[_POINTERS[name]]}")
                else:
                    select.append(name)
            buffer = io.BytesIO()
            query = f"COPY (SELECT {', '.join(select)} FROM {table} WHERE {where.replace('%s', str(int(corpus_id)))}) TO STDOUT"
            with raw.copy(query) as copy:
                for chunk in copy:
                    buffer.write(chunk)
            dumps[table] = (columns, buffer.getvalue())
    return dumps


def _rows_delete(corpus_id: int) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for table in reversed(list(import_bench.CORPUS_TABLES)):
            cursor.execute(f"DELETE FROM {table} WHERE {import_bench.CORPUS_TABLES[table]}", [corpus_id])
        for table in import_bench.CORPUS_TABLES:
            cursor.execute(f"VACUUM {table}")


def _bare_copy(dumps: dict[str, tuple[list[str], bytes]]) -> float:
    """COPY the dumped rows into the same tables, in one transaction, as the import commits its rows."""
    from django.db import connection, transaction

    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        # No per-row foreign-key triggers, as the import skips them (it writes only ids it read or made): what is
        # left is the COPY itself and the same tables' indexes.
        cursor.execute("SET LOCAL session_replication_role = replica")
        raw = cursor.connection.cursor()
        for table, (columns, data) in dumps.items():
            with raw.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                copy.write(data)
    return time.perf_counter() - started


def bench_import(rows: int, runs: int) -> list[Row]:
    from django.contrib.auth.models import User

    from annotation.models import LabelSchemaVersion, ProjectItem
    from annotation.services import project_create
    from jobs.models import JobStatus

    version = LabelSchemaVersion.objects.filter(schema__slug="bench-emotion").order_by("-pk").first()
    lead, _ = User.objects.get_or_create(username="bench_lead")
    imports, copies, annotatable = [], [], []
    with tempfile.TemporaryDirectory(prefix="sentio-bench-") as tmp:
        data = Path(tmp) / "bench.csv"
        import_bench.generate(data, rows)
        for _ in range(runs):
            corpus = import_bench.corpus_new()
            job, store_s, run_s = import_bench.import_file(corpus, data)
            assert job.status == JobStatus.SUCCEEDED, job.message
            imports.append(store_s + run_s)
            target = import_bench.corpus_new()
            dumps = _dump(corpus.pk, target.pk)
            _rows_delete(corpus.pk)  # the tables as the import found them (the corpus and job stay: rows name them)
            copies.append(_bare_copy(dumps))
            import_bench.corpus_purge(target, None)
            import_bench.corpus_purge(corpus, job)

            corpus = import_bench.corpus_new()
            project = project_create(name=f"bench {time.time_ns()}", corpus=corpus, schema_version=version,
                                     created_by=lead, overlap=3)
            job, store_s, run_s = import_bench.import_file(corpus, data)
            assert job.status == JobStatus.SUCCEEDED, job.message
            annotatable.append(store_s + run_s)  # import_run returned: committed, items included
            items = ProjectItem.objects.filter(project=project).count()
            assert items == job.counts["created"], f"{items} items for {job.counts['created']} utterances"
            import_bench.corpus_purge(corpus, job)
    size = f"{rows:,} rows"
    return [("import vs bare COPY", size, median(imports), median(copies), "<= 1.5"),
            ("time to annotatable vs import", size, median(annotatable), median(imports), "<= 1.2")]


# --- export -------------------------------------------------------------------------------------------------------

# What the export's Parquet holds per utterance, read by one query: the utterance's own columns, its language,
# conversation and speaker, and every annotation's answer, origin, rater and model version.
BARE_EXPORT_SQL = """
SELECT u.id, u.external_id, u.text, u.audio, u.turn_index, u.metadata::text AS metadata, l.code AS language,
       c.external_id AS conversation, s.external_id AS speaker, a.value->>'emotion' AS emotion, a.origin,
       a.external_rater, a.model_version
FROM corpora_utterance u
JOIN corpora_language l ON l.id = u.language_id
LEFT JOIN corpora_conversation c ON c.id = u.conversation_id
LEFT JOIN corpora_speaker s ON s.id = u.speaker_id
LEFT JOIN annotation_annotation a ON a.utterance_id = u.id AND a.project_id = %(project)s
WHERE u.corpus_id = (SELECT corpus_id FROM annotation_project WHERE id = %(project)s)
ORDER BY u.id
"""


def _export_once(project_id: int) -> float:
    """The export job's service (export_bench's run, in this process), its wall seconds."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        export_bench._run_one(project_id, ["parquet"])
    result = json.loads(buffer.getvalue().strip().splitlines()[-1])
    assert result["status"] == "succeeded", result
    return float(result["seconds"])


def _bare_export(project_id: int, folder: Path) -> float:
    import warnings

    import pandas as pd
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pandas prefers SQLAlchemy; a DB-API connection reads the same
        frame = pd.read_sql(BARE_EXPORT_SQL, cursor.connection, params={"project": project_id})
    frame.to_parquet(folder / "bare.parquet")
    return time.perf_counter() - started


def bench_export(utterances: int, runs: int) -> list[Row]:
    project_id = export_bench._setup(utterances)
    exports, bare = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(runs):
            bare.append(_bare_export(project_id, Path(tmp)))
            exports.append(_export_once(project_id))
    return [("export (Parquet) vs bare pandas.read_sql + to_parquet", f"{utterances:,} utterances",
             median(exports), median(bare), "")]


# --- alpha --------------------------------------------------------------------------------------------------------


def _interleaved(runs: int, ours: Callable[[], Any], theirs: Callable[[], Any]) -> tuple[float, float]:
    mine, reference = agreement_bench.Timing(), agreement_bench.Timing()
    for _ in range(runs):
        reference.run(theirs)
        mine.run(ours)
    return mine.median, reference.median


def bench_alpha(units: int, runs: int) -> list[Row]:
    import krippendorff
    import numpy as np

    out: list[Row] = []
    for values in (2, 24):
        matrix = agreement_bench.make_matrix(units, 5, values, 0)
        agreement_bench.check(agreement_bench.encode_and_alpha(matrix, "nominal").alpha,
                              float(krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal")),
                              f"{units} units, {values} values")
        ours, theirs = _interleaved(
            runs, lambda m=matrix: agreement_bench.encode_and_alpha(m, "nominal"),
            lambda m=matrix: krippendorff.alpha(reliability_data=m, level_of_measurement="nominal"))
        out.append((f"alpha, matrix, {values} values (incl. encoding)", f"{units:,} units", ours, theirs, "<= 1"))
    labels = agreement_bench.EMOTIONS[:7]
    unit, rater, _, intensity = agreement_bench.make_label_sets(units, len(labels), 0)

    def sentio_per_label() -> Any:
        encoded, levels = agreement_bench.long_to_ratings(unit, rater, intensity)
        return agreement_bench.alpha_per_label(encoded, (levels > 0).astype(np.float64), labels, "nominal")

    def package_per_label() -> Any:
        return agreement_bench.package_per_label(agreement_bench.label_matrices(unit, rater, intensity, True), "nominal")

    for label, result, value in zip(labels, sentio_per_label().values(), package_per_label()):
        agreement_bench.check(result.alpha, value, f"{units} units, per-label {label}")
    ours, theirs = _interleaved(runs, sentio_per_label, package_per_label)
    out.append(("alpha per label, binary, 7 labels (incl. encoding)", f"{units:,} units", ours, theirs, "<= 1"))
    return out


# --- the quality report -------------------------------------------------------------------------------------------


def bench_report(annotations: int, runs: int) -> list[Row]:
    from annotation.quality.report import ReportParams, agreement_report_build

    columns, questions = agreement_bench.make_columns(annotations, 40, 0)
    timing = agreement_bench.Timing()
    for _ in range(runs):
        timing.run(agreement_report_build, columns, questions, ReportParams(n_resamples=1000))
    # CPU seconds: on a shared machine wall time is mostly other work's (the report is one thread of numpy).
    print(f"# report at {columns.size:,}: wall {timing.median:.2f} s, CPU {timing.median_cpu:.2f} s", file=sys.stderr)
    return [("full quality report, 1,000 resamples, CPU s (vs the 5 s target)", f"{columns.size:,} annotations",
             timing.median_cpu, 5.0, "< 1")]


# --- pre-annotation -----------------------------------------------------------------------------------------------


def bench_preannotate(texts: int, runs: int) -> list[Row]:
    """preannotate_bench.py measures the bare model and the platform interleaved; its JSON holds both."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "preannotate.json"
        subprocess.run([sys.executable, str(REPO / "benchmarks" / "preannotate_bench.py"), "--texts", str(texts),
                        "--clips", "2", "--runs", str(runs), "--out", str(out)], check=True)
        result = json.loads(out.read_text())
    seconds = result["text"]["seconds"]
    return [("pre-annotation, text head via worker vs bare model", f"{texts:,} texts",
             median(seconds["platform"]), median(seconds["bare"]), "")]


SECTIONS: dict[str, Callable[[int, int], list[Row]]] = {
    "import": bench_import, "export": bench_export, "alpha": bench_alpha, "report": bench_report, "preannotate": bench_preannotate,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="import,export,alpha,report", help="sections: " + ", ".join(SECTIONS))
    parser.add_argument("--large", action="store_true", help="the large sizes too")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--migrate", action="store_true")
    args = parser.parse_args()
    sections = args.only.split(",")
    if {"import", "export"} & set(sections):
        if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
            raise SystemExit("set DATABASE_URL to a PostgreSQL database (the import's reference is COPY)")
        import_bench.django_ready(migrate=args.migrate)
    load_before = os.getloadavg()
    started = time.perf_counter()
    rows: list[Row] = []
    failures: list[str] = []
    for name in sections:
        for size in SIZES[name][: 2 if args.large else 1]:
            section_started = time.perf_counter()
            try:
                measured = SECTIONS[name](size, args.runs)
            except Exception as exc:  # one section failing (a missing model, data set) leaves the others' rows
                failures.append(f"{name} at {size:,}: {type(exc).__name__}: {exc}")
                continue
            rows.extend(measured)
            print(f"# {name} at {size:,}: {time.perf_counter() - section_started:.0f} s; "
                  + "; ".join(f"{r[0]} {r[2]:.4f}s vs {r[3]:.4f}s" for r in measured), file=sys.stderr, flush=True)
    load_after = os.getloadavg()
    print(f"\n{'measure':58} | {'size':>20} | {'Sentio':>12} | {'reference':>12} | {'ratio':>6} | target")
    print(f"{'-' * 58}-|-{'-' * 20}-|-{'-' * 12}-|-{'-' * 12}-|-{'-' * 6}-|-------")
    for what, size, ours, theirs, target in rows:
        print(f"{what:58} | {size:>20} | {agreement_bench.seconds(ours)} | {agreement_bench.seconds(theirs)} | "
              f"{ours / theirs:6.2f} | {target}")
    print(f"\nmedians of {args.runs} runs; load average {load_before[0]:.1f} before, {load_after[0]:.1f} after; "
          f"{time.perf_counter() - started:.0f} s in all")
    for failure in failures:
        print(f"failed: {failure}")
    if failures:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
