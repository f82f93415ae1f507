"""Reads for agreement, aggregation and adjudication: annotations as columns, the cached report, the review queue.

Annotations are streamed as value tuples (``values_list(...).iterator(chunk_size=...)``), never as model instances.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import numpy as np
from django.contrib.auth.models import User
from django.db.models import (
    BooleanField,
    Count,
    Exists,
    ExpressionWrapper,
    IntegerField,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce

from annotation.distribution.services import gold_answer_is_correct
from annotation.models import (
    Adjudication,
    AggregatedLabel,
    AgreementReport,
    Annotation,
    Flag,
    GoldItem,
    LabelSchemaVersion,
    Origin,
    Project,
    ProjectItem,
    ProjectQualityPolicy,
    Role,
)
from annotation.quality.columns import AnnotationColumns, rater_key
from annotation.quality.report import REPORT_VERSION
from annotation.schema import Question, parse_questions
from annotation.selectors import membership_role, projects_visible_to
from corpora.models import Corpus, Language, Utterance
from corpora.transcripts import transcript_provenance
from jobs.models import Job, JobKind, JobStatus

CHUNK_SIZE = 20_000
REVIEW_ROLES = (Role.LEAD, Role.REVIEWER)


class QualityNotFound(Exception):
    """The project does not exist for this user (not a member): the API answers 404."""


class QualityForbidden(Exception):
    """A member without the role this needs: the API answers 403 with the message."""


@dataclass(frozen=True)
class QualitySource:
    """Whose annotations: a project's, or those imported with a corpus (no project) for one schema version."""

    schema_version_id: int
    project_id: int | None = None
    corpus_id: int | None = None
    include_imported: bool = False  # a project source that also counts the corpus's imported ratings

    @property
    def imported_corpus_id(self) -> int:
        """The corpus of an imported-labels source (only call when ``project_id`` is None)."""
        assert self.corpus_id is not None, "a source without a project needs a corpus"
        return self.corpus_id

    def as_params(self) -> dict[str, int]:
        if self.project_id is not None:
            return {"project": self.project_id}
        assert self.corpus_id is not None
        return {"corpus": self.corpus_id, "schema_version": self.schema_version_id}


def quality_source_for_project(project: Project) -> QualitySource:
    include = ProjectQualityPolicy.objects.filter(project_id=project.pk, include_imported_ratings=True).exists()
    return QualitySource(schema_version_id=project.schema_version_id, project_id=project.pk,
                         corpus_id=project.corpus_id if include else None, include_imported=include)


def quality_source_for_corpus(corpus: Corpus, schema_version: LabelSchemaVersion) -> QualitySource:
    return QualitySource(schema_version_id=schema_version.pk, corpus_id=corpus.pk)


def quality_source_from_params(params: dict[str, Any]) -> QualitySource | None:
    """The source a job's params name, or None when its project, corpus or schema version is gone."""
    if "project" in params:
        project = Project.objects.filter(pk=params["project"]).only("pk", "schema_version_id", "corpus_id").first()
        return quality_source_for_project(project) if project is not None else None
    corpus_id, version_id = params.get("corpus"), params.get("schema_version")
    if not isinstance(corpus_id, int) or not isinstance(version_id, int):
        return None
    corpus = Corpus.objects.filter(pk=corpus_id).first()
    version = LabelSchemaVersion.objects.filter(pk=version_id).first()
    return quality_source_for_corpus(corpus, version) if corpus is not None and version is not None else None


def quality_questions(source: QualitySource) -> list[Question]:
    return parse_questions(LabelSchemaVersion.objects.values_list("questions", flat=True).get(pk=source.schema_version_id))


def quality_annotations(source: QualitySource) -> QuerySet[Annotation]:
    annotations = Annotation.objects.filter(schema_version_id=source.schema_version_id)
    if source.project_id is not None and source.include_imported:
        return annotations.filter(Q(project_id=source.project_id)
                                  | Q(project__isnull=True, utterance__corpus_id=source.imported_corpus_id))
    if source.project_id is not None:
        return annotations.filter(project_id=source.project_id)
    return annotations.filter(project__isnull=True, utterance__corpus_id=source.imported_corpus_id)


@dataclass(frozen=True)
class Watermark:
    """How many annotations a report was computed from and when the latest of them last changed."""

    count: int
    max_updated_at: datetime | None


def annotation_watermark(source: QualitySource) -> Watermark:
    totals = quality_annotations(source).aggregate(count=Count("id"), latest=Max("updated_at"))
    return Watermark(count=int(totals["count"]), max_updated_at=totals["latest"])


def quality_imported_reference(source: QualitySource, questions: Iterable[Question]) -> AnnotationColumns | None:
    """For a project: the human labels imported with its corpus for the project's schema version (the reference a
    model is compared with where the project's annotators did not answer); None for a corpus source."""
    if source.project_id is None:
        return None
    corpus_id = Project.objects.values_list("corpus_id", flat=True).get(pk=source.project_id)
    imported = QualitySource(schema_version_id=source.schema_version_id, corpus_id=corpus_id)
    return quality_annotation_columns(imported, questions, origins=(Origin.HUMAN,))


def quality_annotation_columns(source: QualitySource, questions: Iterable[Question], *,
                               origins: tuple[str, ...] | None = None) -> AnnotationColumns:
    """Stream the source's annotations in id order into parallel columns; machines are rated by model version."""
    keys = [q.key for q in questions if q.type in ("single_choice", "multi_label", "numeric")]
    ids: list[int] = []
    units: list[int] = []
    raters: list[str] = []
    human: list[bool] = []
    perspectives: list[str] = []
    languages: list[int] = []
    created: list[float] = []
    answers: dict[str, list[Any]] = {key: [] for key in keys}
    annotations = quality_annotations(source)
    if origins is not None:
        annotations = annotations.filter(origin__in=origins)
    rows = annotations.order_by("id").values_list(
        "id", "utterance_id", "utterance__language_id", "origin", "annotator_id", "external_rater", "model_version",
        "perspective", "value", "created_at",
    ).iterator(chunk_size=CHUNK_SIZE)
    for pk, unit, language, origin, annotator_id, external_rater, model_version, perspective, value, created_at in rows:
        is_human = origin == Origin.HUMAN
        ids.append(pk)
        created.append(created_at.timestamp())
        units.append(unit)
        raters.append(rater_key(annotator_id, external_rater) if is_human else model_version)
        human.append(is_human)
        perspectives.append(perspective)
        languages.append(language)
        value = value if isinstance(value, dict) else {}
        for key in keys:
            answers[key].append(value.get(key))
    codes = dict(Language.objects.filter(pk__in=set(languages)).values_list("pk", "code"))

    def objects(values: list[Any]) -> np.ndarray:
        array = np.empty(len(values), dtype=object)
        array[:] = values
        return array

    return AnnotationColumns(
        annotation_id=np.asarray(ids, dtype=np.int64),
        unit=np.asarray(units, dtype=np.int64),
        rater=objects(raters),
        is_human=np.asarray(human, dtype=bool),
        perspective=objects(perspectives),
        language=objects([codes.get(language, "") for language in languages]),
        answers={key: objects(values) for key, values in answers.items()},
        created_at=np.asarray(created, dtype=np.float64).astype(np.int64),
    )


def corpus_rating_versions(corpus: Corpus) -> list[dict[str, Any]]:
    """The schema versions the corpus's imported ratings answer, with how many; most ratings first."""
    rows = (Annotation.objects.filter(project__isnull=True, utterance__corpus=corpus).values("schema_version_id")
            .annotate(n=Count("id")).order_by("-n", "schema_version_id"))
    counts = {row["schema_version_id"]: row["n"] for row in rows}
    versions = LabelSchemaVersion.objects.filter(pk__in=list(counts)).select_related("schema")
    named = {v.pk: v for v in versions}
    return [{"id": pk, "schema": named[pk].schema.slug, "version": named[pk].version, "name": named[pk].schema.name,
             "annotations": n} for pk, n in counts.items() if pk in named]


def corpus_for_quality_get(*, corpus_id: int, user: Any) -> Corpus:
    """The corpus, for those who may see its imported ratings' agreement: its creator, leads of projects on it and
    staff. Others who can see the corpus get QualityForbidden; everyone else QualityNotFound."""
    from annotation.permissions import corpus_can_edit
    from corpora.selectors import corpora_visible_to

    corpus = corpora_visible_to(user).filter(pk=corpus_id).first()
    if corpus is None:
        raise QualityNotFound("Not found.")
    if not corpus_can_edit(user, corpus):
        raise QualityForbidden("Only the corpus's creator and the leads of its projects can read its agreement.")
    return corpus


# --- the cached report ----------------------------------------------------------------------------------------------


def agreement_report_find(source: QualitySource) -> AgreementReport | None:
    reports = AgreementReport.objects.filter(schema_version_id=source.schema_version_id)
    if source.project_id is not None:
        return reports.filter(project_id=source.project_id).first()
    return reports.filter(project__isnull=True, corpus_id=source.imported_corpus_id).first()


def agreement_job_active(source: QualitySource) -> Job | None:
    """A pending or running agreement job for the source (so a second request does not enqueue another)."""
    jobs = Job.objects.filter(kind=JobKind.AGREEMENT, status__in=(JobStatus.PENDING, JobStatus.RUNNING))
    if source.project_id is not None:
        jobs = jobs.filter(project_id=source.project_id)
    else:
        jobs = jobs.filter(project__isnull=True, corpus_id=source.imported_corpus_id)
    return next((job for job in jobs.order_by("-id") if job.params.get("source") == source.as_params()), None)


@dataclass(frozen=True)
class ReportState:
    report: AgreementReport | None
    stale: bool
    watermark: Watermark
    active_job: Job | None


def agreement_report_state(source: QualitySource) -> ReportState:
    """The cached report, and whether it is stale: annotations were added, removed or changed since it was computed."""
    report = agreement_report_find(source)
    watermark = annotation_watermark(source)
    stale = report is None or (
        report.annotation_count != watermark.count or report.annotation_max_updated_at != watermark.max_updated_at
        or report.result.get("version") != REPORT_VERSION  # an older report lacks parts readers now expect
    )
    return ReportState(report=report, stale=stale, watermark=watermark, active_job=agreement_job_active(source))


# --- who may see what ------------------------------------------------------------------------------------------------


def quality_policy_get(project: Project) -> ProjectQualityPolicy:
    """The project's policy, or an unsaved one with the defaults."""
    policy = ProjectQualityPolicy.objects.filter(project=project).first()
    return policy if policy is not None else ProjectQualityPolicy(project=project)


def project_for_reviewer_get(*, project_id: int, user: Any) -> tuple[Project, str | None]:
    """The project and the user's role, for leads, reviewers and staff.

    Outsiders get QualityNotFound (the project does not exist for them); annotators get QualityForbidden.
    """
    project = projects_visible_to(user).select_related("schema_version").filter(pk=project_id).first()
    if project is None:
        raise QualityNotFound("Not found.")
    role = membership_role(user, project)
    if role not in REVIEW_ROLES and not user.is_staff:
        raise QualityForbidden("Only the project's reviewers and leads can do this.")
    return project, role


def names_visible(*, project: Project, user: Any, role: str | None, policy: ProjectQualityPolicy | None = None) -> bool:
    """Leads and staff always see annotator names; reviewers when the project's policy says so."""
    if user.is_staff or role == Role.LEAD:
        return True
    return (policy or quality_policy_get(project)).show_annotator_names_to_reviewers


def rater_display_names(keys: Iterable[str], *, show_names: bool) -> dict[str, str]:
    """Display names for rater keys: user names and external ids, or 'Annotator 1, 2…' in key order when hidden.

    Model versions (keys without a ``user:``/``ext:`` prefix) are shown as they are.
    """
    keys = sorted(set(keys), key=str)
    people = [k for k in keys if k.startswith(("user:", "ext:"))]
    names = {k: k for k in keys if k not in people}
    if not show_names:
        names.update({k: f"Annotator {i}" for i, k in enumerate(people, start=1)})
        return names
    user_ids = [int(k[5:]) for k in people if k.startswith("user:")]
    usernames = dict(User.objects.filter(pk__in=user_ids).values_list("pk", "username"))
    for k in people:
        names[k] = usernames.get(int(k[5:]), k) if k.startswith("user:") else k[4:]
    return names


def _report_rater_keys(result: dict[str, Any]) -> set[str]:
    keys: set[str] = set()
    for question in result.get("questions", []):
        for block in question.get("perspectives", []):
            annotators = block.get("annotators")
            if isinstance(annotators, list):
                keys.update(str(row["rater"]) for row in annotators)
            keys.update(block.get("pairwise", {}).get("raters", []))
    return keys


def agreement_report_for_viewer(result: dict[str, Any], *, show_names: bool) -> dict[str, Any]:
    """A copy of the report's JSON with rater keys replaced by what the viewer may see."""
    names = rater_display_names(_report_rater_keys(result), show_names=show_names)
    questions = []
    for question in result.get("questions", []):
        blocks = []
        for block in question.get("perspectives", []):
            block = dict(block)
            if isinstance(block.get("annotators"), list):
                block["annotators"] = [{**row, "rater": names[str(row["rater"])]} for row in block["annotators"]]
            if "raters" in block.get("pairwise", {}):
                block["pairwise"] = {**block["pairwise"], "raters": [names[r] for r in block["pairwise"]["raters"]]}
            blocks.append(block)
        questions.append({**question, "perspectives": blocks} if "perspectives" in question else question)
    return {**result, "questions": questions}


# --- the review queue ------------------------------------------------------------------------------------------------


def _count(queryset: QuerySet[Any], outer_field: str) -> Subquery:
    """COUNT(*) of a queryset correlated to the outer row through ``outer_field``, as a scalar subquery."""
    return Subquery(
        queryset.order_by().values(outer_field).annotate(n=Count("pk")).values("n")[:1], output_field=IntegerField()
    )


REVIEW_REASONS = ("flagged", "tie", "low_agreement", "gold")


def gold_disagreement_utterance_ids(project: Project) -> list[int]:
    """Gold items on which some annotator's answer differs from the known answer (the one rule of
    ``gold_answer_is_correct``). Gold items are few (leads make them one by one), so this reads them all."""
    golds = {gold.utterance_id: gold for gold in GoldItem.objects.filter(project=project)}
    if not golds:
        return []
    answers = Annotation.objects.filter(project=project, origin=Origin.HUMAN, utterance_id__in=list(golds)).values_list(
        "utterance_id", "value"
    )
    return sorted({u for u, value in answers if not gold_answer_is_correct(golds[u], value if isinstance(value, dict) else {})})


def review_queue(
    *, project: Project, policy: ProjectQualityPolicy | None = None, reasons: Iterable[str] | None = None,
    language: str | None = None,
) -> QuerySet[Utterance]:
    """Utterances to adjudicate: open flags, aggregated answers under the policy's confidence (or open ties) with two
    or more ratings, live disagreement on the item above ``1 - threshold``, or an annotator's answer to a gold item
    that differs from the known answer; adjudicated ones leave the queue. ``reasons`` (a subset of ``REVIEW_REASONS``)
    and ``language`` (a code) narrow it.

    Each row carries ``open_flags``, ``min_confidence``, ``open_ties``, ``n_annotations``, ``gold_disagreement``;
    flagged items come first, then open ties, then the least confident.
    """
    policy = policy or quality_policy_get(project)
    threshold = policy.review_confidence_below
    labels = AggregatedLabel.objects.filter(project=project, utterance_id=OuterRef("pk"), n_ratings__gte=2)
    low = labels.filter(Q(confidence__lt=threshold) | Q(value__isnull=True))
    open_flags = Flag.objects.filter(project=project, resolved=False, item__utterance_id=OuterRef("pk"))
    disagreeing = ProjectItem.objects.filter(
        project=project, utterance_id=OuterRef("pk"), disagreement__gt=1.0 - threshold, annotation_count__gte=2
    )
    adjudicated = Adjudication.objects.filter(project=project, utterance_id=OuterRef("pk"))
    gold_wrong = Q(pk__in=gold_disagreement_utterance_ids(project))
    wanted = set(REVIEW_REASONS if reasons is None else reasons)
    conditions = {
        "flagged": Q(Exists(open_flags)),
        "tie": Q(Exists(labels.filter(value__isnull=True))),
        "low_agreement": Q(Exists(low)) | Q(Exists(disagreeing)),
        "gold": gold_wrong,
    }
    selected = Q(pk__in=[])
    for reason in REVIEW_REASONS:
        if reason in wanted:
            selected |= conditions[reason]

    annotations = quality_annotations(quality_source_for_project(project)).filter(
        utterance_id=OuterRef("pk"), origin=Origin.HUMAN)
    queue = Utterance.objects.filter(corpus_id=project.corpus_id).filter(selected)
    if language:
        queue = queue.filter(language__code=language)
    return (
        queue.exclude(Exists(adjudicated))
        .annotate(
            open_flags=Coalesce(_count(open_flags, "item__utterance_id"), 0),
            n_annotations=Coalesce(_count(annotations, "utterance_id"), 0),
            open_ties=Coalesce(_count(labels.filter(value__isnull=True), "utterance_id"), 0),
            min_confidence=Subquery(
                labels.order_by().values("utterance_id").annotate(low=Min("confidence")).values("low")[:1]
            ),
            item_disagreement=Subquery(
                ProjectItem.objects.filter(project=project, utterance_id=OuterRef("pk")).values("disagreement")[:1]
            ),
            gold_disagreement=ExpressionWrapper(gold_wrong, output_field=BooleanField()),
        )
        .select_related("language")
        .order_by("-open_flags", "-open_ties", Coalesce("min_confidence", Value(1.0)).asc(), "id")
    )


def item_rater_names(keys: list[str], *, show_names: bool) -> dict[str, str]:
    """Names for the people on one item: user names, or "Annotator A, B…" numbered by first appearance in ``keys``
    (annotators in submission order, then flaggers), so the side-by-side reads A, B, C in submission order."""
    if show_names:
        return rater_display_names(keys, show_names=True)
    order = list(dict.fromkeys(keys))
    return {k: f"Annotator {chr(ord('A') + i) if i < 26 else i + 1}" for i, k in enumerate(order)}


def review_item_get(*, project: Project, utterance_id: int, show_names: bool) -> dict[str, Any]:
    """One item side by side: the utterance, every annotation of the project on it and the ratings imported with its
    corpus (marked, and whether the policy counts them), names per policy, open and resolved flags, the aggregated
    answers and the adjudication so far. QualityNotFound if not in the project."""
    utterance = (
        Utterance.objects.select_related("language", "speaker", "conversation")
        .filter(pk=utterance_id, corpus_id=project.corpus_id)
        .first()
    )
    if utterance is None:
        raise QualityNotFound("This utterance is not in the project.")
    # The corpus's imported ratings (same schema version) are shown whether or not the policy counts them: a
    # reviewer settling a tie sees what the source's raters said. The project's own answers come first.
    source = quality_source_for_project(project)
    shown = replace(source, corpus_id=project.corpus_id, include_imported=True)
    annotations = sorted(
        quality_annotations(shown).filter(utterance_id=utterance_id).values(
            "id", "project_id", "origin", "annotator_id", "external_rater", "model_version", "perspective", "value",
            "created_at", "updated_at", "reviewed_at", "lead_time_ms",
        ),
        key=lambda a: (a["project_id"] is None, a["id"]),
    )
    flags = list(
        Flag.objects.filter(project=project, item__utterance_id=utterance_id).order_by("id").values(
            "id", "note", "created_by_id", "resolved", "created_at", "dismissed", "resolution_note", "resolved_at"
        )
    )
    keys = [rater_key(a["annotator_id"], a["external_rater"]) for a in annotations if a["origin"] == Origin.HUMAN]
    keys += [f"user:{f['created_by_id']}" for f in flags]
    names = item_rater_names(keys, show_names=show_names)
    rows = []
    for a in annotations:
        human = a["origin"] == Origin.HUMAN
        imported = a["project_id"] is None
        rows.append({
            "id": a["id"],
            "origin": a["origin"],
            "rater_key": rater_key(a["annotator_id"], a["external_rater"]) if human else "",
            "rater": names[rater_key(a["annotator_id"], a["external_rater"])] if human else a["model_version"],
            "imported": imported,
            "counted": not imported or source.include_imported,
            "model_version": a["model_version"],
            "perspective": a["perspective"],
            "value": a["value"],
            "created_at": a["created_at"],
            "updated_at": a["updated_at"],
            "reviewed_at": a["reviewed_at"],
            "lead_time_ms": a["lead_time_ms"],
        })
    adjudications = list(
        Adjudication.objects.filter(project=project, utterance_id=utterance_id)
        .select_related("decided_by").prefetch_related("resolved_annotations")
    )
    return {
        "utterance": {
            "id": utterance.pk,
            "text": utterance.text,
            "language": utterance.language.code,
            "direction": utterance.language.direction,
            "audio_url": utterance.audio.url if utterance.audio else None,
            "speaker": utterance.speaker.external_id if utterance.speaker else None,
            "conversation": utterance.conversation.external_id if utterance.conversation else None,
            "transcript": transcript_provenance(utterance.transcript_source, utterance.transcript_model,
                                                utterance.transcript_confidence, utterance.metadata),
        },
        "questions": LabelSchemaVersion.objects.values_list("questions", flat=True).get(pk=project.schema_version_id),
        "perspectives": LabelSchemaVersion.objects.values_list("perspectives", flat=True).get(pk=project.schema_version_id),
        "annotations": rows,
        "flags": [
            {"id": f["id"], "note": f["note"], "created_by": names[f"user:{f['created_by_id']}"], "resolved": f["resolved"],
             "created_at": f["created_at"], "dismissed": f["dismissed"], "resolution_note": f["resolution_note"],
             "resolved_at": f["resolved_at"]}
            for f in flags
        ],
        "aggregated": list(
            AggregatedLabel.objects.filter(project=project, utterance_id=utterance_id).order_by("question_key", "perspective")
            .values("question_key", "perspective", "value", "confidence", "method", "distribution", "n_ratings", "computed_at")
        ),
        "adjudications": [
            {
                "perspective": adj.perspective,
                "value": adj.value,
                "note": adj.note,
                "decided_by": adj.decided_by.username if show_names else "a reviewer",
                "decided_at": adj.decided_at,
                "resolved_annotations": sorted(a.pk for a in adj.resolved_annotations.all()),
            }
            for adj in adjudications
        ],
    }
