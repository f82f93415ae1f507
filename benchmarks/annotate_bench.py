"""Annotate throughput: N simulated annotators doing next-item + submit against a real gunicorn server.

Usage (PostgreSQL must be running; the database is created if missing):

    . .venv/bin/activate && export PYTHONPATH=.:platform
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/sentio_dist_bench \\
        python benchmarks/annotate_bench.py --concurrency 50 100 200 --runs 3 --seconds 10

Each run makes a fresh overlap-3 project over the same corpus, starts annotators that loop
``POST next`` -> ``POST submit`` (``--mode combined`` uses one ``POST submit`` with ``next: true``
per item instead), and reports submits/s and p50/p99 latency; the median run is reported per
concurrency level. At the end of every run the database is checked for over-assignment (an item with
more human annotations than the overlap, or an annotator with two annotations on one item).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "platform")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

OVERLAP = 3
LABELS = ["joy", "sadness", "anger", "neutral"]


def database_ensure(url: str) -> None:
    import psycopg
    from psycopg import sql

    name = url.rsplit("/", 1)[-1]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def fixtures_make(items: int, annotators: int) -> dict[str, object]:
    """Corpus, schema and users with tokens; made once and reused by later runs."""
    import hashlib

    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    from annotation.models import LabelSchemaVersion
    from annotation.services import label_schema_create
    from corpora.languages import language_get_or_create
    from corpora.models import Corpus, Utterance

    call_command("migrate", verbosity=0)
    corpus, _ = Corpus.objects.get_or_create(slug="bench", defaults={"name": "Bench", "license": "CC0-1.0"})
    have = corpus.utterances.count()
    if have < items:
        english = language_get_or_create("en")
        batch = []
        for i in range(have, items):
            text = f"benchmark utterance number {i}"
            digest = hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
            batch.append(Utterance(corpus=corpus, text=text, language=english, content_hash=digest))
        Utterance.objects.bulk_create(batch, batch_size=5000, ignore_conflicts=True)
    version = LabelSchemaVersion.objects.filter(schema__slug="bench").first() or label_schema_create(
        name="Bench", slug="bench", questions=[{"key": "emotion", "type": "single_choice", "labels": LABELS, "required": True}]
    )
    lead, _ = User.objects.get_or_create(username="bench_lead")
    tokens = []
    existing = {u.username: u for u in User.objects.filter(username__startswith="bench_ann")}
    missing = [User(username=f"bench_ann{i:04d}") for i in range(annotators) if f"bench_ann{i:04d}" not in existing]
    User.objects.bulk_create(missing)
    users = list(User.objects.filter(username__startswith="bench_ann").order_by("username")[:annotators])
    for user in users:
        token, _ = Token.objects.get_or_create(user=user)
        tokens.append(token.key)
    return {"corpus": corpus, "version": version, "lead": lead, "users": users, "tokens": tokens}


def project_make(fixtures: dict[str, object], annotators: int, ordering: str) -> int:
    from annotation.distribution import project_items_sync
    from annotation.models import Membership, OrderingStrategy, Role
    from annotation.services import project_create

    project = project_create(
        name=f"bench {time.time():.0f}", corpus=fixtures["corpus"], schema_version=fixtures["version"],  # type: ignore[arg-type]
        created_by=fixtures["lead"], overlap=OVERLAP, ordering_strategy=OrderingStrategy(ordering),  # type: ignore[arg-type]
    )
    Membership.objects.bulk_create(
        [Membership(project=project, user=user, role=Role.ANNOTATOR) for user in fixtures["users"][:annotators]]  # type: ignore[index]
    )
    project_items_sync(project)
    return project.pk


def over_assignment_check(project_id: int) -> dict[str, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM (SELECT utterance_id FROM annotation_annotation WHERE project_id = %s "
            "GROUP BY utterance_id HAVING count(*) > %s) over_items",
            [project_id, OVERLAP],
        )
        over = cursor.fetchone()[0]
        cursor.execute(
            "SELECT count(*) FROM (SELECT 1 FROM annotation_annotation WHERE project_id = %s "
            "GROUP BY utterance_id, annotator_id HAVING count(*) > 1) twice",
            [project_id],
        )
        twice = cursor.fetchone()[0]
        cursor.execute(
            "SELECT count(*) FROM annotation_projectitem i WHERE i.project_id = %s AND i.annotation_count <> "
            "(SELECT count(*) FROM annotation_annotation a WHERE a.project_id = i.project_id AND a.utterance_id = i.utterance_id)",
            [project_id],
        )
        counter_mismatch = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM annotation_annotation WHERE project_id = %s", [project_id])
        annotations = cursor.fetchone()[0]
    return {"items_over_overlap": over, "annotator_twice_on_item": twice, "counter_mismatch": counter_mismatch,
            "annotations": annotations}


@dataclass
class RunStats:
    submits: int = 0
    errors: int = 0
    submit_ms: list[float] = field(default_factory=list)
    next_ms: list[float] = field(default_factory=list)
    cycle_ms: list[float] = field(default_factory=list)


async def annotator(session, base: str, project_id: int, token: str, mode: str, stop_at: float, warm_until: float,  # type: ignore[no-untyped-def]
                    stats: RunStats, seed: int, interval: float | None) -> None:
    """One annotator's loop; with ``interval`` it starts an item every ``interval`` seconds (paced, open loop).

    Paced latencies are measured from when the request was due, not when it was sent, so a server that falls
    behind is charged for the queue it builds (no coordinated omission).
    """
    headers = {"Authorization": f"Token {token}"}
    next_url, submit_url = f"{base}/api/projects/{project_id}/next/", f"{base}/api/projects/{project_id}/submit/"
    utterance_id = None
    i = seed
    due = time.perf_counter() + (random.Random(seed).random() * interval if interval else 0.0)
    while time.perf_counter() < stop_at:
        if interval:
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            cycle_start = due
            due += interval
        else:
            cycle_start = time.perf_counter()
        if utterance_id is None:
            t0 = time.perf_counter()
            async with session.post(next_url, headers=headers) as response:
                if response.status == 204:
                    return
                if response.status != 200:
                    stats.errors += 1
                    return
                utterance_id = (await response.json())["utterance"]["id"]
            if t0 >= warm_until:
                stats.next_ms.append((time.perf_counter() - t0) * 1000)
        body = {"client_id": str(uuid.uuid4()), "utterance": utterance_id, "value": {"emotion": LABELS[i % 4]},
                "lead_time_ms": 1000 + i % 500, "next": mode == "combined"}
        i += 1
        t0 = cycle_start if interval and mode == "combined" else time.perf_counter()
        async with session.post(submit_url, json=body, headers=headers) as response:
            payload = await response.json(content_type=None)
            if response.status not in (200, 201):
                stats.errors += 1
                utterance_id = None
                continue
        done = time.perf_counter()
        if t0 >= warm_until:
            stats.submits += 1
            stats.submit_ms.append((done - t0) * 1000)
            stats.cycle_ms.append((done - cycle_start) * 1000)
        nxt = payload.get("next") if mode == "combined" else None
        utterance_id = nxt["utterance"]["id"] if nxt else None
        if mode == "combined" and nxt is None:
            return


async def load_run(base: str, project_id: int, tokens: list[str], mode: str, seconds: float, warmup: float,
                   rate: float | None) -> RunStats:
    import aiohttp

    stats = RunStats()
    connector = aiohttp.TCPConnector(limit=len(tokens) + 10)
    async with aiohttp.ClientSession(connector=connector) as session:
        start = time.perf_counter()
        warm_until, stop_at = start + warmup, start + warmup + seconds
        await asyncio.gather(*(
            annotator(session, base, project_id, token, mode, stop_at, warm_until, stats, i,
                      len(tokens) / rate if rate else None)
            for i, token in enumerate(tokens)
        ))
    return stats


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def server_start(args: argparse.Namespace, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": f"{REPO}:{REPO / 'platform'}", "DB_CONN_MAX_AGE": "600", "LOG_LEVEL": "WARNING"}
    command = [
        sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
        "--workers", str(args.workers), "--threads", str(args.threads), "--worker-class", "gthread",
        "--keep-alive", "30", "--backlog", "2048", "--log-level", "warning",
    ]
    server = subprocess.Popen(command, cwd=REPO, env=env)
    for _ in range(200):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return server
        time.sleep(0.1)
    server.terminate()
    raise SystemExit("gunicorn did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[50, 100, 200])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--items", type=int, default=30000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--mode", choices=["separate", "combined"], default="separate",
                        help="separate: POST next then POST submit; combined: POST submit with next=true")
    parser.add_argument("--rate", type=float, help="paced load: the submits/s all annotators together try to make "
                        "(each starts an item every concurrency/rate seconds); without it, each loops as fast as it can")
    parser.add_argument("--ordering", default="sequential",
                        choices=["sequential", "random", "least_annotated", "disagreement", "uncertainty"])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        raise SystemExit("set DATABASE_URL to a PostgreSQL database, e.g. postgres://postgres@127.0.0.1:5432/sentio_dist_bench")
    database_ensure(url)
    fixtures = fixtures_make(args.items, max(args.concurrency))
    server = server_start(args, args.port)
    base = f"http://127.0.0.1:{args.port}"
    results = []
    try:
        for concurrency in args.concurrency:
            runs = []
            for run in range(args.runs):
                project_id = project_make(fixtures, concurrency, args.ordering)
                stats = asyncio.run(load_run(base, project_id, fixtures["tokens"][:concurrency], args.mode, args.seconds,  # type: ignore[index]
                                             args.warmup, args.rate))
                check = over_assignment_check(project_id)
                row = {
                    "concurrency": concurrency, "run": run + 1, "submits_per_s": stats.submits / args.seconds,
                    "submit_p50_ms": percentile(stats.submit_ms, 0.50), "submit_p99_ms": percentile(stats.submit_ms, 0.99),
                    "next_p50_ms": percentile(stats.next_ms, 0.50), "next_p99_ms": percentile(stats.next_ms, 0.99),
                    "cycle_p50_ms": percentile(stats.cycle_ms, 0.50), "cycle_p99_ms": percentile(stats.cycle_ms, 0.99),
                    "errors": stats.errors, **check,
                }
                runs.append(row)
                print(json.dumps(row), flush=True)
                if check["items_over_overlap"] or check["annotator_twice_on_item"] or check["counter_mismatch"]:
                    raise SystemExit(f"OVER-ASSIGNMENT in project {project_id}: {check}")
            median = sorted(runs, key=lambda r: r["submits_per_s"])[len(runs) // 2]
            results.append({**median, "run": "median", "submits_per_s_all": [round(r["submits_per_s"], 1) for r in runs],
                            "submit_p99_ms_median": statistics.median(r["submit_p99_ms"] for r in runs)})
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)

    print(f"\nmode={args.mode} ordering={args.ordering} rate={args.rate or 'max'} workers={args.workers} "
          f"threads={args.threads} runs={args.runs} seconds={args.seconds}")
    print(f"{'annotators':>10} {'submits/s':>10} {'submit p50':>11} {'submit p99':>11} {'next p50':>9} {'next p99':>9} {'cycle p99':>10} {'over':>5}")
    for row in results:
        print(f"{row['concurrency']:>10} {row['submits_per_s']:>10.1f} {row['submit_p50_ms']:>9.1f}ms {row['submit_p99_ms']:>9.1f}ms "
              f"{row['next_p50_ms']:>7.1f}ms {row['next_p99_ms']:>7.1f}ms {row['cycle_p99_ms']:>8.1f}ms "
              f"{row['items_over_overlap'] + row['annotator_twice_on_item']:>5}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
