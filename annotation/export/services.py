"""Gold-split export as a background job: gold labels, group-disjoint stratified splits, files and data card.

The job reads the database twice, both times as a stream in id order: annotations (to make gold labels and
the split), then utterances (to write rows). Only compact per-item arrays live in memory; rows go straight to
Parquet row groups on local disk and from there to the other formats and to the configured storage under
``exports/<job id>/``. All storage names are built here from fixed parts, never from user strings.
"""

from __future__ import annotations

import json
import tempfile
from array import array
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction

from annotation.export.card import CardFacts, CorpusFacts, nominal_alpha_with_interval, render_card
from annotation.export.formats import (
    ParquetSplitWriter,
    export_schema,
    gold_fields,
    parquet_batches,
    write_csv,
    write_hf_dataset_dict,
    write_jsonl,
)
from annotation.export.gold import ORIGIN_PRECEDENCE, GoldBuilder, GoldTable, gold_decode, gold_intensities
from annotation.export.label_studio import annotation_result, label_config, label_studio_validate
from annotation.export.options import SPLIT_NAMES, ExportOptions, ExportOptionsError, export_options_parse
from annotation.export.selectors import (
    export_annotation_rows,
    export_annotations,
    export_label_studio_rows,
    export_utterance_rows,
)
from annotation.export.splits import (
    MISSING,
    assign_splits,
    group_components,
    numeric_strata,
    powerset_strata,
    ratios_min_count,
)
from annotation.models import LabelSchemaVersion, Project
from annotation.schema import Question, parse_questions
from corpora.models import Corpus
from jobs.models import Job, JobKind
from jobs.services import job_create, job_fail, job_progress, job_start, job_succeed

PROGRESS_EVERY = 50_000
LABEL_STUDIO_VALIDATED_TASKS = 200
NO_LABEL = "(none)"


class ExportError(Exception):
    """The export cannot be made from what is in the database; the message says why, for a person."""


# --- creating the job -----------------------------------------------------------------------------------------


def export_job_create(
    *, created_by: AbstractBaseUser | AnonymousUser | None, options: Any = None, project: Project | None = None,
    corpus: Corpus | None = None, schema_version: LabelSchemaVersion | None = None,
) -> Job:
    """Check the options, create an EXPORT job and enqueue it once the transaction commits.

    The source is a project's annotations, or a corpus's imported annotations (no project) of a schema version.
    Raises ExportOptionsError (nothing written) on a bad source or bad options.
    """
    if project is not None and (corpus is not None or schema_version is not None):
        raise ExportOptionsError({"source": "give a project, or a corpus and a schema version, not both"})
    if project is None and (corpus is None or schema_version is None):
        raise ExportOptionsError({"source": "give a project, or a corpus and a schema version"})
    version = project.schema_version if project is not None else schema_version
    assert version is not None
    questions = parse_questions(version.questions)
    parsed = export_options_parse(options, question_keys={q.key: q.type for q in questions})
    if parsed.perspective is not None and parsed.perspective not in (version.perspectives or []):
        raise ExportOptionsError({"perspective": f"{parsed.perspective!r} is not a perspective of this schema "
                                                 f"({version.perspectives or 'none'})"})
    source = ({"project": project.pk} if project is not None
              else {"corpus": corpus.pk, "schema_version": version.pk})  # type: ignore[union-attr]
    user = created_by if created_by is not None and created_by.is_authenticated else None
    job = job_create(
        kind=JobKind.EXPORT, created_by=user, params={"source": source, "options": parsed.as_params()},
        project=project, corpus=project.corpus if project is not None else corpus,
    )

    def enqueue() -> None:
        from workers.tasks import run_export_job

        run_export_job.delay(job.pk)

    transaction.on_commit(enqueue)
    return job


# --- running it -----------------------------------------------------------------------------------------------


def export_run(*, job_id: int) -> None:
    """What the Celery task calls. A redelivered message for a finished job does nothing; a retry starts over
    and overwrites the files of the earlier attempt."""
    job = job_start(job_id=job_id)
    if job is None:
        return
    try:
        result, counts = _export(job)
    except (ExportError, ExportOptionsError) as exc:
        job_fail(job=job, message=f"The export failed: {exc}")
        return
    except Exception:
        job_fail(job=job, message="The export failed because of an internal error; the worker log has the details.")
        raise
    job_succeed(job=job, result=result, counts=counts)


@dataclass
class _Source:
    corpus: Corpus
    version: LabelSchemaVersion
    project: Project | None
    description: str


def _source(job: Job) -> _Source:
    spec = job.params.get("source", {})
    if "project" in spec:
        project = Project.objects.select_related("corpus", "schema_version__schema").filter(pk=spec["project"]).first()
        if project is None:
            raise ExportError("the project no longer exists")
        return _Source(project.corpus, project.schema_version, project, f"project {project.name!r}")
    corpus = Corpus.objects.filter(pk=spec.get("corpus")).first()
    version = LabelSchemaVersion.objects.select_related("schema").filter(pk=spec.get("schema_version")).first()
    if corpus is None or version is None:
        raise ExportError("the corpus or the schema version no longer exists")
    return _Source(corpus, version, None, f"the labels imported with corpus {corpus.name!r}")


@dataclass
class _Collected:
    """What the annotation pass leaves behind: one row per annotated utterance, in utterance order."""

    utterance_ids: np.ndarray
    language: np.ndarray
    conversation: np.ndarray
    speaker: np.ndarray
    gold: GoldTable
    annotations_by_origin: Counter[str]
    model_versions: set[str]
    human_raters: int
    ratings: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]


def _collect(job: Job, annotations: Any, questions: list[Question], origins: tuple[str, ...],
             total: int) -> _Collected:
    builder = GoldBuilder(questions, origins)
    single_choice = [q for q in builder.questions if q.type == "single_choice"]
    meta = {name: array("q") for name in ("id", "language", "conversation", "speaker")}
    rating_columns = {q.key: (array("q"), array("q"), array("q")) for q in single_choice}
    raters: dict[Any, int] = {}
    by_origin: Counter[str] = Counter()
    model_versions: set[str] = set()
    buffers: dict[str, list[Any]] = {o: [] for o in origins}
    current: int | None = None
    done = 0
    for uid, language, conversation, speaker, origin, value, annotator_id, external_rater, model_version in (
            export_annotation_rows(annotations)):
        if uid != current:
            if current is not None:
                for o, values in buffers.items():
                    if values:
                        builder.add_item(current, o, values)
                        values.clear()
            current = uid
            meta["id"].append(uid)
            meta["language"].append(language)
            meta["conversation"].append(MISSING if conversation is None else conversation)
            meta["speaker"].append(MISSING if speaker is None else speaker)
        by_origin[origin] += 1
        if origin in buffers:
            buffers[origin].append(value)
        if origin == "human":
            rater = raters.setdefault(annotator_id if annotator_id is not None else f"x:{external_rater}", len(raters))
            for q in single_choice:
                answer = value.get(q.key)
                if isinstance(answer, str) and answer in q.labels:
                    units, rater_col, values_col = rating_columns[q.key]
                    units.append(uid)
                    rater_col.append(rater)
                    values_col.append(q.labels.index(answer))
        elif model_version:
            model_versions.add(model_version)
        done += 1
        if done % PROGRESS_EVERY == 0:
            job_progress(job=job, done=done, total=total)
    if current is not None:
        for o, values in buffers.items():
            if values:
                builder.add_item(current, o, values)

    def as_numpy(values: array) -> np.ndarray:
        return np.frombuffer(values, dtype=np.int64) if len(values) else np.zeros(0, dtype=np.int64)

    return _Collected(
        utterance_ids=as_numpy(meta["id"]), language=as_numpy(meta["language"]),
        conversation=as_numpy(meta["conversation"]), speaker=as_numpy(meta["speaker"]),
        gold=builder.table(), annotations_by_origin=by_origin, model_versions=model_versions,
        human_raters=len(raters),
        ratings={k: (as_numpy(u), as_numpy(r), as_numpy(v)) for k, (u, r, v) in rating_columns.items()},
    )


def _origin_rows(collected: _Collected) -> dict[str, np.ndarray]:
    """Per origin and annotated utterance: its row in that origin's gold table, or MISSING."""
    rows: dict[str, np.ndarray] = {}
    uids = collected.utterance_ids
    for origin, table in collected.gold.by_origin.items():
        table_ids = np.frombuffer(table.utterance_ids, dtype=np.int64) if len(table.utterance_ids) else np.zeros(0, np.int64)
        position = np.searchsorted(table_ids, uids)
        clipped = np.minimum(position, max(table_ids.size - 1, 0))
        found = (position < table_ids.size) & (table_ids[clipped] == uids) if table_ids.size else np.zeros(uids.size, bool)
        rows[origin] = np.where(found, position, MISSING)
    return rows


def _stratify_question(questions: list[Question], key: str | None) -> Question | None:
    if key is not None:
        return next(q for q in questions if q.key == key)
    for wanted in (("single_choice", "multi_label"), ("numeric",)):
        for q in questions:
            if q.type in wanted:
                return q
    return None


def _strata(collected: _Collected, question: Question | None, primary_origin: np.ndarray, primary_row: np.ndarray,
            origins: tuple[str, ...], options: ExportOptions) -> np.ndarray:
    n = primary_row.size
    label_key: np.ndarray = np.zeros(n, dtype=np.int64)
    if question is not None:
        column_index = collected.gold.questions.index(question)
        columns = [collected.gold.by_origin[o].columns[column_index] for o in origins]
        values = [columns[o][r] for o, r in zip(primary_origin.tolist(), primary_row.tolist())]
        if question.type == "single_choice":
            label_key = np.fromiter((len(question.labels) if v is None else v for v in values), np.int64, count=n)
        elif question.type == "multi_label":
            sets = [() if v is None else (tuple(i for i, _ in v) if question.intensity else v) for v in values]
            label_key = powerset_strata(sets, ratios_min_count(options.ratios))  # type: ignore[arg-type]
        else:
            label_key = numeric_strata(np.array([np.nan if v is None else v for v in values], dtype=np.float64))
    if options.stratify_language:
        combined = collected.language * (int(label_key.max(initial=0)) + 1) + label_key
        _, label_key = np.unique(combined, return_inverse=True)
    return label_key.astype(np.int64)


def _export(job: Job) -> tuple[dict[str, Any], dict[str, int]]:
    source = _source(job)
    questions = parse_questions(source.version.questions)
    options = export_options_parse(job.params.get("options"), question_keys={q.key: q.type for q in questions})
    annotations = export_annotations(
        schema_version_id=source.version.pk, project_id=source.project.pk if source.project else None,
        corpus_id=source.corpus.pk,
    )
    if options.perspective is not None:
        annotations = annotations.filter(perspective=options.perspective)
    origins = tuple(o for o in ORIGIN_PRECEDENCE if any(o in allowed for allowed in options.provenance.values()))
    total_annotations = annotations.count()
    if total_annotations == 0:
        raise ExportError(f"{source.description} has no annotations for schema {source.version}")
    job_progress(job=job, done=0, total=total_annotations)

    collected = _collect(job, annotations, questions, origins, total_annotations)
    gold_qs = collected.gold.questions
    if not gold_qs:
        raise ExportError("the schema has no single-choice, multi-label or numeric question to take gold labels from")

    # Which splits each utterance's labels may go to, and the gold (origin, row) used to stratify it.
    origin_rows = _origin_rows(collected)
    n_annotated = collected.utterance_ids.size
    eligible = np.zeros((n_annotated, len(SPLIT_NAMES)), dtype=bool)
    for s, name in enumerate(SPLIT_NAMES):
        for origin in options.provenance[name]:
            eligible[:, s] |= origin_rows[origin] >= 0
    keep = eligible.any(axis=1)
    items_without_gold = int(n_annotated - keep.sum())
    if not keep.any():
        raise ExportError("no annotated utterance has a gold answer that the provenance rule allows in any split")
    uids = collected.utterance_ids[keep]
    eligible_kept = eligible[keep]
    rows_by_origin = np.stack([origin_rows[o][keep] for o in origins])  # origins × items
    primary_origin = np.argmax(rows_by_origin >= 0, axis=0)
    primary_row = rows_by_origin[primary_origin, np.arange(uids.size)]
    collected.language = collected.language[keep]
    stratify_q = _stratify_question(gold_qs, options.stratify_on)
    stratum = _strata(collected, stratify_q, primary_origin, primary_row, origins, options)
    group = group_components(collected.conversation[keep], collected.speaker[keep], options.grouping)
    split = assign_splits(item_ids=uids, group=group, stratum=stratum, eligible=eligible_kept, ratios=options.ratios,
                          seed=options.seed)

    # The gold each exported utterance carries: the first origin in precedence its split allows.
    exported = np.flatnonzero(split.split != MISSING)
    ex_split = split.split[exported]
    allowed_matrix = np.array([[o in options.provenance[name] for o in origins] for name in SPLIT_NAMES])
    usable = (rows_by_origin[:, exported] >= 0) & allowed_matrix[ex_split].T
    ex_origin = np.argmax(usable, axis=0)
    ex_row = rows_by_origin[ex_origin, exported]
    ex_uids = uids[exported]
    left_out = split.group_split[group][split.split == MISSING]
    left_out_by_split = {name: int((left_out == s).sum()) for s, name in enumerate(SPLIT_NAMES)}
    groups_per_split = {
        name: int(np.unique(group[exported][ex_split == s]).size) for s, name in enumerate(SPLIT_NAMES)
    }

    n_exported = int(exported.size)
    derived = sum(f in options.formats for f in ("csv", "jsonl", "label_studio"))
    total = total_annotations + n_exported * (1 + derived)
    job_progress(job=job, done=total_annotations, total=total)

    with tempfile.TemporaryDirectory(prefix=f"sentio-export-{job.pk}-") as tmp:
        work = Path(tmp)
        writer = _RowWriter(job, work, source, gold_qs, stratify_q, origins, collected, total_annotations, total)
        writer.write(ex_uids, ex_split, ex_origin, ex_row)
        done = total_annotations + n_exported
        files: list[dict[str, Any]] = []
        parquet_paths = writer.paths
        columns = export_schema(gold_qs).names
        if "parquet" in options.formats:
            for name, path in parquet_paths.items():
                files.append(_store(job, path, f"parquet/{name}.parquet", "parquet", name, writer.rows[name]))
        for fmt, extension, convert in (("csv", "csv", lambda p, out: write_csv(p, out, columns)),
                                        ("jsonl", "jsonl", write_jsonl)):
            if fmt not in options.formats:
                continue
            for name, path in parquet_paths.items():
                out = work / f"{name}.{extension}"
                rows = convert(path, out)
                files.append(_store(job, out, f"{fmt}/{name}.{extension}", fmt, name, rows))
                out.unlink()
            done += n_exported
            job_progress(job=job, done=done, total=total)
        if "hf" in options.formats:
            hf_dir = work / "hf"
            write_hf_dataset_dict(parquet_paths, hf_dir, work / "hf_cache")
            for path in sorted(p for p in hf_dir.rglob("*") if p.is_file()):
                relative = path.relative_to(hf_dir).as_posix()
                files.append(_store(job, path, f"hf/{relative}", "hf", relative.split("/")[0]
                                    if "/" in relative else "", None))
        if "label_studio" in options.formats:
            files += _label_studio(job, work, questions, annotations, ex_uids, ex_split, parquet_paths)
            done += n_exported
            job_progress(job=job, done=done, total=total)

        agreement = [
            nominal_alpha_with_interval(*collected.ratings[q.key], n_resamples=options.bootstrap_resamples,
                                        seed=options.seed, question=q.key)
            for q in gold_qs if q.type == "single_choice"
        ]
        facts = CardFacts(
            job_id=job.pk, title=f"{source.corpus.name}: gold splits", source_description=source.description,
            corpus=CorpusFacts(source.corpus.name, source.corpus.slug, source.corpus.license, source.corpus.source),
            schema=str(source.version), options=options,
            stratified_on=stratify_q.key if stratify_q else "nothing (no categorical or numeric question)",
            items_per_split=dict(writer.rows), groups_per_split=groups_per_split,
            label_counts=writer.label_counts, numeric_values=writer.numeric_values,
            origin_counts=writer.origin_counts, annotations_by_origin=collected.annotations_by_origin,
            n_human_annotators=collected.human_raters, model_versions=sorted(collected.model_versions),
            left_out_by_provenance=left_out_by_split, items_without_gold=items_without_gold,
            agreement=agreement, files=files,
        )
        card_path = work / "README.md"
        card_path.write_text(render_card(facts), encoding="utf-8")
        card = _store(job, card_path, "README.md", "card", "", None)

    counts = {
        "annotations_read": total_annotations,
        "utterances_annotated": int(n_annotated),
        "utterances_exported": n_exported,
        "left_out_by_provenance": int(sum(left_out_by_split.values())),
        "without_gold": items_without_gold,
        **{f"{name}_utterances": int(writer.rows[name]) for name in SPLIT_NAMES},
    }
    result = {
        "card": card,
        "files": files,
        "splits": {name: {"utterances": writer.rows[name], "groups": groups_per_split[name]} for name in SPLIT_NAMES},
        "agreement": [{"question": a.question, "alpha": a.alpha, "interval": list(a.interval) if a.interval else None,
                       "n_resamples": a.n_resamples, "n_pairable_units": a.n_pairable_units} for a in agreement],
        "options": options.as_params(),
    }
    return result, counts


class _RowWriter:
    """Second pass: stream utterances in id order, join the gold of exported ones, write Parquet per split."""

    def __init__(self, job: Job, work: Path, source: _Source, questions: list[Question], stratify_q: Question | None,
                 origins: tuple[str, ...], collected: _Collected, done: int, total: int) -> None:
        self.job, self.source, self.questions, self.origins = job, source, questions, origins
        self.collected, self.done, self.total = collected, done, total
        self.categorical = [q for q in questions if q.type in ("single_choice", "multi_label")]
        self.numeric = [q for q in questions if q.type == "numeric"]
        self.schema = export_schema(questions)
        self.paths = {name: work / f"{name}.parquet" for name in SPLIT_NAMES}
        self.rows: dict[str, int] = dict.fromkeys(SPLIT_NAMES, 0)
        self.label_counts: Counter[tuple[str, str, str, str]] = Counter()
        self.numeric_values: dict[tuple[str, str], list[float]] = {}
        self.origin_counts: Counter[tuple[str, str]] = Counter()

    def write(self, uids: np.ndarray, split: np.ndarray, origin: np.ndarray, row: np.ndarray) -> None:
        writers = {name: ParquetSplitWriter(path, self.schema) for name, path in self.paths.items()}
        tables = [self.collected.gold.by_origin[o] for o in self.origins]
        try:
            if uids.size:
                stream = export_utterance_rows(corpus_id=self.source.corpus.pk, first_id=int(uids[0]),
                                               last_id=int(uids[-1]))
                self._write_rows(stream, writers, tables, uids.tolist(), split.tolist(), origin.tolist(), row.tolist())
        finally:
            for w in writers.values():
                w.close()

    def _write_rows(self, stream: Iterator[tuple[Any, ...]], writers: dict[str, ParquetSplitWriter], tables: list[Any],
                    uids: list[int], split: list[int], origin: list[int], row: list[int]) -> None:
        corpus_slug = self.source.corpus.slug
        j, n = 0, len(uids)
        for uid, external_id, language, conversation, speaker, turn_index, text, audio, duration in stream:
            if j >= n:
                break
            if uid != uids[j]:
                continue
            name, origin_name, table, r = SPLIT_NAMES[split[j]], self.origins[origin[j]], tables[origin[j]], row[j]
            record: dict[str, Any] = {
                "utterance_id": uid, "external_id": external_id, "corpus": corpus_slug, "language": language,
                "conversation": conversation, "speaker": speaker, "turn_index": turn_index, "text": text,
                "audio": audio or "", "audio_duration_s": duration, "split": name, "label_origin": origin_name,
                "n_annotations": table.n_annotations[r],
            }
            for q, column in zip(self.questions, table.columns):
                value = column[r]
                decoded = gold_decode(q, value)
                record[q.key] = decoded
                if q.type == "multi_label" and q.intensity:
                    record[f"{q.key}_intensity"] = gold_intensities(q, value)
                if q.type == "single_choice":
                    self.label_counts[(q.key, name, language, NO_LABEL if decoded is None else decoded)] += 1
                elif q.type == "multi_label":
                    for label in decoded or [NO_LABEL]:
                        self.label_counts[(q.key, name, language, label)] += 1
                elif decoded is not None:
                    acc = self.numeric_values.setdefault((q.key, name), [0.0, 0.0, 0.0])
                    acc[0] += decoded
                    acc[1] += decoded * decoded
                    acc[2] += 1
            writers[name].append(record)
            self.rows[name] += 1
            self.origin_counts[(name, origin_name)] += 1
            j += 1
            if j % PROGRESS_EVERY == 0:
                job_progress(job=self.job, done=self.done + j, total=self.total)
        if j < n:
            raise ExportError(f"{n - j} annotated utterances disappeared while the export ran; run it again")


def _label_studio(job: Job, work: Path, questions: list[Question], annotations: Any, uids: np.ndarray,
                  split: np.ndarray, parquet_paths: dict[str, Path]) -> list[dict[str, Any]]:
    """Tasks per split: data from the exported rows, human annotations as annotations, model/LLM ones as
    predictions; the labelling config beside them. A sample of each split is checked with label-studio-sdk."""
    config = label_config(questions)
    gold_keys = [name for name, _ in gold_fields(questions)]
    readers = {name: _rows(path) for name, path in parquet_paths.items()}
    outputs = {name: (work / f"{name}.json").open("w", encoding="utf-8") for name in SPLIT_NAMES}
    counts = dict.fromkeys(SPLIT_NAMES, 0)
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in SPLIT_NAMES}
    try:
        for fh in outputs.values():
            fh.write("[")
        current: int | None = None
        task: dict[str, Any] | None = None
        task_split = ""
        for uid, annotation_id, origin, value, model_version, created_at, lead_time_ms in export_label_studio_rows(annotations):
            if uid != current:
                if task is not None:
                    _emit(outputs[task_split], task, counts, task_split, samples)
                current, task = uid, None
                index = int(np.searchsorted(uids, uid))
                if index < uids.size and uids[index] == uid:
                    task_split = SPLIT_NAMES[int(split[index])]
                    row = _advance(readers[task_split], uid)
                    task = {
                        "data": {
                            "text": row["text"] or "", "audio": row["audio"] or "", "utterance_id": uid,
                            "external_id": row["external_id"], "language": row["language"],
                            "conversation": row["conversation"], "speaker": row["speaker"], "split": task_split,
                            "gold": {k: row[k] for k in gold_keys}, "label_origin": row["label_origin"],
                        },
                        "annotations": [],
                        "predictions": [],
                    }
            if task is None:
                continue
            result = annotation_result(questions, value, prefix=str(annotation_id))
            if origin == "human":
                entry: dict[str, Any] = {"result": result, "created_at": created_at.isoformat(), "ground_truth": False}
                if lead_time_ms is not None:
                    entry["lead_time"] = lead_time_ms / 1000.0
                task["annotations"].append(entry)
            else:
                task["predictions"].append({"model_version": model_version, "result": result})
        if task is not None:
            _emit(outputs[task_split], task, counts, task_split, samples)
        for fh in outputs.values():
            fh.write("\n]\n")
    finally:
        for fh in outputs.values():
            fh.close()
    problems = label_studio_validate(config, [t for name in SPLIT_NAMES for t in samples[name]])
    if problems:
        raise ExportError("label-studio-sdk rejected the tasks: " + "; ".join(problems[:5]))
    config_path = work / "label_config.xml"
    config_path.write_text(config, encoding="utf-8")
    files = [_store(job, config_path, "label_studio/label_config.xml", "label_studio", "", None)]
    for name in SPLIT_NAMES:
        files.append(_store(job, work / f"{name}.json", f"label_studio/{name}.json", "label_studio", name, counts[name]))
    return files


def _rows(path: Path) -> Iterator[dict[str, Any]]:
    for batch in parquet_batches(path):
        yield from batch


def _advance(reader: Iterator[dict[str, Any]], uid: int) -> dict[str, Any]:
    for row in reader:
        if row["utterance_id"] == uid:
            return row
    raise ExportError(f"utterance {uid} is missing from the exported rows")


def _emit(fh: Any, task: dict[str, Any], counts: dict[str, int], split: str,
          samples: dict[str, list[dict[str, Any]]]) -> None:
    fh.write(("\n" if counts[split] == 0 else ",\n") + json.dumps(task, ensure_ascii=False))
    counts[split] += 1
    if len(samples[split]) < LABEL_STUDIO_VALIDATED_TASKS:
        samples[split].append(task)


def _store(job: Job, local: Path, relative: str, fmt: str, split: str, rows: int | None) -> dict[str, Any]:
    """Copy a local file into the default storage as exports/<job id>/<relative> (replacing an earlier attempt's)."""
    name = f"exports/{job.pk}/{relative}"
    if default_storage.exists(name):
        default_storage.delete(name)
    with local.open("rb") as fh:
        stored = default_storage.save(name, File(fh, name=local.name))
    entry: dict[str, Any] = {"name": relative, "storage_name": stored, "size": local.stat().st_size, "format": fmt}
    if split:
        entry["split"] = split
    if rows is not None:
        entry["rows"] = rows
    return entry

