"""Gold-split export as a background job: gold labels, group-disjoint stratified splits, files and data card.

The job reads the database twice, both times as a stream in id order: annotations (to make gold labels and
the split), then utterances (to write rows). Only compact per-item arrays live in memory; rows go straight to
Parquet row groups on local disk and from there to the other formats and to the configured storage under
``exports/<job id>/``. All storage names are built here from fixed parts, never from user strings.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.files import File
from django.core.files.storage import default_storage

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
from annotation.export.gold import (
    LABEL_SOURCES,
    NO_ANSWER,
    ORIGIN_PRECEDENCE,
    GoldTable,
    gold_decode,
    gold_intensities,
    gold_questions,
    gold_table_build,
)
from annotation.export.gold import Ratings as GoldRatings
from annotation.export.label_studio import annotation_result, label_config, label_studio_validate
from annotation.export.options import SPLIT_NAMES, ExportOptions, ExportOptionsError, export_options_parse
from annotation.export.selectors import (
    ANSWER_PREFIX,
    export_adjudications,
    export_annotation_batches,
    export_annotations,
    export_label_studio_rows,
    export_language_codes,
    export_utterance_batches,
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
from annotation.quality.aggregate import SOURCE_ADJUDICATED, AggregationPolicy
from annotation.schema import Question, is_empty_answer, parse_questions
from corpora.models import Corpus
from jobs.dispatch import Task, task_send_on_commit
from jobs.models import Job, JobKind
from jobs.services import job_create, job_fail, job_progress, job_start, job_succeed

PROGRESS_EVERY = 50_000
LABEL_STUDIO_VALIDATED_TASKS = 200
NO_LABEL = "(none)"
UNKNOWN_ANSWER = -2  # an answer that is not among the question's labels (the schema changed under it?)


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

    task_send_on_commit(Task.EXPORT, job.pk)
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
    text: np.ndarray  # same-text group code (MISSING: audio or no text key read)
    n_human: np.ndarray  # human annotations of the utterance
    gold: GoldTable
    annotations_by_origin: Counter[str]
    model_versions: set[str]
    human_raters: int
    llm_uids: np.ndarray  # per LLM annotation: its utterance
    llm_versions: np.ndarray  # and its model version (which LLMs and templates made it)
    ratings: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]
    open_ties: int = 0


class _AnswerCodes:
    """Turns the answer columns that SQL extracted into integer/float codes, and back into answer objects.

    Distinct answer texts are few (labels, label sets), so each is looked at once, per question."""

    def __init__(self, questions: list[Question]) -> None:
        self.questions = questions
        self._codes: list[dict[str | None, int]] = [{} for _ in questions]
        self.multi_label_answers: list[list[Any]] = [[] for _ in questions]

    def encode(self, index: int, column: pa.Array) -> np.ndarray:
        q = self.questions[index]
        if q.type == "numeric":
            return column.to_numpy(zero_copy_only=False).astype(np.float64)
        encoded = pc.dictionary_encode(column)
        lookup = np.array([self._code(index, text) for text in encoded.dictionary.to_pylist()] or [NO_ANSWER],
                          dtype=np.int64)
        positions = encoded.indices.fill_null(0).to_numpy(zero_copy_only=False)
        codes = lookup[positions] if encoded.dictionary else np.full(len(column), NO_ANSWER, dtype=np.int64)
        codes[column.is_null().to_numpy(zero_copy_only=False)] = NO_ANSWER
        return codes

    def decode(self, index: int, codes: np.ndarray) -> np.ndarray:
        """Answer objects (None where unanswered): labels, the distinct multi-label answers, or the numbers."""
        q = self.questions[index]
        if q.type == "numeric":
            return codes
        answers = list(q.labels) if q.type == "single_choice" else self.multi_label_answers[index]
        table = np.empty(len(answers) + 1, dtype=object)
        table[:-1] = answers
        table[-1] = None  # NO_ANSWER (-1) picks it
        return table[codes]

    def _code(self, index: int, text: str | None) -> int:
        codes = self._codes[index]
        if text in codes:
            return codes[text]
        q = self.questions[index]
        if q.type == "single_choice":
            if text in (None, ""):
                code = NO_ANSWER
            elif text in q.labels:
                code = q.labels.index(text)
            else:
                code = UNKNOWN_ANSWER
        else:
            value = None if text is None else json.loads(text)
            if is_empty_answer(value, q):  # an empty multi-label answer is "none of these" where allowed
                code = NO_ANSWER
            elif isinstance(value, (list, dict)) and all(isinstance(label, str) and label in q.labels
                                                         for label in value):
                code = len(self.multi_label_answers[index])
                self.multi_label_answers[index].append(value)
            else:
                code = UNKNOWN_ANSWER
        codes[text] = code
        return code


def _collect(job: Job, annotations: Any, questions: list[Question], origins: tuple[str, ...], total: int,
             policy: AggregationPolicy, adjudications: dict[int, dict[str, Any]], same_text: bool) -> _Collected:
    """The annotation pass: per annotation only integer/float codes are kept, then gold is made on the arrays by
    the aggregation rule (``gold_table_build``), adjudications first."""
    gold_qs = gold_questions(questions)
    answer_codes = _AnswerCodes(gold_qs)
    origin_names = pa.array(origins, type=pa.string())
    parts: dict[str, list[np.ndarray]] = {
        name: [] for name in ("annotation_uid", "origin", "id", "language", "conversation", "speaker", "human_row")}
    answer_parts: list[list[np.ndarray]] = [[] for _ in gold_qs]
    rater_keys: list[pa.Array] = []
    text_keys: list[pa.Array] = []
    by_origin: Counter[str] = Counter()
    model_versions: set[str] = set()
    llm_uids: list[np.ndarray] = []
    llm_versions: list[np.ndarray] = []
    last_uid: int | None = None
    done = 0
    for batch in export_annotation_batches(annotations, gold_qs, same_text=same_text):
        uid = batch.column("utterance_id").to_numpy()
        origin = batch.column("origin")
        parts["annotation_uid"].append(uid)
        # Per utterance (its first annotation): language, conversation, speaker, text key.
        first = np.r_[uid[:1] != last_uid, uid[1:] != uid[:-1]]
        last_uid = int(uid[-1])
        parts["id"].append(uid[first])
        parts["language"].append(batch.column("language_id").to_numpy()[first])
        for name in ("conversation", "speaker"):
            parts[name].append(batch.column(f"{name}_id").fill_null(MISSING).to_numpy()[first])
        if same_text:
            text_keys.append(batch.column("text_key").filter(pa.array(first)))
        parts["origin"].append(pc.index_in(origin, value_set=origin_names).fill_null(NO_ANSWER)
                               .to_numpy(zero_copy_only=False).astype(np.int8))
        for i in range(len(gold_qs)):
            answer_parts[i].append(answer_codes.encode(i, batch.column(f"{ANSWER_PREFIX}{i}")))
        counts = pc.value_counts(origin)
        by_origin.update(dict(zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist())))
        is_human = pc.equal(origin, "human")
        machine_versions = pc.filter(batch.column("model_version"), pc.invert(is_human))
        model_versions.update(v for v in pc.unique(machine_versions).to_pylist() if v)
        is_llm = pc.equal(origin, "llm").to_numpy(zero_copy_only=False)
        if is_llm.any():
            llm_uids.append(uid[is_llm])
            llm_versions.append(np.asarray(batch.column("model_version").filter(pa.array(is_llm)).to_pylist(), object))
        # Raters: accounts, imported rater names and model versions apart, and each perspective apart.
        person = pc.if_else(pc.is_null(batch.column("annotator_id")),
                            pc.binary_join_element_wise("x:", batch.column("external_rater"), ""),
                            pc.cast(batch.column("annotator_id"), pa.string()))
        rater = pc.if_else(is_human, person, pc.binary_join_element_wise("m:", batch.column("model_version"), ""))
        rater_keys.append(pc.binary_join_element_wise(rater, batch.column("perspective"), "|"))
        parts["human_row"].append(np.flatnonzero(is_human.to_numpy(zero_copy_only=False)) + done)
        before, done = done, done + batch.num_rows
        if done // PROGRESS_EVERY > before // PROGRESS_EVERY:
            job_progress(job=job, done=done, total=total)

    def joined(name: str, dtype: Any = np.int64) -> np.ndarray:
        return np.concatenate(parts[name]).astype(dtype, copy=False) if parts[name] else np.zeros(0, dtype=dtype)

    annotation_uid, origin_code = joined("annotation_uid"), joined("origin", np.int8)
    answers = [np.concatenate(chunks) if chunks else np.zeros(0) for chunks in answer_parts]
    for q, answer in zip(gold_qs, answers):
        if q.type == "numeric":
            continue
        unknown = np.flatnonzero((answer == UNKNOWN_ANSWER) & (origin_code >= 0))
        if unknown.size:
            raise ExportError(f"an annotation of utterance {int(annotation_uid[unknown[0]])} answers question "
                              f"{q.key!r} with something that is not among its labels {list(q.labels)}")
    raters = (pc.dictionary_encode(pa.concat_arrays(rater_keys)).indices.to_numpy(zero_copy_only=False)
              .astype(np.int64) if rater_keys else np.zeros(0, np.int64))
    decoded = [answer_codes.decode(i, answer) for i, answer in enumerate(answers)]
    gold = gold_table_build(gold_qs, origins, GoldRatings(annotation_uid, origin_code, raters, decoded), policy,
                            adjudications)
    utterance_ids = joined("id")
    human_row = joined("human_row")
    n_human = np.zeros(utterance_ids.size, dtype=np.int64)
    if human_row.size:
        present, counted = np.unique(annotation_uid[human_row], return_counts=True)
        n_human[np.searchsorted(utterance_ids, present)] = counted
    text = np.full(utterance_ids.size, MISSING, dtype=np.int64)
    if text_keys:
        keys = pa.concat_arrays(text_keys)
        codes = pc.dictionary_encode(keys).indices.fill_null(MISSING).to_numpy(zero_copy_only=False)
        text = codes.astype(np.int64)

    # Human single-choice ratings for the agreement figures; raters numbered by first appearance.
    human_raters = raters[human_row]
    n_raters = int(np.unique(human_raters).size)
    ratings: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for q, answer in zip(gold_qs, answers):
        if q.type != "single_choice":
            continue
        human_answer = answer[human_row]
        valid = human_answer >= 0
        ratings[q.key] = (annotation_uid[human_row][valid], human_raters[valid], human_answer[valid])
    return _Collected(
        utterance_ids=utterance_ids, language=joined("language"), conversation=joined("conversation"),
        speaker=joined("speaker"), text=text, n_human=n_human, gold=gold, annotations_by_origin=by_origin,
        model_versions=model_versions, human_raters=n_raters, ratings=ratings, open_ties=gold.open_ties,
        llm_uids=np.concatenate(llm_uids) if llm_uids else np.zeros(0, np.int64),
        llm_versions=np.concatenate(llm_versions) if llm_versions else np.zeros(0, object),
    )


def _origin_rows(collected: _Collected) -> dict[str, np.ndarray]:
    """Per origin and annotated utterance: its row in that origin's gold table, or MISSING."""
    rows: dict[str, np.ndarray] = {}
    uids = collected.utterance_ids
    for origin, table in collected.gold.by_origin.items():
        table_ids = table.utterance_ids
        position = np.searchsorted(table_ids, uids)
        clipped = np.minimum(position, max(table_ids.size - 1, 0))
        found = (position < table_ids.size) & (table_ids[clipped] == uids) if table_ids.size else np.zeros(uids.size, bool)
        rows[origin] = np.where(found, position, MISSING)
    return rows


def _gold_gather(gold: GoldTable, origins: tuple[str, ...], origin: np.ndarray, row: np.ndarray,
                 question_index: int | None) -> np.ndarray:
    """Per item, the encoded gold of question ``question_index`` (None: n_annotations) from (origin, row)."""
    tables = [gold.by_origin[o] for o in origins]
    if question_index is None:
        out = np.zeros(row.size, dtype=np.int64)
    else:
        out = np.empty(row.size, dtype=tables[0].columns[question_index].dtype if tables else np.int64)
    for code, table in enumerate(tables):
        chosen = origin == code
        source = table.n_annotations if question_index is None else table.columns[question_index]
        out[chosen] = source[row[chosen]]
    return out


def _source_gather(gold: GoldTable, origins: tuple[str, ...], origin: np.ndarray, row: np.ndarray) -> np.ndarray:
    """Per item, the index into LABEL_SOURCES of what its gold rests on."""
    out = np.zeros(row.size, dtype=np.int64)
    for code, name in enumerate(origins):
        chosen = origin == code
        sources = gold.by_origin[name].sources
        if sources is not None:
            out[chosen] = sources[row[chosen]]
    return out


def _aggregation_policy(source: _Source) -> AggregationPolicy:
    """The project's quality policy as an aggregation rule (the defaults for imported labels); seed 0, as the
    agreement report's stored aggregation uses by default."""
    if source.project is None:
        return AggregationPolicy()
    from annotation.quality.selectors import quality_policy_get

    policy = quality_policy_get(source.project)
    return AggregationPolicy(
        method=policy.aggregation_method, tie_policy=policy.tie_policy, multi_label_rule=policy.multi_label_rule,
        share_above=policy.multi_label_share, intensity_threshold=policy.intensity_threshold,
        intensity_inclusive=policy.intensity_threshold_inclusive,
    )


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
        values = _gold_gather(collected.gold, origins, primary_origin, primary_row, column_index)
        if question.type == "single_choice":
            label_key = np.where(values == NO_ANSWER, len(question.labels), values)
        elif question.type == "multi_label":
            choices: list[Any] = collected.gold.choices[column_index]
            label_sets = [tuple(i for i, _ in c) if question.intensity else c for c in choices] + [()]
            # NO_ANSWER (-1) picks the trailing empty set.
            sets = [label_sets[v] for v in values.tolist()]
            label_key = powerset_strata(sets, ratios_min_count(options.ratios))
        else:
            label_key = numeric_strata(values)
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

    policy = _aggregation_policy(source)
    adjudications = (export_adjudications(project_id=source.project.pk, perspective=options.perspective)
                     if source.project is not None else {})
    collected = _collect(job, annotations, questions, origins, total_annotations, policy, adjudications,
                         options.group_same_text)
    gold_qs = collected.gold.questions
    if not gold_qs:
        raise ExportError("the schema has no single-choice, multi-label or numeric question to take gold labels from")

    # Which splits each utterance's labels may go to, and the gold (origin, row) used to stratify it. Human gold
    # needs min_annotations human annotations (held-out splits: heldout_min_annotations), unless adjudicated.
    origin_rows = _origin_rows(collected)
    n_annotated = collected.utterance_ids.size
    overlap = source.project.overlap if source.project is not None else 1
    minimum = max(options.min_annotations, overlap if options.complete_only else 1)
    heldout_minimum = max(minimum, options.heldout_min_annotations if options.heldout_min_annotations is not None
                          else overlap)
    human_rows = origin_rows.get("human")
    adjudicated = np.zeros(n_annotated, dtype=bool)
    if human_rows is not None:
        sources = collected.gold.by_origin["human"].sources
        has_human = human_rows >= 0
        if sources is not None:
            adjudicated[has_human] = sources[human_rows[has_human]] == LABEL_SOURCES.index(SOURCE_ADJUDICATED)
    eligible = np.zeros((n_annotated, len(SPLIT_NAMES)), dtype=bool)
    below_minimum = 0
    for s, name in enumerate(SPLIT_NAMES):
        for origin in options.provenance[name]:
            usable = origin_rows[origin] >= 0
            if origin == "human":
                needed = minimum if name == "train" else heldout_minimum
                enough = (collected.n_human >= needed) | adjudicated
                if name == "train":
                    below_minimum = int((usable & ~enough).sum())
                usable &= enough
            eligible[:, s] |= usable
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
    collected.n_human = collected.n_human[keep]
    stratify_q = _stratify_question(gold_qs, options.stratify_on)
    stratum = _strata(collected, stratify_q, primary_origin, primary_row, origins, options)
    group = group_components(collected.conversation[keep], collected.speaker[keep], options.grouping,
                             same_text=collected.text[keep] if options.group_same_text else None)
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
        writer.write(ex_uids, ex_split, ex_origin, ex_row, collected.language[exported], collected.n_human[exported])
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
            write_hf_dataset_dict(parquet_paths, hf_dir, work / "hf_cache", read_audio=_storage_bytes)
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
            synthetic_counts=writer.synthetic_counts,
            n_human_annotators=collected.human_raters, model_versions=sorted(collected.model_versions),
            left_out_by_provenance=left_out_by_split, items_without_gold=items_without_gold,
            agreement=agreement, files=files, source_counts=writer.source_counts,
            aggregation={q.key: policy.describe(q) for q in gold_qs}, open_ties=collected.open_ties,
            min_annotations=minimum, heldout_min_annotations=heldout_minimum, below_minimum=below_minimum,
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
        "open_ties": collected.open_ties,
        "below_min_annotations": below_minimum,
        **{f"label_source_{name}": int(sum(c for (_, k), c in writer.source_counts.items() if k == name))
           for name in LABEL_SOURCES},
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
    """Second pass: stream utterances in id order, join the gold of exported ones, write Parquet per split.

    Everything that comes from the annotation pass (split, origin, gold) is turned into Arrow columns for all
    exported items at once; each batch of utterance rows then only takes its slice of them."""

    def __init__(self, job: Job, work: Path, source: _Source, questions: list[Question], stratify_q: Question | None,
                 origins: tuple[str, ...], collected: _Collected, done: int, total: int) -> None:
        self.job, self.source, self.questions, self.origins = job, source, questions, origins
        self.collected, self.done, self.total = collected, done, total
        self.schema = export_schema(questions)
        self.paths = {name: work / f"{name}.parquet" for name in SPLIT_NAMES}
        self.rows: dict[str, int] = dict.fromkeys(SPLIT_NAMES, 0)
        self.label_counts: Counter[tuple[str, str, str, str]] = Counter()
        self.numeric_values: dict[tuple[str, str], list[float]] = {}
        self.origin_counts: Counter[tuple[str, str]] = Counter()
        self.source_counts: Counter[tuple[str, str]] = Counter()
        self.synthetic_counts: Counter[tuple[str, str]] = Counter()  # (split, LLM model version) -> items

    def write(self, uids: np.ndarray, split: np.ndarray, origin: np.ndarray, row: np.ndarray,
              language: np.ndarray, n_human: np.ndarray) -> None:
        writers = {name: ParquetSplitWriter(path, self.schema) for name, path in self.paths.items()}
        try:
            if uids.size:
                columns = self._gold_columns(split, origin, row, n_human)
                stream = export_utterance_batches(corpus_id=self.source.corpus.pk, first_id=int(uids[0]),
                                                  last_id=int(uids[-1]))
                self._write_rows(stream, writers, uids, split, columns)
        finally:
            for w in writers.values():
                w.close()
        self._count(split, origin, row, language)
        self._count_synthetic(uids, split, origin)

    def _count_synthetic(self, uids: np.ndarray, split: np.ndarray, origin: np.ndarray) -> None:
        """Per split, the items whose gold came from LLM labels, by the model version (LLMs and template) that made
        them; an item labelled by several LLM versions counts for each."""
        if "llm" not in self.origins or not self.collected.llm_uids.size:
            return
        synthetic = origin == self.origins.index("llm")
        split_of = dict(zip(uids[synthetic].tolist(), split[synthetic].tolist()))
        for uid, version in zip(self.collected.llm_uids.tolist(), self.collected.llm_versions.tolist()):
            s = split_of.get(uid)
            if s is not None:
                self.synthetic_counts[(SPLIT_NAMES[s], version)] += 1

    def _gold_columns(self, split: np.ndarray, origin: np.ndarray, row: np.ndarray,
                      n_human: np.ndarray) -> dict[str, pa.Array]:
        """split, label_origin, label_source, n_annotations, n_human_annotations and the gold columns of every
        exported item, as Arrow arrays."""
        gold = self.collected.gold
        sources = _source_gather(gold, self.origins, origin, row)
        columns: dict[str, pa.Array] = {
            "split": pc.take(pa.array(SPLIT_NAMES, pa.string()), split),
            "label_origin": pc.take(pa.array(self.origins, pa.string()), origin),
            "label_source": pc.take(pa.array(LABEL_SOURCES, pa.string()), sources),
            "n_annotations": pa.array(_gold_gather(gold, self.origins, origin, row, None), pa.int64()),
            "n_human_annotations": pa.array(n_human, pa.int64()),
        }
        for index, q in enumerate(self.questions):
            values = _gold_gather(gold, self.origins, origin, row, index)
            if q.type == "numeric":
                columns[q.key] = pa.array(values, pa.float64(), mask=np.isnan(values))
                continue
            positions = pa.array(values, pa.int64(), mask=values == NO_ANSWER)
            if q.type == "single_choice":
                columns[q.key] = pc.take(pa.array(q.labels, pa.string()), positions)
                continue
            choices = gold.choices[index]
            columns[q.key] = pc.take(pa.array([gold_decode(q, c) for c in choices], pa.list_(pa.string())), positions)
            if q.intensity:
                columns[f"{q.key}_intensity"] = pc.take(
                    pa.array([gold_intensities(q, c) for c in choices], pa.list_(pa.int64())), positions)
        return columns

    def _write_rows(self, stream: Iterator[pa.RecordBatch], writers: dict[str, ParquetSplitWriter], uids: np.ndarray,
                    split: np.ndarray, columns: dict[str, pa.Array]) -> None:
        corpus = pa.scalar(self.source.corpus.slug, pa.string())
        matched = 0
        for batch in stream:
            ids = batch.column("utterance_id").to_numpy()
            position = np.searchsorted(uids, ids)
            hit = uids[np.minimum(position, uids.size - 1)] == ids
            if not hit.any():
                continue
            wanted = np.flatnonzero(hit)
            taken = pa.array(position[wanted])
            rows = batch.take(pa.array(wanted))
            arrays: list[pa.Array] = []
            for name in self.schema.names:
                if name == "corpus":
                    arrays.append(pa.repeat(corpus, wanted.size))
                elif name == "audio":
                    arrays.append(rows.column("audio").fill_null(""))
                elif name in columns:
                    arrays.append(pc.take(columns[name], taken))
                else:
                    arrays.append(rows.column(name))
            table = pa.Table.from_arrays(arrays, schema=self.schema)
            batch_split = split[position[wanted]]
            for code, name in enumerate(SPLIT_NAMES):
                mask = batch_split == code
                if mask.any():
                    writers[name].append_table(table.filter(pa.array(mask)))
                    self.rows[name] += int(mask.sum())
            before, matched = matched, matched + wanted.size
            if matched // PROGRESS_EVERY > before // PROGRESS_EVERY:
                job_progress(job=self.job, done=self.done + matched, total=self.total)
        if matched < uids.size:
            raise ExportError(f"{uids.size - matched} annotated utterances disappeared while the export ran; run it again")

    def _count(self, split: np.ndarray, origin: np.ndarray, row: np.ndarray, language_ids: np.ndarray) -> None:
        """The data card's counts per split: labels per language, numeric sums, gold origins."""
        gold = self.collected.gold
        distinct_languages, language = np.unique(language_ids, return_inverse=True)
        codes = export_language_codes(distinct_languages.tolist())
        language_names = [codes[int(i)] for i in distinct_languages]
        n_languages = max(len(language_names), 1)

        def tally(keys: np.ndarray, width: int) -> list[tuple[str, str, int, int]]:
            """(split, language, value code, count) for keys = (split * n_languages + language) * width + code."""
            found, counts = np.unique(keys, return_counts=True)
            out = []
            for key, count in zip(found.tolist(), counts.tolist()):
                pair, code = divmod(key, width)
                s, lang = divmod(pair, n_languages)
                out.append((SPLIT_NAMES[s], language_names[lang], code, count))
            return out

        place = split.astype(np.int64) * n_languages + language
        for index, q in enumerate(self.questions):
            values = _gold_gather(gold, self.origins, origin, row, index)
            if q.type == "single_choice":
                names = list(q.labels) + [NO_LABEL]
                for s, lang, code, count in tally(place * len(names) + np.where(values < 0, len(q.labels), values),
                                                  len(names)):
                    self.label_counts[(q.key, s, lang, names[code])] += count
            elif q.type == "multi_label":
                choices = [gold_decode(q, c) or [NO_LABEL] for c in gold.choices[index]] + [[NO_LABEL]]
                width = len(choices)
                for s, lang, code, count in tally(place * width + np.where(values < 0, width - 1, values), width):
                    for label in choices[code]:
                        self.label_counts[(q.key, s, lang, label)] += count
            else:
                given = ~np.isnan(values)
                for code, name in enumerate(SPLIT_NAMES):
                    chosen = values[given & (split == code)]
                    if chosen.size:
                        # Added one by one in row order, as a running sum would.
                        self.numeric_values[(q.key, name)] = [
                            float(np.cumsum(chosen)[-1]), float(np.cumsum(chosen * chosen)[-1]), float(chosen.size)]
        pairs, counts = np.unique(split.astype(np.int64) * len(self.origins) + origin, return_counts=True)
        for pair, count in zip(pairs.tolist(), counts.tolist()):
            s, o = divmod(pair, len(self.origins))
            self.origin_counts[(SPLIT_NAMES[s], self.origins[o])] += count
        sources = _source_gather(gold, self.origins, origin, row)
        pairs, counts = np.unique(split.astype(np.int64) * len(LABEL_SOURCES) + sources, return_counts=True)
        for pair, count in zip(pairs.tolist(), counts.tolist()):
            s, k = divmod(pair, len(LABEL_SOURCES))
            self.source_counts[(SPLIT_NAMES[s], LABEL_SOURCES[k])] += count


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
        for (uid, annotation_id, origin, value, model_version, created_at, lead_time_ms, annotator_id, external_rater,
             was_cancelled) in export_label_studio_rows(annotations):
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
                            "text": row["text"] or "", "audio": _media_link(row["audio"]), "utterance_id": uid,
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
                # created_username names the rater (Label Studio ignores it on import; Sentio reads it back).
                entry: dict[str, Any] = {
                    "id": annotation_id, "result": result, "created_at": created_at.isoformat(), "ground_truth": False,
                    "was_cancelled": was_cancelled,
                    "created_username": external_rater or f"user:{annotator_id}",
                }
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


def _media_link(name: str | None) -> str:
    """A link Label Studio can load the audio from: the storage's URL (signed on S3), made absolute with
    SENTIO_PUBLIC_URL when the storage gives a path (local files, served to signed-in users at /media/)."""
    if not name:
        return ""
    url = default_storage.url(name)
    if url.startswith("/") and settings.PUBLIC_URL:
        return settings.PUBLIC_URL + url
    return url


def _storage_bytes(name: str) -> bytes:
    with default_storage.open(name, "rb") as fh:
        data: bytes = fh.read()
    return data


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

