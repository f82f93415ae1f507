"""Writes for agreement, aggregation and adjudication: compute and cache the report, store gold, adjudicate items.

The report is computed by ``agreement_report_compute`` from one streamed pass over the source's annotations; the
same pass stores the aggregated human answers (``AggregatedLabel``). Large sources are computed by the AGREEMENT job
(``workers.tasks.compute_agreement`` calls ``agreement_job_run``); the API computes small ones directly.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from annotation.models import (
    Adjudication,
    AggregatedLabel,
    AggregationMethod,
    AgreementReport,
    Annotation,
    Flag,
    MultiLabelRule,
    Origin,
    Project,
    ProjectQualityPolicy,
    TiePolicy,
)
from annotation.quality.aggregate import AggregateRow
from annotation.quality.report import AggregatesByQuestion, ReportParams, agreement_report_build
from annotation.quality.selectors import (
    REVIEW_ROLES,
    QualityForbidden,
    QualityNotFound,
    QualitySource,
    ReportState,
    Watermark,
    agreement_job_active,
    agreement_report_find,
    agreement_report_state,
    annotation_watermark,
    quality_annotation_columns,
    quality_annotations,
    quality_imported_reference,
    quality_policy_get,
    quality_questions,
    quality_source_for_project,
    quality_source_from_params,
)
from annotation.schema import SchemaError, annotation_value_clean
from annotation.selectors import membership_role
from jobs.dispatch import Task, task_send_on_commit
from jobs.models import Job, JobKind
from jobs.services import job_create, job_fail, job_progress, job_start, job_succeed

WRITE_BATCH = 5_000
POLICY_FIELDS = ("show_annotator_names_to_reviewers", "aggregation_method", "tie_policy", "review_confidence_below",
                 "multi_label_rule", "multi_label_share", "intensity_threshold", "intensity_threshold_inclusive",
                 "include_imported_ratings")


# --- settings -----------------------------------------------------------------------------------------------------


def agreement_sync_max_annotations() -> int:
    """Sources with at most this many annotations are computed in the request (0: always by the job)."""
    return int(settings.AGREEMENT_SYNC_MAX_ANNOTATIONS)


def agreement_default_resamples() -> int:
    return int(settings.AGREEMENT_N_RESAMPLES)


def agreement_max_resamples() -> int:
    return int(settings.AGREEMENT_MAX_RESAMPLES)


def agreement_params_clean(raw: Mapping[str, Any]) -> dict[str, int]:
    """``n_resamples`` and ``seed`` from a request; SchemaError names the bad field."""
    errors: dict[str, str] = {}
    cleaned = {"n_resamples": agreement_default_resamples(), "seed": 0}
    limits = {"n_resamples": (0, agreement_max_resamples()), "seed": (0, 2**32 - 1)}
    for name, (low, high) in limits.items():
        if raw.get(name) in (None, ""):
            continue
        try:
            number = int(str(raw[name]))
        except ValueError:
            errors[name] = f"must be a whole number, got {raw[name]!r}"
            continue
        if not low <= number <= high:
            errors[name] = f"must be from {low} to {high}, got {number}"
            continue
        cleaned[name] = number
    if errors:
        raise SchemaError(errors)
    return cleaned


# --- computing the report and the aggregated labels ----------------------------------------------------------------


def _report_params(source: QualitySource, *, n_resamples: int, seed: int) -> ReportParams:
    if source.project_id is not None:
        policy = quality_policy_get(Project.objects.get(pk=source.project_id))
        return ReportParams(
            n_resamples=n_resamples, seed=seed, aggregation_method=policy.aggregation_method,
            tie_policy=policy.tie_policy, review_confidence_below=policy.review_confidence_below,
            multi_label_rule=policy.multi_label_rule, share_above=policy.multi_label_share,
            intensity_threshold=policy.intensity_threshold, intensity_inclusive=policy.intensity_threshold_inclusive,
        )
    return ReportParams(n_resamples=n_resamples, seed=seed)


def _aggregated_rows(source: QualitySource, aggregates: AggregatesByQuestion, computed_at: Any) -> list[AggregatedLabel]:
    rows: list[AggregatedLabel] = []
    for (key, perspective), aggregate in aggregates.items():
        for item in aggregate.rows():
            rows.append(_aggregated_label(source, key, perspective, item, computed_at))
    return rows


def _aggregated_label(source: QualitySource, key: str, perspective: str, item: AggregateRow, computed_at: Any) -> AggregatedLabel:
    return AggregatedLabel(
        project_id=source.project_id, schema_version_id=source.schema_version_id, utterance_id=item.unit,
        question_key=key, perspective=perspective, value=item.value, confidence=item.confidence, method=item.method,
        distribution=item.distribution, n_ratings=item.n_ratings, tied=item.tied, computed_at=computed_at,
    )


def aggregated_labels_write(*, source: QualitySource, aggregates: AggregatesByQuestion) -> int:
    """Replace the source's aggregated labels with these (in one transaction); returns how many were written."""
    computed_at = timezone.now()
    existing = AggregatedLabel.objects.filter(schema_version_id=source.schema_version_id)
    if source.project_id is not None:
        existing = existing.filter(project_id=source.project_id)
    else:
        existing = existing.filter(project__isnull=True, utterance__corpus_id=source.imported_corpus_id)
    rows = _aggregated_rows(source, aggregates, computed_at)
    with transaction.atomic():
        existing.delete()
        for start in range(0, len(rows), WRITE_BATCH):
            AggregatedLabel.objects.bulk_create(rows[start : start + WRITE_BATCH])
    return len(rows)


def _report_store(
    source: QualitySource, watermark: Watermark, params: ReportParams, result: dict[str, Any], duration_ms: int,
    job: Job | None,
) -> AgreementReport:
    fields = {
        "computed_at": timezone.now(), "duration_ms": duration_ms, "annotation_count": watermark.count,
        "annotation_max_updated_at": watermark.max_updated_at, "params": params.as_dict(), "result": result, "job": job,
    }
    for _attempt in range(2):
        report = agreement_report_find(source)
        try:
            with transaction.atomic():
                if report is None:
                    return AgreementReport.objects.create(
                        project_id=source.project_id,
                        corpus_id=source.corpus_id if source.project_id is None else
                        Project.objects.values_list("corpus_id", flat=True).get(pk=source.project_id),
                        schema_version_id=source.schema_version_id, **fields,
                    )
                for name, value in fields.items():
                    setattr(report, name, value)
                report.save(update_fields=list(fields))
                return report
        except IntegrityError:
            continue  # another computation stored the first report meanwhile: update it instead
    raise RuntimeError("could not store the agreement report")


def agreement_report_compute(
    *, source: QualitySource, n_resamples: int | None = None, seed: int = 0, job: Job | None = None,
) -> AgreementReport:
    """Compute the report and the aggregated labels from the source's annotations, and cache both.

    The watermark is read before the annotations, so a change made while computing leaves the report stale.
    """
    started = time.monotonic()
    watermark = annotation_watermark(source)
    questions = quality_questions(source)
    params = _report_params(
        source, n_resamples=agreement_default_resamples() if n_resamples is None else n_resamples, seed=seed
    )
    columns = quality_annotation_columns(source, questions)
    reference = quality_imported_reference(source, questions)
    progress: Callable[[int, int], None] | None = None
    if job is not None:
        job_progress(job=job, done=0, total=len(questions) + 1, counts={"annotations": columns.size})

        def progress(done: int, total: int) -> None:
            job_progress(job=job, done=done, total=total + 1)

    result, aggregates = agreement_report_build(columns, questions, params, on_question=progress, reference=reference)
    with transaction.atomic():
        written = aggregated_labels_write(source=source, aggregates=aggregates)
        result["totals"]["aggregated_labels"] = written
        return _report_store(source, watermark, params, result, int((time.monotonic() - started) * 1000), job)


# --- the background job --------------------------------------------------------------------------------------------


def agreement_job_enqueue(
    *, source: QualitySource, created_by: Any = None, n_resamples: int | None = None, seed: int = 0,
) -> Job:
    """An AGREEMENT job for the source, enqueued once the transaction commits; an active one is reused."""
    active = agreement_job_active(source)
    if active is not None:
        return active
    corpus_id = source.corpus_id
    if source.project_id is not None:
        corpus_id = Project.objects.values_list("corpus_id", flat=True).get(pk=source.project_id)
    user = created_by if created_by is not None and created_by.is_authenticated else None
    job = job_create(
        kind=JobKind.AGREEMENT, created_by=user, project_id=source.project_id, corpus_id=corpus_id,
        params={
            "source": source.as_params(),
            "n_resamples": agreement_default_resamples() if n_resamples is None else n_resamples,
            "seed": seed,
        },
    )

    task_send_on_commit(Task.AGREEMENT, job.pk)
    return job


def agreement_job_run(*, job_id: int) -> None:
    """What ``workers.tasks.compute_agreement`` calls; a redelivered message for a finished job does nothing."""
    job = job_start(job_id=job_id)
    if job is None:
        return
    source = quality_source_from_params(job.params.get("source", {}))
    if source is None:
        job_fail(job=job, message="The project, corpus or schema version of this agreement job no longer exists.")
        return
    try:
        report = agreement_report_compute(
            source=source, n_resamples=int(job.params.get("n_resamples", agreement_default_resamples())),
            seed=int(job.params.get("seed", 0)), job=job,
        )
    except Exception:
        job_fail(job=job, message="Computing agreement failed because of an internal error; the worker log has the details.")
        raise
    job_succeed(
        job=job,
        result={"report_id": report.pk, "annotations": report.annotation_count, "duration_ms": report.duration_ms},
        counts={"annotations": report.annotation_count,
                "aggregated_labels": int(report.result.get("totals", {}).get("aggregated_labels", 0))},
    )


@dataclass(frozen=True)
class AgreementOutcome:
    """What the API answers: the report (maybe stale), whether it was just computed, and a job if one runs."""

    state: ReportState
    computed_now: bool
    job: Job | None
    enqueued: bool


def agreement_report_request(
    *, project: Project | None = None, source: QualitySource | None = None, user: Any, refresh: bool = False,
    n_resamples: int | None = None, seed: int = 0,
) -> AgreementOutcome:
    """A project's report (or any source's: a corpus's imported ratings) for the API: fresh from the cache;
    recomputed in the request when stale and small (at most ``AGREEMENT_SYNC_MAX_ANNOTATIONS`` annotations);
    otherwise a job is enqueued (at most one per source) and the stale report, if any, is returned meanwhile.
    ``refresh`` always enqueues a job."""
    if source is None:
        assert project is not None, "give a project or a source"
        source = quality_source_for_project(project)
    state = agreement_report_state(source)
    if refresh:
        active = state.active_job
        job = agreement_job_enqueue(source=source, created_by=user, n_resamples=n_resamples, seed=seed)
        return AgreementOutcome(state=state, computed_now=False, job=job, enqueued=active is None)
    if not state.stale:
        return AgreementOutcome(state=state, computed_now=False, job=state.active_job, enqueued=False)
    if state.watermark.count <= agreement_sync_max_annotations():
        agreement_report_compute(source=source, n_resamples=n_resamples, seed=seed)
        return AgreementOutcome(state=agreement_report_state(source), computed_now=True, job=None, enqueued=False)
    job = agreement_job_enqueue(source=source, created_by=user, n_resamples=n_resamples, seed=seed)
    return AgreementOutcome(state=state, computed_now=False, job=job, enqueued=state.active_job is None)


# --- policy and adjudication ---------------------------------------------------------------------------------------


def quality_policy_update(*, project: Project, **fields: Any) -> ProjectQualityPolicy:
    """Set some of the policy's fields; SchemaError names a bad one."""
    errors = {name: "no such policy field" for name in fields if name not in POLICY_FIELDS}
    if "aggregation_method" in fields and fields["aggregation_method"] not in AggregationMethod.values:
        errors["aggregation_method"] = f"must be one of {', '.join(AggregationMethod.values)}"
    if "tie_policy" in fields and fields["tie_policy"] not in TiePolicy.values:
        errors["tie_policy"] = f"must be one of {', '.join(TiePolicy.values)}"
    if "multi_label_rule" in fields and fields["multi_label_rule"] not in MultiLabelRule.values:
        errors["multi_label_rule"] = f"must be one of {', '.join(MultiLabelRule.values)}"
    for name, low, high, high_open in (("review_confidence_below", 0, 1, False), ("multi_label_share", 0, 1, True),
                                       ("intensity_threshold", 0, 3, False)):
        number = fields.get(name, low)
        if (not isinstance(number, (int, float)) or isinstance(number, bool) or not low <= number <= high
                or (high_open and number >= high)):
            errors[name] = f"must be a number from {low} to {'below ' if high_open else ''}{high}"
    for name in ("show_annotator_names_to_reviewers", "intensity_threshold_inclusive", "include_imported_ratings"):
        if name in fields and not isinstance(fields[name], bool):
            errors[name] = "must be true or false"
    if errors:
        raise SchemaError(errors)
    policy, _ = ProjectQualityPolicy.objects.get_or_create(project=project)
    for name, value in fields.items():
        setattr(policy, name, value)
    policy.save(update_fields=[*fields, "updated_at"])
    return policy


@transaction.atomic
def item_adjudicate(
    *, project: Project, utterance_id: int, user: Any, value: Any, perspective: str = "", note: str = "",
    annotation_ids: list[int] | None = None,
) -> Adjudication:
    """Set the final answers of an item (one per perspective), with who decided, when, and which annotations it resolved.

    The value is validated like an annotation (SchemaError names the field). By default it resolves every human
    annotation of the item in that perspective; those are marked reviewed (their authors can no longer edit them)
    and the item's open flags are resolved. Deciding again replaces the earlier decision.
    """
    if not user.is_staff and membership_role(user, project) not in REVIEW_ROLES:
        raise QualityForbidden("Only the project's reviewers and leads can adjudicate.")
    annotations = quality_annotations(quality_source_for_project(project)).filter(utterance_id=utterance_id)
    if not annotations.exists():
        raise QualityNotFound("This item has no annotations in the project.")
    cleaned = annotation_value_clean(schema_version=project.schema_version, value=value, perspective=perspective)
    if len(note) > 2000:
        raise SchemaError({"note": "at most 2000 characters"})
    in_perspective = annotations.filter(perspective=perspective)
    if annotation_ids is None:
        resolved = list(in_perspective.filter(origin=Origin.HUMAN).values_list("pk", flat=True))
    else:
        resolved = list(in_perspective.filter(pk__in=annotation_ids).values_list("pk", flat=True))
        unknown = sorted(set(annotation_ids) - set(resolved))
        if unknown:
            raise SchemaError({"annotation_ids": f"not annotations of this item in perspective {perspective!r}: {unknown}"})
    now = timezone.now()
    adjudication, _ = Adjudication.objects.update_or_create(
        project=project, utterance_id=utterance_id, perspective=perspective,
        defaults={"value": cleaned, "note": note, "decided_by": user, "decided_at": now,
                  "schema_version": project.schema_version},
    )
    adjudication.resolved_annotations.set(resolved)
    # A queryset update keeps updated_at: reviewing changes no answer, so the agreement report stays fresh.
    Annotation.objects.filter(pk__in=resolved, reviewed_at__isnull=True).update(reviewed_at=now, reviewed_by=user)
    Flag.objects.filter(project=project, item__utterance_id=utterance_id, resolved=False).update(
        resolved=True, resolved_by=user, resolved_at=now
    )
    return adjudication
