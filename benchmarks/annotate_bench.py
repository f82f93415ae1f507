"""Annotate throughput: N simulated annotators doing next-item + submit against a real HTTP server.

Usage (PostgreSQL must be running; the database, whose name must contain "bench", is dropped and created anew
unless ``--keep-database`` is given):

    . .venv/bin/activate && export PYTHONPATH=.:platform
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/sentio_dist_bench \\
        python benchmarks/annotate_bench.py --concurrency 50 100 200 --runs 3 --seconds 10

Each run makes a fresh overlap-3 project over the same corpus, starts annotators that loop
``POST next`` -> ``POST submit`` (``--mode combined`` uses one ``POST submit`` with ``next: true``
per item instead), and reports submits/s and p50/p99 latency; the median run is reported per
concurrency level. At the end of every run the database is checked for over-assignment (an item with
more human annotations than the overlap, or an annotator with two annotations on one item).

The server is the web image's (granian, ``--workers 2 --threads 4``; ``--server gunicorn`` for comparison). Each
run also reports the CPU time the server, PostgreSQL and this load generator spent per submit (from /proc): on
a machine where all three share the cores, that is what bounds throughput. The server inherits this environment:
Every request goes through Django's middleware and DRF.
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


def database_ensure(url: str, fresh: bool) -> None:
    """Create the benchmark database; ``fresh`` drops it first (earlier runs' projects would bloat the tables)."""
    import psycopg
    from psycopg import sql

    name = url.rsplit("/", 1)[-1]
    if fresh and "bench" not in name:
        raise SystemExit(f"refusing to drop database {name!r}: give a database whose name contains 'bench', "
                         "or pass --keep-database")
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if fresh:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
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
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return {"corpus": corpus, "version": version, "lead": lead, "users": users, "tokens": tokens}


def project_make(fixtures: dict[str, object], annotators: int, ordering: str) -> int:
    from annotation.distribution.services import project_items_sync
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
    from django.db import connection

    with connection.cursor() as cursor:  # a lead's project is not measured seconds after a bulk insert
        cursor.execute("VACUUM ANALYZE annotation_projectitem, annotation_reservation, annotation_annotation")
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
    submits_all: int = 0  # warm-up included
    errors: int = 0
    submit_ms: list[float] = field(default_factory=list)
    next_ms: list[float] = field(default_factory=list)
    cycle_ms: list[float] = field(default_factory=list)


class HttpConnection:
    """One annotator's keep-alive HTTP/1.1 connection, speaking just what this benchmark needs.

    The load generator shares the machine's two cores with the server and PostgreSQL, so it must cost as little
    as it can: aiohttp spent about 0.4-0.6 ms of CPU per request here (10-15% of the machine at full load),
    this about a third of that. Every request is a POST with a JSON body; the answer is read by Content-Length
    or chunked transfer encoding.
    """

    def __init__(self, host: str, port: int, token: str) -> None:
        self.host, self.port = host, port
        self.prefix = f"Host: {host}:{port}\r\nAuthorization: Token {token}\r\nContent-Type: application/json\r\n"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: dict[str, object] | None = None) -> tuple[int, object]:
        """(status, parsed JSON of a 2xx answer); status 0 when the connection failed (it is reopened next time)."""
        try:
            return await self._exchange(path, body)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            self.close()
            return 0, None

    async def _exchange(self, path: str, body: dict[str, object] | None) -> tuple[int, object]:
        payload = json.dumps(body).encode() if body is not None else b""
        head = f"POST {path} HTTP/1.1\r\n{self.prefix}Content-Length: {len(payload)}\r\n\r\n".encode()
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(head + payload)
        status_line, *header_lines = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        headers = {}
        for line in header_lines:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            raw = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while size := int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16):
                chunks.append(await self.reader.readexactly(size))
                await self.reader.readexactly(2)
            while await self.reader.readuntil(b"\r\n") != b"\r\n":
                pass  # trailer fields
            raw = b"".join(chunks)
        else:
            raw = b""
        if headers.get("connection", "").lower() == "close":
            self.close()
        status = int(status_line.split(" ", 2)[1])
        return status, json.loads(raw) if raw and 200 <= status < 300 else None

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def annotator(host: str, port: int, project_id: int, token: str, mode: str, stop_at: float,
                    warm_until: float, stats: RunStats, seed: int, interval: float | None) -> None:
    """One annotator's loop; with ``interval`` it starts an item every ``interval`` seconds (paced, open loop).

    Paced latencies are measured from when the request was due, not when it was sent, so a server that falls
    behind is charged for the queue it builds (no coordinated omission).
    """
    http = HttpConnection(host, port, token)
    next_url, submit_url = f"/api/projects/{project_id}/next/", f"/api/projects/{project_id}/submit/"
    utterance_id = None
    i = seed
    due = time.perf_counter() + (random.Random(seed).random() * interval if interval else 0.0)
    try:
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
                status, answer = await http.post(next_url)
                if status == 204:
                    return
                if status != 200:
                    stats.errors += 1
                    return
                utterance_id = answer["utterance"]["id"]  # type: ignore[index]
                if t0 >= warm_until:
                    stats.next_ms.append((time.perf_counter() - t0) * 1000)
            body = {"client_id": str(uuid.uuid4()), "utterance": utterance_id, "value": {"emotion": LABELS[i % 4]},
                    "lead_time_ms": 1000 + i % 500, "next": mode == "combined"}
            i += 1
            t0 = cycle_start if interval and mode == "combined" else time.perf_counter()
            status, answer = await http.post(submit_url, body)
            if status not in (200, 201):
                stats.errors += 1
                utterance_id = None
                continue
            done = time.perf_counter()
            stats.submits_all += 1
            if t0 >= warm_until:
                stats.submits += 1
                stats.submit_ms.append((done - t0) * 1000)
            if cycle_start >= warm_until:
                stats.cycle_ms.append((done - cycle_start) * 1000)
            following = answer.get("next") if mode == "combined" else None  # type: ignore[union-attr]
            utterance_id = following["utterance"]["id"] if following else None
            if mode == "combined" and following is None:
                return
    finally:
        http.close()


async def load_run(port: int, project_id: int, tokens: list[str], mode: str, seconds: float, warmup: float,
                   rate: float | None) -> RunStats:
    stats = RunStats()
    start = time.perf_counter()
    warm_until, stop_at = start + warmup, start + warmup + seconds
    await asyncio.gather(*(
        annotator("127.0.0.1", port, project_id, token, mode, stop_at, warm_until, stats, i,
                  len(tokens) / rate if rate else None)
        for i, token in enumerate(tokens)
    ))
    return stats


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


_TICKS = os.sysconf("SC_CLK_TCK")


def _process_seconds(pid: int) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0  # gone since it was listed
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            children.setdefault(int(stat[stat.rindex(")") + 2:].split()[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def postgres_pids() -> list[int]:
    """This database's backends and the cluster's own processes (WAL writer, checkpointer, autovacuum...)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                       "OR backend_type <> 'client backend'")
        return [pid for (pid,) in cursor.fetchall()]


def process_cpu_seconds(server_pid: int) -> dict[str, dict[int, float]]:
    """CPU seconds used so far by each process of the server, PostgreSQL and this client (from /proc, Linux)."""
    groups = {"server": _descendants(server_pid), "postgres": postgres_pids(), "client": [os.getpid()]}
    return {name: {pid: _process_seconds(pid) for pid in pids} for name, pids in groups.items()}


def cpu_ms_per_submit(before: dict[str, dict[int, float]], after: dict[str, dict[int, float]],
                      submits: int) -> dict[str, float]:
    """Per group, the CPU its processes spent between the snapshots (those started since count from 0)."""
    return {
        f"cpu_ms_{name}": round(1000 * sum(seconds - before[name].get(pid, 0.0) for pid, seconds in after[name].items())
                                / max(1, submits), 3)
        for name in after
    }


def server_start(args: argparse.Namespace, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": f"{REPO}:{REPO / 'platform'}", "DB_CONN_MAX_AGE": "600", "LOG_LEVEL": "WARNING"}
    if args.server == "granian":
        command = [
            sys.executable, "-m", "granian", "--interface", "wsgi", "config.wsgi:application", "--host", "127.0.0.1",
            "--port", str(port), "--workers", str(args.workers), "--blocking-threads", str(args.threads),
            "--backlog", "2048", "--log-level", "warning", "--no-ws",
        ]
    else:
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
    # The web image's settings (docker/Dockerfile.web): one granian worker per core, 4 threads each.
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--server", choices=["granian", "gunicorn"], default="granian",
                        help="gunicorn (gthread) is what Sentio used before; kept for comparison")
    parser.add_argument("--mode", choices=["separate", "combined"], default="separate",
                        help="separate: POST next then POST submit; combined: POST submit with next=true")
    parser.add_argument("--rate", type=float, help="paced load: the submits/s all annotators together try to make "
                        "(each starts an item every concurrency/rate seconds); without it, each loops as fast as it can")
    parser.add_argument("--ordering", default="sequential",
                        choices=["sequential", "random", "least_annotated", "disagreement", "uncertainty"])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--keep-database", action="store_true",
                        help="reuse the database and fixtures of an earlier invocation instead of starting empty")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        raise SystemExit("set DATABASE_URL to a PostgreSQL database, e.g. postgres://postgres@127.0.0.1:5432/sentio_dist_bench")
    database_ensure(url, fresh=not args.keep_database)
    fixtures = fixtures_make(args.items, max(args.concurrency))
    server = server_start(args, args.port)
    results = []
    try:
        # Unmeasured: every server thread opens its database connection and prepares its statements, and
        # PostgreSQL settles after the fixtures' bulk inserts; otherwise the first measured run pays for both.
        warm_project = project_make(fixtures, max(args.concurrency), args.ordering)
        asyncio.run(load_run(args.port, warm_project, fixtures["tokens"][:max(args.concurrency)], args.mode,  # type: ignore[index]
                             args.warmup, 0.0, None))
        for concurrency in args.concurrency:
            runs = []
            for run in range(args.runs):
                project_id = project_make(fixtures, concurrency, args.ordering)
                cpu_before = process_cpu_seconds(server.pid)
                stats = asyncio.run(load_run(args.port, project_id, fixtures["tokens"][:concurrency], args.mode, args.seconds,  # type: ignore[index]
                                             args.warmup, args.rate))
                cpu_after = process_cpu_seconds(server.pid)
                # Per submit over the whole run, warm-up included: what each request costs each process.
                cpu_ms = cpu_ms_per_submit(cpu_before, cpu_after, stats.submits_all)
                check = over_assignment_check(project_id)
                row = {
                    "concurrency": concurrency, "run": run + 1, "submits_per_s": stats.submits / args.seconds,
                    "submit_p50_ms": percentile(stats.submit_ms, 0.50), "submit_p99_ms": percentile(stats.submit_ms, 0.99),
                    "next_p50_ms": percentile(stats.next_ms, 0.50), "next_p99_ms": percentile(stats.next_ms, 0.99),
                    "cycle_p50_ms": percentile(stats.cycle_ms, 0.50), "cycle_p99_ms": percentile(stats.cycle_ms, 0.99),
                    "errors": stats.errors, **cpu_ms, **check,
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

    print(f"\nserver={args.server} mode={args.mode} ordering={args.ordering} rate={args.rate or 'max'} workers={args.workers} "
          f"threads={args.threads} runs={args.runs} seconds={args.seconds}")
    print(f"{'annotators':>10} {'submits/s':>10} {'submit p50':>11} {'submit p99':>11} {'next p50':>9} {'next p99':>9} "
          f"{'cycle p99':>10} {'over':>5}  CPU ms per submit: server / PostgreSQL / load generator")
    for row in results:
        print(f"{row['concurrency']:>10} {row['submits_per_s']:>10.1f} {row['submit_p50_ms']:>9.1f}ms {row['submit_p99_ms']:>9.1f}ms "
              f"{row['next_p50_ms']:>7.1f}ms {row['next_p99_ms']:>7.1f}ms {row['cycle_p99_ms']:>8.1f}ms "
              f"{row['items_over_overlap'] + row['annotator_twice_on_item']:>5}  "
              f"{row['cpu_ms_server']:.2f} / {row['cpu_ms_postgres']:.2f} / {row['cpu_ms_client']:.2f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
