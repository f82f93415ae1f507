"""Import files into a corpus from the command line, in-process, with a progress bar.

    python manage.py import_corpus meld dev_sent_emo.csv --preset meld --create --name MELD --license GPL-3.0
    python manage.py import_corpus maha validation.csv --preset mahaemotions
    python manage.py import_corpus mine data.tsv --mapping '{"text": "sentence"}' --language mr --mode skip_invalid
    python manage.py import_corpus brighter-mr train/mar.csv dev/mar.csv --preset brighter_raters --intensity \
        --create --name "BRIGHTER Marathi" --license CC-BY-4.0

Each file keeps its folder in its name (``train/mar.csv``), so the split can come from the folder and same-named
files from different folders are different files. A corpus made with --create is removed again when the import
fails, so a failed attempt leaves nothing behind.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from django.core.files import File
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from corpora.importing.presets import PRESETS
from corpora.importing.services import ImportOptionsError, import_job_create, import_run
from corpora.models import Corpus
from corpora.services import CorpusError, corpus_create, corpus_delete_if_empty
from jobs.models import JobStatus

ERRORS_SHOWN = 20


class Command(BaseCommand):
    help = "Import CSV/TSV/JSONL/Parquet files (and audio) into a corpus; runs in this process."
    # The system checks load every URL module (the whole API, pandas and datasets with it): a second of start-up
    # that an import does not need; ``manage.py check`` and the server still run them.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("corpus", help="slug of the corpus (with --create: of the corpus to create)")
        parser.add_argument("files", nargs="+", type=Path)
        parser.add_argument("--preset", choices=sorted(PRESETS))
        parser.add_argument("--mapping", help="column mapping as JSON (laid over the preset's, if any)")
        parser.add_argument("--schema", help="slug of the label schema the label columns answer")
        parser.add_argument("--language", help="fixed language (BCP-47) when the file has no language column")
        parser.add_argument("--mode", choices=["all_or_nothing", "skip_invalid"], default="all_or_nothing")
        parser.add_argument("--format", choices=["csv", "tsv", "jsonl", "parquet"])
        parser.add_argument("--encoding", choices=["utf-8", "utf-16"])
        parser.add_argument("--split", help="split of the file(s) when the name does not say (train, dev, test)")
        parser.add_argument("--perspective", choices=["reader", "writer"], help="EmoBank ratings perspective")
        parser.add_argument("--intensity", action="store_true", help="BRIGHTER: columns hold 0-3 intensities")
        parser.add_argument("--audio", type=Path, help="folder or .zip holding the audio files the rows name")
        parser.add_argument("--create", action="store_true", help="create the corpus first")
        parser.add_argument("--name", help="name of the corpus to create")
        parser.add_argument("--license", help="licence of the corpus to create (SPDX id)")
        parser.add_argument("--source", default="", help="where the data came from (URL, citation)")

    def handle(self, *args: Any, **opts: Any) -> None:
        created = opts["create"]
        corpus = self._corpus(opts)
        try:
            self._import(corpus, opts)
        except BaseException:
            if created:
                corpus_delete_if_empty(corpus=corpus)
            raise

    def _import(self, corpus: Corpus, opts: dict[str, Any]) -> None:
        options: dict[str, Any] = {"mode": opts["mode"]}
        for key in ("preset", "schema", "language", "format", "encoding", "split", "perspective"):
            if opts.get(key):
                options[key] = opts[key]
        if opts["intensity"]:
            options["intensity"] = True
        if opts.get("mapping"):
            try:
                options["mapping"] = json.loads(opts["mapping"])
            except ValueError as exc:
                raise CommandError(f"--mapping is not valid JSON: {exc}") from None
        for path in opts["files"]:
            if not path.is_file():
                raise CommandError(f"{path}: no such file")
        audio: Path | None = opts.get("audio")
        if audio is not None and not audio.exists():
            raise CommandError(f"{audio}: no such folder or zip")
        with ExitStack() as stack:
            # The folder stays in the name: it may say the split, and tells same-named files apart.
            files = [File(stack.enter_context(path.open("rb")),
                          name=f"{path.parent.name}/{path.name}" if len(path.parts) > 1 else path.name)
                     for path in opts["files"]]
            archive = None
            if audio is not None and audio.is_file():
                archive = File(stack.enter_context(audio.open("rb")), name=audio.name)
            try:
                job = import_job_create(
                    corpus=corpus, files=files, options=options, created_by=None, audio_archive=archive,
                    audio_folder=audio if audio is not None and audio.is_dir() else None, enqueue=False,
                )
            except ImportOptionsError as exc:
                raise CommandError("\n".join(f"{key}: {reason}" for key, reason in exc.errors.items())) from None
        bar = tqdm(total=0, unit="row", desc=f"import job {job.pk}", disable=opts["verbosity"] == 0)

        def on_progress(done: int, total: int, counts: dict[str, int]) -> None:
            if bar.total != total:
                bar.total = total
            bar.n = done
            bar.set_postfix(rows=counts.get("rows", 0), rejected=counts.get("rejected_rows", 0), refresh=False)
            bar.refresh()

        try:
            import_run(job_id=job.pk, on_progress=on_progress)
        finally:
            bar.close()
        job.refresh_from_db()
        self._summary(job)
        if job.status != JobStatus.SUCCEEDED:
            raise CommandError(f"import job {job.pk} {job.status}: {job.message}")

    def _corpus(self, opts: dict[str, Any]) -> Corpus:
        slug = opts["corpus"]
        existing = Corpus.objects.filter(slug=slug).first()
        if not opts["create"]:
            if existing is None:
                raise CommandError(f"no corpus with slug {slug!r}; pass --create --name ... --license ... to make it")
            return existing
        if existing is not None:
            raise CommandError(f"a corpus with slug {slug!r} already exists; leave out --create to import into it")
        try:
            return corpus_create(name=opts.get("name") or slug, slug=slug, license=opts.get("license") or "",
                                 source=opts.get("source") or "", created_by=None)
        except CorpusError as exc:
            raise CommandError("\n".join(f"--{k}: {v}" for k, v in exc.errors.items())) from None

    def _summary(self, job: Any) -> None:
        counts = job.counts or {}
        style = self.style.SUCCESS if job.status == JobStatus.SUCCEEDED else self.style.ERROR
        self.stdout.write(style(f"job {job.pk}: {job.status}. {job.message}"))
        keys = ("rows", "created", "annotations", "labels_attached", "conversations", "speakers", "duplicates",
                "rejected_rows", "rejected_files", "unlabelled_rows", "blank_cells", "cross_split_texts")
        self.stdout.write("  " + ", ".join(f"{k}={counts.get(k, 0)}" for k in keys))
        if job.error_count:
            self.stdout.write(self.style.WARNING(f"{job.error_count} error(s); the first {min(ERRORS_SHOWN, job.error_count)}:"))
            for error in job.errors.all()[:ERRORS_SHOWN]:
                where = ", ".join(p for p in (error.file, f"row {error.row}" if error.row else "",
                                              f"column {error.column!r}" if error.column else "") if p)
                self.stdout.write(f"  {where}: {error.reason}")
        for example in (job.result or {}).get("cross_split_texts") or []:
            splits = "; ".join(f"{split}: {', '.join(ids[:3])}" for split, ids in example["splits"].items())
            self.stdout.write(self.style.WARNING(f"  the same text in more than one split ({splits}): "
                                                 f"{example['text'][:60]!r}"))
        notes = (job.result or {}).get("notes") or []
        if notes:
            self.stdout.write(f"{counts.get('duplicates', 0)} duplicate(s) skipped; the first {min(5, len(notes))}:")
            for note in notes[:5]:
                self.stdout.write(f"  {note['file']}, row {note['row']}: {note['reason']}")
