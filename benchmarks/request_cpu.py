"""CPU and SQL statements per annotator request, measured without load: the WSGI application called in a loop.

Usage (PostgreSQL must be running; the database, whose name must contain "bench", is dropped and created anew
unless ``--keep-database`` is given):

    . .venv/bin/activate && export PYTHONPATH=.:platform
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/sentio_cpu_bench \\
        python benchmarks/request_cpu.py --requests 3000 --runs 5 [--profile out.prof]

``annotate_bench.py`` measures throughput and latency under load, which on a shared machine are noisy. This script
measures what bounds them: the CPU one ``POST submit`` with ``next: true`` costs the web process (this process's
CPU time around ``config.wsgi.application``, called with the environ granian builds: its process environment plus
the request) and the PostgreSQL backend serving it (from /proc), and the SQL statements it sends. CPU time is
counted per process, so other work on the machine changes it far less than wall-clock figures. The requests take
the whole path: every middleware, DRF's authentication, parsing and rendering; only the HTTP server is left out.
``--profile`` writes a cProfile of one more run (open it with ``python -m pstats`` or snakeviz).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "platform"), str(REPO / "benchmarks")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# As annotate_bench.py starts the server: kept connections, warnings only.
os.environ.setdefault("DB_CONN_MAX_AGE", "600")
os.environ.setdefault("LOG_LEVEL", "WARNING")

from annotate_bench import LABELS, _process_seconds, database_ensure, fixtures_make, project_make  # noqa: E402


class StatementCounter:
    """Counts the statements this process sends to PostgreSQL, whichever cursor sends them (Django's, or the raw
    psycopg cursor of the prepared hot queries, or a health check's ``SELECT 1``)."""

    def __init__(self) -> None:
        import psycopg

        self.count = 0
        self.texts: dict[str, int] = {}
        self._cursor = psycopg.Cursor
        self._original = psycopg.Cursor.execute

    def __enter__(self) -> StatementCounter:
        original, counter = self._original, self

        def counting(cursor: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            counter.count += 1
            text = query if isinstance(query, str) else str(query)
            counter.texts[text[:90]] = counter.texts.get(text[:90], 0) + 1
            return original(cursor, query, *args, **kwargs)

        self._cursor.execute = counting  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        self._cursor.execute = self._original  # type: ignore[method-assign]


class GarbageCollections:
    """Time spent in Python's cyclic garbage collector (all of it on the request's thread, a pause for the request)."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self._started = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses.append(1000 * (time.perf_counter() - self._started))

    def __enter__(self) -> GarbageCollections:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._callback)


class Annotators:
    """Annotators taking turns on one WSGI application, each submitting its held item and getting the next."""

    def __init__(self, application: Any, project_id: int, tokens: list[str]) -> None:
        self.application = application
        # What granian hands the application: its process environment, then the request's own keys.
        self.base = dict(os.environ) | {
            "GATEWAY_INTERFACE": "CGI/1.1", "SCRIPT_NAME": "", "SERVER_SOFTWARE": "Granian", "wsgi.errors": sys.stderr,
            "wsgi.input_terminated": True, "wsgi.multiprocess": False, "wsgi.multithread": True,
            "wsgi.run_once": False, "wsgi.version": (1, 0), "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8765",
            "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": "50000",
            "wsgi.url_scheme": "http", "QUERY_STRING": "", "HTTP_HOST": "127.0.0.1:8765",
            "CONTENT_TYPE": "application/json", "REQUEST_METHOD": "POST",
        }
        self.next_path, self.submit_path = f"/api/projects/{project_id}/next/", f"/api/projects/{project_id}/submit/"
        self.tokens = tokens
        self.held: dict[str, int | None] = dict.fromkeys(tokens)
        self.turn = 0

    def post(self, token: str, path: str, body: dict[str, object] | None) -> tuple[int, Any]:
        payload = json.dumps(body).encode() if body is not None else b""
        environ = self.base | {
            "PATH_INFO": path, "RAW_URI": path, "CONTENT_LENGTH": str(len(payload)), "wsgi.input": io.BytesIO(payload),
            "HTTP_AUTHORIZATION": f"Token {token}",
        }
        status: list[str] = []
        chunks = self.application(environ, lambda line, headers, exc_info=None: status.append(line))
        raw = b"".join(chunks)
        if hasattr(chunks, "close"):
            chunks.close()
        code = int(status[0].split(" ", 1)[0])
        return code, json.loads(raw) if raw and code < 300 else None

    def prime(self) -> None:
        """Every annotator holds an item (unmeasured ``POST next``)."""
        for token in self.tokens:
            code, answer = self.post(token, self.next_path, None)
            if code != 200:
                raise SystemExit(f"next answered {code}")
            self.held[token] = answer["utterance"]["id"]

    def submit_one(self) -> None:
        token = self.tokens[self.turn % len(self.tokens)]
        self.turn += 1
        body = {"client_id": str(uuid.uuid4()), "utterance": self.held[token], "value": {"emotion": LABELS[self.turn % 4]},
                "lead_time_ms": 1000 + self.turn % 500, "next": True}
        code, answer = self.post(token, self.submit_path, body)
        if code not in (200, 201) or not answer.get("next"):
            raise SystemExit(f"submit answered {code}: {answer}")
        self.held[token] = answer["next"]["utterance"]["id"]


def backend_pid() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


def measured_run(annotators: Annotators, requests: int) -> dict[str, float]:
    from django.db import connection

    annotators.prime()
    pid = backend_pid()
    if connection.connection is None:
        raise SystemExit("the connection was not kept between requests (DB_CONN_MAX_AGE)")
    with StatementCounter() as counter, GarbageCollections() as collections:
        server_before, postgres_before, wall_before = time.process_time(), _process_seconds(pid), time.perf_counter()
        for _ in range(requests):
            annotators.submit_one()
        server_after, postgres_after, wall_after = time.process_time(), _process_seconds(pid), time.perf_counter()
    if backend_pid() != pid:
        raise SystemExit("the PostgreSQL backend changed during the run: its CPU was not all counted")
    return {
        "server_cpu_ms": 1000 * (server_after - server_before) / requests,
        "postgres_cpu_ms": 1000 * (postgres_after - postgres_before) / requests,
        "wall_ms": 1000 * (wall_after - wall_before) / requests,
        "statements": counter.count / requests,
        "gc_ms": sum(collections.pauses) / requests,
        "gc_max_pause_ms": max(collections.pauses, default=0.0),
        "statement_texts": {text: n / requests for text, n in counter.texts.items()},  # type: ignore[dict-item]
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000, help="measured submits per run")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--annotators", type=int, default=100)
    parser.add_argument("--items", type=int, default=20000)
    parser.add_argument("--profile", type=Path, help="write a cProfile of one more run here")
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        raise SystemExit("set DATABASE_URL to a PostgreSQL database, e.g. postgres://postgres@127.0.0.1:5432/sentio_cpu_bench")
    database_ensure(url, fresh=not args.keep_database)
    # Each run's project needs requests + one held item per annotator, three times over (overlap 3).
    fixtures = fixtures_make(max(args.items, (args.requests + args.annotators) // 3 + 100), args.annotators)

    from django.db import close_old_connections

    from config.wsgi import application

    close_old_connections()
    tokens = fixtures["tokens"][:args.annotators]  # type: ignore[index]
    warm = Annotators(application, project_make(fixtures, args.annotators, "sequential"), tokens)
    warm.prime()
    for _ in range(min(500, args.requests)):
        warm.submit_one()

    runs = []
    for run in range(args.runs):
        annotators = Annotators(application, project_make(fixtures, args.annotators, "sequential"), tokens)
        row = measured_run(annotators, args.requests)
        runs.append(row)
        print(json.dumps({"run": run + 1, **{k: round(v, 3) for k, v in row.items() if k != "statement_texts"}}),
              flush=True)
    summary = {key: round(statistics.median(r[key] for r in runs), 3)
               for key in ("server_cpu_ms", "postgres_cpu_ms", "wall_ms", "statements", "gc_ms", "gc_max_pause_ms")}
    print(f"\nPOST submit (next: true), {args.requests} requests x {args.runs} runs, medians per request:")
    print(f"  web process CPU {summary['server_cpu_ms']:.3f} ms, PostgreSQL backend CPU {summary['postgres_cpu_ms']:.3f} ms, "
          f"wall {summary['wall_ms']:.3f} ms, SQL statements {summary['statements']:.2f}, garbage collection "
          f"{summary['gc_ms']:.3f} ms (longest pause {summary['gc_max_pause_ms']:.1f} ms)")
    for text, per_request in sorted(runs[0]["statement_texts"].items(), key=lambda kv: -kv[1]):  # type: ignore[union-attr]
        print(f"    {per_request:5.2f}  {text}")
    if args.profile:
        annotators = Annotators(application, project_make(fixtures, args.annotators, "sequential"), tokens)
        annotators.prime()
        profiler = cProfile.Profile(time.process_time)  # CPU time: waits on PostgreSQL are not the web process's cost
        profiler.enable()
        for _ in range(args.requests):
            annotators.submit_one()
        profiler.disable()
        profiler.dump_stats(args.profile)
        print(f"profile of {args.requests} requests written to {args.profile}")
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "median": summary}, indent=2))


if __name__ == "__main__":
    main()
