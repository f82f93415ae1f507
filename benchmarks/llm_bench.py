"""Benchmark: LLM labelling on the MahaEmotions test split — CoTR vs direct macro-F1, and the platform's throughput
against calling the same server directly at the same concurrency.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/sentio_bench_llm PYTHONPATH=.:platform \\
        python benchmarks/llm_bench.py --items 60 --concurrency 2
    ... --base-url http://gpu-box:8000/v1 --model qwen2.5-7b --structured-output json_schema   # any endpoint

Without ``--base-url`` it starts llama.cpp's server (llama-cpp-python) on the packaged Gemma 3 270M GGUF, as the
tests do. ``--items`` takes the first N rows of MahaEmotions' test.csv (from ../shared/datasets, never copied
into the repository), stratified by nothing: the first N, so runs compare.

1. Both templates label the items through the platform (``llm_run_execute``: the selection read from
   PostgreSQL, the endpoint's thread pool, answers stored in batches with progress); the gold is the dataset's own
   label stored as one human annotation per item; ``llm_evaluation`` gives macro-F1, kappa and the verdict.
2. Throughput: the platform run of the direct template (its stored answers deleted first, so every item is asked)
   against a plain thread pool of ``--concurrency`` calling ``LLMClient.complete`` with the same prompts, alternating
   which goes first, ``--repeats`` times; items/s medians and their ratio (target: platform >= 0.9 x direct).
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "platform")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
MAHA = next((p / "shared" / "datasets" / "mahaemotions" / "test.csv" for p in (REPO.parent, REPO.parent.parent)
             if (p / "shared" / "datasets" / "mahaemotions").is_dir()),
            REPO.parent / "shared" / "datasets" / "mahaemotions" / "test.csv")


def database_ensure(url: str) -> None:
    import psycopg
    from psycopg import sql

    name = url.rsplit("/", 1)[-1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def start_packaged_server(threads: int, parallel: int) -> tuple[subprocess.Popen[bytes], str, str]:
    from tests.fixtures.llm_server import API_KEY, MODEL_ALIAS, free_loopback_port, packaged_gguf

    port = free_loopback_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(packaged_gguf()), "--model_alias", MODEL_ALIAS,
               "--chat_format", "gemma", "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048",
               "--n_threads", str(threads), "--n_threads_batch", str(threads), "--api_key", API_KEY,
               "--verbose", "False"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 180
    while True:
        try:
            request = urllib.request.Request(f"{url}/models", headers={"Authorization": f"Bearer {API_KEY}"})  # noqa: S310 (our loopback http URL)
            with urllib.request.urlopen(request, timeout=2):  # noqa: S310 (our loopback http URL)
                return process, url, API_KEY
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise SystemExit("the packaged llama.cpp server did not start") from None
            time.sleep(0.3)


def maha_rows(limit: int) -> list[tuple[str, str]]:
    with MAHA.open(encoding="utf-8") as handle:
        rows = [(r["Tweet"].strip(), r["Label"].strip()) for r in csv.DictReader(handle) if r["Tweet"].strip()]
    return rows[:limit]


def build_project(rows: list[tuple[str, str]], labels: list[str]) -> Any:
    import uuid

    from django.contrib.auth import get_user_model

    from annotation.models import Annotation, Membership, Origin, Role
    from annotation.services import label_schema_create, project_create
    from corpora.models import Language, Utterance
    from corpora.services import corpus_create

    tag = uuid.uuid4().hex[:8]
    user = get_user_model().objects.create_user(username=f"llm_bench_{tag}", password=uuid.uuid4().hex)
    schema = label_schema_create(name=f"MahaEmotions {tag}", slug=f"maha-{tag}",
                                 questions=[{"key": "emotion", "type": "single_choice", "labels": labels,
                                             "required": True}])
    corpus = corpus_create(name=f"MahaEmotions test {tag}", license="see upstream", created_by=user)
    marathi, _ = Language.objects.get_or_create(code="mr", defaults={"name": "Marathi", "script": "Deva"})
    project = project_create(name=f"LLM bench {tag}", corpus=corpus, schema_version=schema, created_by=user)
    Membership.objects.update_or_create(project=project, user=user, defaults={"role": Role.LEAD})
    for index, (text, label) in enumerate(rows):
        utterance = Utterance.objects.create(corpus=corpus, language=marathi, text=text, external_id=str(index),
                                             metadata={"split": "test"}, content_hash=f"{index:032x}")
        Annotation.objects.create(utterance=utterance, project=project, schema_version=schema,
                                  value={"emotion": label}, origin=Origin.HUMAN, external_rater="mahaemotions")
    return project, user


def platform_run(project: Any, user: Any, endpoint: Any, template: Any) -> tuple[float, Any]:
    from annotation.llm.services import llm_run_create, llm_run_execute

    run = llm_run_create(project=project, user=user, endpoint=endpoint, template=template, selection={},
                         enqueue=False)
    started = time.perf_counter()
    llm_run_execute(job_id=run.job_id)
    elapsed = time.perf_counter() - started
    run.job.refresh_from_db()
    if run.job.status != "succeeded":
        raise SystemExit(f"the platform run failed: {run.job.message}")
    return elapsed, run


def direct_calls(project: Any, endpoint: Any, template: Any, concurrency: int) -> float:
    """The same prompts through one LLMClient and a plain thread pool, nothing stored."""
    from annotation.llm.services import endpoint_config, project_answer_schema, prompt_item, template_prompt
    from corpora.models import Utterance
    from models_zoo.llm import LLMClient, render_prompt

    schema = project_answer_schema(project)
    prompt = template_prompt(template)
    rendered = [render_prompt(prompt, prompt_item(u), schema)
                for u in Utterance.objects.filter(corpus=project.corpus).select_related("language").order_by("id")]
    client = LLMClient(endpoint_config(endpoint))  # no SSRF guard, no database: the server alone

    def call(item: Any) -> Any:
        return client.complete(item.messages, item.schema, max_tokens=endpoint.max_tokens, seed=0)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(call, rendered))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=60)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=192)
    parser.add_argument("--base-url", default="")
    parser.add_argument("--model", default="gemma3-270m")
    parser.add_argument("--api-key", default=os.environ.get("LLM_BENCH_API_KEY", ""))
    parser.add_argument("--structured-output", default="json_object", choices=["json_schema", "json_object"])
    parser.add_argument("--server-threads", type=int, default=1)
    parser.add_argument("--throughput-only", action="store_true", help="skip the CoTR run (no CoTR vs direct)")
    args = parser.parse_args()

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        raise SystemExit("set DATABASE_URL=postgres://... (a database of its own: the bench writes a project)")
    database_ensure(url)
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    server = None
    base_url, api_key = args.base_url, args.api_key
    if not base_url:
        server, base_url, api_key = start_packaged_server(args.server_threads, args.concurrency)
    host = base_url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)[0].strip("[]")
    settings.OUTBOUND_ALLOWED_HOSTS = [*settings.OUTBOUND_ALLOWED_HOSTS, host]  # the operator's allow, for this run
    try:
        from annotation.llm.selectors import llm_evaluation
        from annotation.llm.services import llm_endpoint_register, llm_template_save
        from annotation.models import LLMLabel

        rows = maha_rows(args.items)
        labels = sorted({label for _, label in maha_rows(10_000)})
        project, user = build_project(rows, labels)
        endpoint = llm_endpoint_register(project=project, user=user, name="bench", base_url=base_url,
                                         model=args.model, api_key=api_key, structured_output=args.structured_output,
                                         max_concurrency=args.concurrency, timeout_s=600, max_tokens=args.max_tokens)
        cotr = llm_template_save(project=project, user=user, name="cotr", kind="cotr")
        direct = llm_template_save(project=project, user=user, name="direct", kind="direct")
        print(f"{len(rows)} MahaEmotions test items ({MAHA}), {len(labels)} labels, model {args.model} at "
              f"{base_url}, concurrency {args.concurrency}, max_tokens {args.max_tokens}")

        platform_s: list[float] = []
        direct_s: list[float] = []
        if not args.throughput_only:
            cotr_s, _ = platform_run(project, user, endpoint, cotr)
            print(f"CoTR run: {cotr_s:.1f} s")
        for repeat in range(args.repeats):
            LLMLabel.objects.filter(endpoint=endpoint, template=direct).delete()
            order = ["platform", "direct"] if repeat % 2 == 0 else ["direct", "platform"]
            for side in order:
                if side == "platform":
                    elapsed, _ = platform_run(project, user, endpoint, direct)
                    platform_s.append(elapsed)
                else:
                    direct_s.append(direct_calls(project, endpoint, direct, args.concurrency))
            print(f"repeat {repeat + 1}: platform {platform_s[-1]:.1f} s, direct {direct_s[-1]:.1f} s")

        evaluation = llm_evaluation(project)
        print("\nQuality against the dataset's labels (question 'emotion'):")
        print(f"{'template':<10} {'items':>5} {'macro-F1':>9} {'baseline':>9} {'kappa':>7}  verdict")
        for source in evaluation["sources"]:
            figures = source["questions"]["emotion"]
            print(f"{source['template_kind']:<10} {figures['n_items']:>5} {figures['macro_f1']:>9.3f} "
                  f"{figures['majority_baseline_macro_f1']:>9.3f} {figures['kappa_with_human_majority']:>7.3f}  "
                  f"{figures['verdict']}")
        n = len(rows)
        platform_rate, direct_rate = n / statistics.median(platform_s), n / statistics.median(direct_s)
        print(f"\nThroughput at concurrency {args.concurrency} (median of {args.repeats}): platform "
              f"{platform_rate:.3f} items/s, direct {direct_rate:.3f} items/s, ratio {platform_rate / direct_rate:.3f} "
              "(target >= 0.9)")
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
