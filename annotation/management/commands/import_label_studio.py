"""Import a Label Studio project into a corpus, in this process, with a progress bar; then show its agreement.

    python manage.py import_label_studio emo export.json --config label_config.xml --language en \\
        --create --name "Emotions" --license CC-BY-4.0
    LABEL_STUDIO_API_KEY=... python manage.py import_label_studio emo --url https://ls.example.org --project-id 3 \\
        --language en --create --name "Emotions" --license CC-BY-4.0
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from django.core.files import File
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from annotation.label_studio.services import (
    LabelStudioError,
    label_studio_import_job_create,
    label_studio_import_run,
    label_studio_project_fetch,
)
from annotation.models import LabelSchemaVersion
from corpora.models import Corpus
from corpora.services import CorpusError, corpus_create
from jobs.models import Job, JobStatus

ERRORS_SHOWN = 20


class Command(BaseCommand):
    help = ("Import a Label Studio project (its JSON export and labelling config, or straight from a running Label "
            "Studio) into a corpus, with every annotator's annotations and the predictions.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("corpus", help="slug of the corpus (with --create: of the corpus to create)")
        parser.add_argument("export", nargs="?", type=Path, help="the project's JSON export (not with --url)")
        parser.add_argument("--config", type=Path, help="the labelling config (XML) the export was made with")
        parser.add_argument("--url", help="a running Label Studio, e.g. https://label-studio.example.org")
        parser.add_argument("--project-id", type=int, help="the Label Studio project to import (with --url)")
        parser.add_argument("--token", help="Label Studio API token (better: the LABEL_STUDIO_API_KEY variable)")
        parser.add_argument("--language", help="language (BCP-47) of tasks whose data names none, e.g. en")
        parser.add_argument("--schema", help="slug of the label schema to make (default: <corpus>-label-studio)")
        parser.add_argument("--mode", choices=["all_or_nothing", "skip_invalid"], default="all_or_nothing")
        parser.add_argument("--audio-dir", type=Path, help="folder holding the audio files the tasks name by path")
        parser.add_argument("--create", action="store_true", help="create the corpus first")
        parser.add_argument("--name", help="name of the corpus to create")
        parser.add_argument("--license", help="licence of the corpus to create (SPDX id)")
        parser.add_argument("--source", default="", help="where the data came from (URL, citation)")
        parser.add_argument("--no-agreement", action="store_true", help="do not compute agreement afterwards")
        parser.add_argument("--resamples", type=int, default=None, help="bootstrap resamples for the intervals")

    def handle(self, *args: Any, **opts: Any) -> None:
        remote = bool(opts.get("url"))
        if remote == bool(opts.get("export")):
            raise CommandError("give either the export file (and --config) or --url with --project-id")
        if remote and opts.get("project_id") is None:
            raise CommandError("--url needs --project-id")
        if not remote and opts.get("config") is None:
            raise CommandError("--config: give the labelling config the export was made with (Label Studio: the "
                               "project's Settings → Labeling Interface → Code), or import with --url")
        options: dict[str, Any] = {"mode": opts["mode"]}
        for key in ("language", "schema"):
            if opts.get(key):
                options[key] = opts[key]
        if opts.get("audio_dir"):
            options["audio_dir"] = str(opts["audio_dir"])
        token = opts.get("token") or os.environ.get("LABEL_STUDIO_API_KEY", "")
        with tempfile.TemporaryDirectory(prefix="sentio-ls-") as folder:
            if remote:
                try:
                    project = label_studio_project_fetch(url=opts["url"], token=token, project_id=opts["project_id"],
                                                         folder=Path(folder))
                except LabelStudioError as exc:
                    raise CommandError(self._errors(exc)) from None
                export, config = project.export, project.label_config
                options["base_url"] = opts["url"]
                options.setdefault("schema_name", project.title or None)
                self.stdout.write(f"fetched Label Studio project {opts['project_id']} ({project.title!r})")
            else:
                export = opts["export"]
                if not export.is_file():
                    raise CommandError(f"{export}: no such file")
                if not opts["config"].is_file():
                    raise CommandError(f"{opts['config']}: no such file")
                config = opts["config"].read_text(encoding="utf-8")
            options = {k: v for k, v in options.items() if v is not None}
            corpus = self._corpus(opts)
            try:
                with export.open("rb") as fh:
                    job = label_studio_import_job_create(corpus=corpus, export_file=File(fh, name=export.name),
                                                         label_config=config, options=options, created_by=None,
                                                         enqueue=False)
            except LabelStudioError as exc:
                raise CommandError(self._errors(exc)) from None
        bar = tqdm(total=0, unit="B", unit_scale=True, desc=f"Label Studio import job {job.pk}",
                   disable=opts["verbosity"] == 0)

        def on_progress(done: int, total: int, counts: dict[str, int]) -> None:
            bar.total = total
            bar.n = done
            bar.set_postfix(tasks=counts.get("tasks", 0), annotations=counts.get("annotations", 0), refresh=False)
            bar.refresh()

        headers = {"Authorization": f"Token {token}"} if remote and token else {}
        try:
            label_studio_import_run(job_id=job.pk, on_progress=on_progress, audio_headers=headers)
        finally:
            bar.close()
        job.refresh_from_db()
        self._summary(job)
        if job.status != JobStatus.SUCCEEDED:
            raise CommandError(f"import job {job.pk} {job.status}: {job.message}")
        if not opts["no_agreement"]:
            self._agreement(job, opts.get("resamples"))

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

    @staticmethod
    def _errors(exc: LabelStudioError) -> str:
        return "\n".join(f"{key}: {reason}" for key, reason in exc.errors.items())

    def _summary(self, job: Job) -> None:
        counts = job.counts or {}
        result = job.result or {}
        style = self.style.SUCCESS if job.status == JobStatus.SUCCEEDED else self.style.ERROR
        self.stdout.write(style(f"job {job.pk}: {job.status}. {job.message}"))
        keys = ("tasks", "utterances", "utterances_matched", "annotations", "cancelled", "predictions",
                "already_imported", "duplicates", "rejected_tasks", "rejected_annotations", "dropped_regions")
        self.stdout.write("  " + ", ".join(f"{k}={counts.get(k, 0)}" for k in keys))
        schema = result.get("schema")
        if schema:
            self.stdout.write(f"  label schema {schema['slug']} v{schema['version']}; questions: "
                              + ", ".join(f"{name} -> {key}" for name, key in result.get("questions", {}).items()))
        for unmapped in result.get("unmapped", []):
            self.stdout.write(self.style.WARNING(f"  not imported: <{unmapped['tag']} name={unmapped['name']!r}>: "
                                                 f"{unmapped['reason']}"))
        if job.error_count:
            shown = min(ERRORS_SHOWN, job.error_count)
            self.stdout.write(self.style.WARNING(f"{job.error_count} problem(s); the first {shown}:"))
            for error in job.errors.all()[:ERRORS_SHOWN]:
                where = ", ".join(p for p in (f"task {error.row}" if error.row else "",
                                              error.column) if p)
                self.stdout.write(f"  {where}: {error.reason}")

    def _agreement(self, job: Job, resamples: int | None) -> None:
        """Agreement on the imported annotations, per question, with intervals (cached for the dashboard too)."""
        from annotation.quality.selectors import quality_source_for_corpus
        from annotation.quality.services import agreement_report_compute

        schema_id = ((job.result or {}).get("schema") or {}).get("id")
        version = LabelSchemaVersion.objects.filter(pk=schema_id).first() if isinstance(schema_id, int) else None
        if version is None or job.corpus is None:
            return
        report = agreement_report_compute(source=quality_source_for_corpus(job.corpus, version), n_resamples=resamples)
        totals = report.result.get("totals", {})
        self.stdout.write(f"agreement of {totals.get('human_raters', 0)} rater(s) on {totals.get('units', 0)} "
                          "utterance(s) (Krippendorff's alpha, 95% bootstrap interval):")
        for question in report.result.get("questions", []):
            if question.get("skipped"):
                self.stdout.write(f"  {question['key']}: {question['skipped']}")
                continue
            for block in question.get("perspectives", []):
                alpha = (block.get("alpha") or {})
                value, interval = alpha.get("alpha"), alpha.get("interval")
                shown = "undefined" if value is None else f"{value:.3f}"
                if interval:
                    shown += f" [{interval[0]:.3f}, {interval[1]:.3f}]"
                reason = block.get("skipped") or block.get("error") or ""
                self.stdout.write(f"  {question['key']} ({question.get('level', '')}): {shown}"
                                  + (f" ({reason})" if reason else ""))
