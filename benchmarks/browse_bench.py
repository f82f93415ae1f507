"""Benchmark: the item browser's list (GET /api/projects/{id}/items/) on a project of a million items.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/sentio_browse_bench \\
        python benchmarks/browse_bench.py --utterances 1000000 --runs 7

Setup (once per size; skipped when the database already holds it) loads with COPY: conversations of 10 utterances,
200 speakers, two languages, a train/dev/test split in the metadata, project items for every utterance (a fifth of
them answered twice, with disagreement on some, model uncertainty on a tenth) and the answers themselves; then
ANALYZE. Each measurement is one request through Django, DRF and the view (the test client, a signed-in lead), timed
with perf_counter; the median of ``--runs`` is printed with the number of SQL queries, the rows returned and the ratio
to the baseline measured in the same run: the first page without filters. Two naive forms of the same list are timed
too for comparison: numbered pages (``OFFSET`` at the same depth as the deep keyset page) and a count of the matches.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "platform")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/sentio_browse_bench")

EMOTIONS = ["neutral", "joy", "surprise", "anger", "sadness", "disgust", "fear"]
SLUG = "browse-bench"
WORDS = ["harbour", "monsoon", "kettle", "ferry", "letter", "market", "train", "river", "garden", "festival"]


def _ensure_database() -> None:
    import psycopg

    url = os.environ["DATABASE_URL"]
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def _setup(n: int) -> tuple[int, int]:
    """n utterances with their project items and answers; returns (project id, lead id)."""
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection

    from annotation.models import Membership, Project, Role
    from annotation.services import label_schema_create
    from corpora.models import Corpus, Language

    call_command("migrate", verbosity=0)
    lead = User.objects.get_or_create(username="bench_lead")[0]
    existing = Corpus.objects.filter(slug=SLUG).first()
    if existing is not None and existing.utterances.count() == n:
        return Project.objects.get(corpus=existing).pk, lead.pk
    if existing is not None:
        Project.objects.filter(corpus=existing).delete()
        existing.delete()
    started = time.perf_counter()
    languages = [Language.objects.get_or_create(code=c, defaults={"name": c, "script": s})[0]
                 for c, s in (("en", "Latn"), ("hi", "Deva"))]
    corpus = Corpus.objects.create(name="Browse benchmark", slug=SLUG, license="CC-BY-4.0", source="synthetic")
    corpus.languages.set(languages)
    version = label_schema_create(
        name="Bench emotions", slug=f"browse-bench-{int(time.time())}",
        questions=[{"key": "emotion", "type": "single_choice", "labels": EMOTIONS, "required": True}],
    )
    # Created directly: project_create would materialise a million items through the ORM.
    project = Project.objects.create(name="Browse bench", corpus=corpus, schema_version=version, overlap=2, created_by=lead)
    Membership.objects.create(project=project, user=lead, role=Role.LEAD)
    raters = [User.objects.get_or_create(username=f"bench_rater{i}")[0] for i in range(2)]
    with connection.cursor() as cursor, cursor.connection.cursor() as cur:
        with cur.copy("COPY corpora_conversation (corpus_id, external_id, metadata) FROM STDIN") as copy:
            for c in range((n + 9) // 10):
                copy.write_row((corpus.pk, f"dia{c}", "{}"))
        with cur.copy("COPY corpora_speaker (corpus_id, external_id, attributes) FROM STDIN") as copy:
            for s in range(200):
                copy.write_row((corpus.pk, f"spk{s}", "{}"))
        first_conversation = cur.execute("SELECT min(id) FROM corpora_conversation WHERE corpus_id = %s", (corpus.pk,)).fetchone()[0]
        first_speaker = cur.execute("SELECT min(id) FROM corpora_speaker WHERE corpus_id = %s", (corpus.pk,)).fetchone()[0]
        columns = ("corpus_id, external_id, conversation_id, turn_index, speaker_id, language_id, text, audio, "
                   "transcript_source, transcript_model, metadata, content_hash, created_at")
        with cur.copy(f"COPY corpora_utterance ({columns}) FROM STDIN") as copy:
            for i in range(n):
                c, turn = divmod(i, 10)
                split = "test" if i % 10 == 9 else "dev" if i % 10 == 8 else "train"
                # One utterance in 100,000 mentions a "lighthouse": a rare word to search for.
                word = "lighthouse" if i % 100_000 == 4242 else WORDS[(i * 7) % len(WORDS)]
                copy.write_row((
                    corpus.pk, f"u{i}", first_conversation + c, turn, first_speaker + (i * 31) % 200,
                    languages[(c // 10) % 2].pk, f"line {i} about the {word}, said with some feeling", "", "source", "",
                    json.dumps({"split": split}), f"{i:032x}", "2026-01-01T00:00:00Z",
                ))
        first_utterance = cur.execute("SELECT min(id) FROM corpora_utterance WHERE corpus_id = %s", (corpus.pk,)).fetchone()[0]
        columns = ("project_id, utterance_id, language_id, is_gold, target_count, annotation_count, reserved_count, "
                   "random_key, disagreement, uncertainty, created_at")
        with cur.copy(f"COPY annotation_projectitem ({columns}) FROM STDIN") as copy:
            for i in range(n):
                answered = i % 5 == 0
                disagreement = 0.5 if answered and i % 35 == 0 else 0.0
                uncertainty = round(((i * 7919) % 1000) / 1000, 3) if i % 10 == 3 else None
                copy.write_row((project.pk, first_utterance + i, languages[(i // 100) % 2].pk, False, 2,
                                2 if answered else 0, 0, (i * 2654435761) % 2**31, disagreement, uncertainty,
                                "2026-01-01T00:00:00Z"))
        columns = ("utterance_id, project_id, schema_version_id, value, perspective, origin, annotator_id, external_rater, "
                   "model_version, created_at, updated_at, lead_time_ms")
        with cur.copy(f"COPY annotation_annotation ({columns}) FROM STDIN") as copy:
            for i in range(0, n, 5):
                first = EMOTIONS[(i * 7919) % 23 % 7]
                second = EMOTIONS[(EMOTIONS.index(first) + 1) % 7] if i % 35 == 0 else first
                for rater, emotion in zip(raters, (first, second)):
                    copy.write_row((first_utterance + i, project.pk, version.pk, json.dumps({"emotion": emotion}), "",
                                    "human", rater.pk, "", "", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", 4000))
        cursor.execute("ANALYZE")  # every table: the planner needs row counts of conversations and speakers too
    print(f"setup: {n} utterances, items and answers loaded with COPY in {time.perf_counter() - started:.1f} s", flush=True)
    return project.pk, lead.pk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--utterances", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    _ensure_database()
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rest_framework.test import APIClient

    from annotation.browse.selectors import BrowseFilters, items_browse
    from annotation.models import Project

    settings.ALLOWED_HOSTS = ["*"]  # the test client's host; nothing is served
    project_id, lead_id = _setup(args.utterances)
    client = APIClient()
    client.force_authenticate(User.objects.get(pk=lead_id))
    url = f"/api/projects/{project_id}/items/"
    deep = client.get(url, {"sort": "id", "page_size": 50}).json()
    # A cursor 90 % of the way down: what "Next" gives after many pages.
    from annotation.browse.selectors import _cursor_encode
    from annotation.models import ProjectItem

    deep_id = ProjectItem.objects.filter(project_id=project_id).order_by("id").values_list("id", flat=True)[int(args.utterances * 0.9)]
    cases = {
        "first page (baseline)": {},
        "page 18,000 (keyset cursor)": {"cursor": _cursor_encode([deep_id])},
        "search, common word": {"q": "harbour"},
        "search, rare word": {"q": "lighthouse"},
        "language": {"language": "hi"},
        "speaker": {"speaker": "spk17"},
        "conversation": {"conversation": "dia45678"},
        "split": {"split": "test"},
        "status complete": {"status": "complete"},
        "status unassigned": {"status": "unassigned"},
        "label": {"label": "anger"},
        "agreement below 0.6": {"agreement_below": "0.6"},
        "least agreement first": {"sort": "agreement"},
        "most uncertain first": {"sort": "uncertainty"},
        "search + language + status": {"q": "harbour", "language": "en", "status": "complete"},
    }
    assert deep["results"], "the project has no items"
    results: dict[str, tuple[float, int, int]] = {}
    for name, params in cases.items():
        times, queries, rows = [], 0, 0
        for run in range(args.runs + 1):
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                response = client.get(url, params)
                elapsed = (time.perf_counter() - started) * 1000
            assert response.status_code == 200, (name, response.content[:200])
            if run:  # the first run warms caches
                times.append(elapsed)
            queries, rows = len(captured), len(response.json()["results"])
        results[name] = (statistics.median(times), queries, rows)

    # The naive forms, for comparison: OFFSET at the deep page's depth, and counting the matches.
    base = items_browse(project=Project.objects.get(pk=project_id), filters=BrowseFilters())
    naive: dict[str, float] = {}
    for name, run in {
        "OFFSET page 18,000 (numbered pages)": lambda: list(base.order_by("id")[int(args.utterances * 0.9): int(args.utterances * 0.9) + 50]),
        "COUNT of all items (a page count)": lambda: base.count(),
    }.items():
        times = []
        for i in range(min(args.runs, 3) + 1):
            started = time.perf_counter()
            run()
            if i:
                times.append((time.perf_counter() - started) * 1000)
        naive[name] = statistics.median(times)

    baseline = results["first page (baseline)"][0]
    print(f"{args.utterances:,} items; medians of {args.runs} requests through Django + DRF (test client), PostgreSQL")
    print(f"{'list':<34}{'median':>10}{'× baseline':>12}{'queries':>9}{'rows':>6}")
    for name, (ms, queries, rows) in results.items():
        print(f"{name:<34}{ms:>7.1f} ms{ms / baseline:>11.1f}×{queries:>9}{rows:>6}")
    for name, ms in naive.items():
        print(f"{name:<34}{ms:>7.1f} ms{ms / baseline:>11.1f}×   (for comparison, not used)")


if __name__ == "__main__":
    main()
