"""LLM labelling: endpoints (keys encrypted, URLs behind the SSRF guard), versioned prompt templates and their
preview, labelling jobs on the ``llm`` queue (cached per utterance, endpoint and template version, so a resumed job
never pays twice), and synthetic labels combined from several endpoints. README.md here says how it fits together.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet, Sum

from annotation.models import (
    AggregatedLabel,
    Annotation,
    LLMCombination,
    LLMEndpoint,
    LLMLabel,
    LLMPromptTemplate,
    LLMRun,
    Origin,
    Project,
    PromptKind,
    StructuredOutput,
)
from annotation.predictions.services import SPLIT_ALIASES, project_utterances, utterance_split_q
from config.outbound import OutboundRefused, outbound_addresses, outbound_client
from corpora.models import Utterance
from jobs.dispatch import Task as CeleryTask
from jobs.dispatch import task_send_on_commit
from jobs.models import Job, JobKind, JobStatus
from jobs.services import RowError, job_create, job_fail, job_progress, job_record_errors, job_start, job_succeed
from models_zoo.llm import (
    BUILTIN_TEMPLATES,
    AnswerSchema,
    FewShotExample,
    LLMAnswerError,
    LLMClient,
    LLMRequestError,
    PromptItem,
    PromptTemplate,
    TemplateError,
    client_for,
    combine_answers,
    render_prompt,
)
from models_zoo.llm import LLMEndpoint as EndpointConfig
from models_zoo.llm.combine import METHODS
from models_zoo.llm.errors import LLMBusyError, LLMConnectionError, LLMTimeoutError

logger = logging.getLogger(__name__)

PREVIEW_ITEMS = 5
MAX_RUN_ITEMS = 200_000
FLUSH_EVERY_ITEMS = 32
FLUSH_EVERY_SECONDS = 2.0
MODEL_VERSION_PREFIX = "llm:"
Transient = (LLMBusyError, LLMConnectionError, LLMTimeoutError)


class LLMSetupError(Exception):
    """Bad input to an LLM service: ``errors`` maps each field to why, for a 400 answer."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


# --- API keys at rest ------------------------------------------------------------------------------------------------


def _fernet() -> Fernet:
    secret = settings.LLM_KEY_SECRET
    if secret:
        return Fernet(secret.encode())
    # Derived from SECRET_KEY (itself from the environment in production); rotating it means registering keys again.
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"sentio-llm-api-keys", info=b"fernet").derive(
        settings.SECRET_KEY.encode())
    return Fernet(base64.urlsafe_b64encode(derived))


def api_key_encrypt(api_key: str) -> str:
    return _fernet().encrypt(api_key.encode()).decode() if api_key else ""


def endpoint_api_key(endpoint: LLMEndpoint) -> str:
    """The key to send: decrypted, or read from the named environment variable (of the process that calls)."""
    if endpoint.api_key_env:
        import os

        return os.environ.get(endpoint.api_key_env, "")
    if not endpoint.api_key_encrypted:
        return ""
    try:
        return _fernet().decrypt(endpoint.api_key_encrypted.encode()).decode()
    except InvalidToken:
        raise LLMSetupError({"api_key": f"the stored key of endpoint {endpoint.name!r} cannot be decrypted (was "
                                        "SENTIO_LLM_KEY_SECRET or SECRET_KEY changed?); register the key again"}) from None


# --- endpoints -------------------------------------------------------------------------------------------------------


def endpoint_url_check(base_url: str) -> str:
    """The URL an endpoint may have, or LLMSetupError: http(s), on an allowed host, passing the SSRF guard."""
    url = base_url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LLMSetupError({"base_url": "must be an http(s) URL up to and including /v1, e.g. http://gpu-box:8000/v1"})
    if parts.query or parts.fragment:
        raise LLMSetupError({"base_url": "must carry no query string or fragment"})
    allowed = [h.strip().lower() for h in settings.LLM_ENDPOINT_HOSTS if h.strip()]
    if allowed and not _host_listed(parts.hostname.lower(), allowed):
        raise LLMSetupError({"base_url": f"{parts.hostname} is not among the hosts LLM endpoints may be at "
                                         "(SENTIO_LLM_ENDPOINT_HOSTS)"})
    try:
        outbound_addresses(url)
    except OutboundRefused as exc:
        raise LLMSetupError({"base_url": str(exc)}) from None
    return url


def _host_listed(host: str, allowed: list[str]) -> bool:
    import ipaddress

    if host in allowed:
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    for entry in allowed:
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def llm_endpoint_register(*, project: Project, user: Any, name: str, base_url: str, model: str, api_key: str = "",
                          api_key_env: str = "", structured_output: str = StructuredOutput.JSON_SCHEMA,
                          max_concurrency: int = 4, requests_per_minute: float | None = None,
                          tokens_per_minute: float | None = None, price_input_per_1k: Decimal = Decimal(0),
                          price_output_per_1k: Decimal = Decimal(0), timeout_s: float = 60.0,
                          max_tokens: int = 512) -> LLMEndpoint:
    errors: dict[str, str] = {}
    if not name.strip():
        errors["name"] = "give the endpoint a name"
    elif LLMEndpoint.objects.filter(project=project, name=name.strip()).exists():
        errors["name"] = f"the project already has an endpoint named {name.strip()!r}"
    if not model.strip():
        errors["model"] = "give the model name the server serves"
    if api_key and api_key_env:
        errors["api_key_env"] = "give the key itself or the name of an environment variable, not both"
    if api_key_env and not api_key_env.replace("_", "").isalnum():
        errors["api_key_env"] = "must be an environment variable name (letters, digits, underscores)"
    if structured_output not in StructuredOutput.values:
        errors["structured_output"] = f"one of {', '.join(StructuredOutput.values)}"
    try:
        url = endpoint_url_check(base_url)
    except LLMSetupError as exc:
        errors.update(exc.errors)
    if errors:
        raise LLMSetupError(errors)
    return LLMEndpoint.objects.create(
        project=project, name=name.strip(), base_url=url, model=model.strip(), api_key_encrypted=api_key_encrypt(api_key),
        api_key_env=api_key_env, structured_output=structured_output, max_concurrency=max_concurrency,
        requests_per_minute=requests_per_minute, tokens_per_minute=tokens_per_minute,
        price_input_per_1k=price_input_per_1k, price_output_per_1k=price_output_per_1k, timeout_s=timeout_s,
        max_tokens=max_tokens, created_by=user)


def llm_endpoint_delete(*, endpoint: LLMEndpoint) -> None:
    if endpoint.runs.exists():
        raise LLMSetupError({"endpoint": "it has labelling runs; their provenance needs it, so it stays"})
    endpoint.delete()


def endpoint_config(endpoint: LLMEndpoint) -> EndpointConfig:
    return EndpointConfig(
        base_url=endpoint.base_url, model=endpoint.model, api_key=endpoint_api_key(endpoint), name=endpoint.name,
        structured_output=endpoint.structured_output,  # type: ignore[arg-type]
        timeout_s=endpoint.timeout_s, max_concurrency=endpoint.max_concurrency,
        requests_per_minute=endpoint.requests_per_minute, tokens_per_minute=endpoint.tokens_per_minute,
        price_input_per_1k=Decimal(endpoint.price_input_per_1k), price_output_per_1k=Decimal(endpoint.price_output_per_1k))


def endpoint_client(endpoint: LLMEndpoint) -> LLMClient:
    """The process's client for the endpoint, its every request (redirects too) through the SSRF guard."""
    endpoint_url_check(endpoint.base_url)  # a clear error now rather than retried connection failures later
    return client_for(endpoint_config(endpoint), http_client=lambda: outbound_client(timeout=endpoint.timeout_s))


# --- templates -------------------------------------------------------------------------------------------------------


def template_prompt(template: LLMPromptTemplate) -> PromptTemplate:
    return PromptTemplate(name=f"{template.name} v{template.version}", user=template.user, system=template.system,
                          translate=template.translate, reason=template.reason)


def llm_template_save(*, project: Project, user: Any, name: str, kind: str, user_text: str | None = None,
                      system: str = "", translate: bool | None = None, reason: bool | None = None,
                      examples_count: int = 0) -> LLMPromptTemplate:
    """Save a template's next version (texts default to the built-in template of ``kind``); saving the same content
    again returns the latest version instead of a copy."""
    if kind not in PromptKind.values:
        raise LLMSetupError({"kind": f"one of {', '.join(PromptKind.values)}"})
    if not name.strip():
        raise LLMSetupError({"name": "give the template a name"})
    builtin = BUILTIN_TEMPLATES[kind]
    try:
        prompt = PromptTemplate(name=name, user=builtin.user if user_text is None else user_text,
                                system=system, translate=builtin.translate if translate is None else translate,
                                reason=builtin.reason if reason is None else reason)
    except TemplateError as exc:
        raise LLMSetupError({"user": str(exc)}) from None
    if prompt.uses_examples and examples_count < 1:
        raise LLMSetupError({"examples_count": "the template shows $examples: draw at least one from human gold"})
    if not 0 <= examples_count <= 20:
        raise LLMSetupError({"examples_count": "from 0 to 20"})
    with transaction.atomic():
        versions = LLMPromptTemplate.objects.select_for_update().filter(project=project, name=name.strip())
        latest = versions.order_by("-version").first()
        if latest is not None and latest.content_hash == prompt.version and latest.examples_count == examples_count \
                and latest.kind == kind:
            return latest
        return LLMPromptTemplate.objects.create(
            project=project, name=name.strip(), version=(latest.version + 1) if latest else 1, kind=kind,
            system=prompt.system, user=prompt.user, translate=prompt.translate, reason=prompt.reason,
            examples_count=examples_count, content_hash=prompt.version, created_by=user)


def project_answer_schema(project: Project) -> AnswerSchema:
    return AnswerSchema.from_questions(project.schema_version.questions)


def prompt_item(utterance: Utterance) -> PromptItem:
    return PromptItem(text=utterance.text, language=utterance.language.name or utterance.language.code)


def few_shot_examples(template: LLMPromptTemplate, schema: AnswerSchema,
                      exclude: Iterable[int] = ()) -> list[FewShotExample]:
    """``examples_count`` examples from the project's human gold (its aggregated labels) in the train split."""
    if template.examples_count == 0:
        return []
    project = template.project
    keys = {q.key for q in schema.questions}
    rows = (AggregatedLabel.objects.filter(project=project, question_key__in=keys, value__isnull=False, perspective="")
            .filter(utterance__in=project_utterances(project).filter(utterance_split_q("train")))
            .exclude(utterance_id__in=list(exclude)).select_related("utterance__language")
            .order_by("utterance_id", "question_key"))
    by_utterance: dict[int, tuple[Utterance, dict[str, Any]]] = {}
    for row in rows.iterator(chunk_size=500):
        by_utterance.setdefault(row.utterance_id, (row.utterance, {}))[1][row.question_key] = row.value
        if len(by_utterance) > template.examples_count * 5:
            break
    examples = []
    for utterance, labels in by_utterance.values():
        try:
            schema.check_labels(labels)
        except ValueError:
            continue
        examples.append(FewShotExample(text=utterance.text, labels=labels, language=prompt_item(utterance).language))
        if len(examples) == template.examples_count:
            return examples
    raise LLMSetupError({"examples_count": f"the template wants {template.examples_count} examples from human gold "
                                           f"in the train split and the project has {len(examples)}: compute the "
                                           "aggregated labels on the dashboard first, or ask for fewer"})


def llm_template_preview(*, template: LLMPromptTemplate, utterance_ids: Sequence[int] | None = None,
                         endpoint: LLMEndpoint | None = None) -> list[dict[str, Any]]:
    """The rendered prompt of up to 5 items, and with an endpoint its answer (not stored: a preview costs tokens
    but writes nothing)."""
    project = template.project
    utterances = project_utterances(project).select_related("language").exclude(text="")
    if utterance_ids:
        utterances = utterances.filter(pk__in=list(utterance_ids)[:PREVIEW_ITEMS])
    items = list(utterances.order_by("id")[:PREVIEW_ITEMS])
    if not items:
        raise LLMSetupError({"utterance_ids": "no utterance with text to preview in this project"})
    schema = project_answer_schema(project)
    if not schema.questions:
        raise LLMSetupError({"template": "the project's schema has no question an LLM can answer"})
    prompt = template_prompt(template)
    examples = few_shot_examples(template, schema, exclude=[u.pk for u in items])
    client = endpoint_client(endpoint) if endpoint is not None else None
    previews = []
    for utterance in items:
        try:
            rendered = render_prompt(prompt, prompt_item(utterance), schema, examples)
        except TemplateError as exc:
            raise LLMSetupError({"template": str(exc)}) from None
        entry: dict[str, Any] = {"utterance": utterance.pk, "text": utterance.text, "prompt": rendered.as_text()}
        if client is not None and endpoint is not None:
            entry["answer"] = _call_for_preview(client, endpoint, rendered)
        previews.append(entry)
    return previews


def guarded_complete(client: LLMClient, rendered: Any, max_tokens: int) -> Any:
    """``client.complete`` where the SSRF guard's refusal (raised by the transport) is a permanent request error."""
    try:
        return client.complete(rendered.messages, rendered.schema, max_tokens=max_tokens, seed=0)
    except OutboundRefused as exc:
        raise LLMRequestError(f"{client.endpoint.name}: refused by the SSRF guard: {exc}", status=0) from None


def _call_for_preview(client: LLMClient, endpoint: LLMEndpoint, rendered: Any) -> dict[str, Any]:
    try:
        result = guarded_complete(client, rendered, endpoint.max_tokens)
    except LLMAnswerError as exc:
        return {"error": str(exc), "raw": exc.raw}
    except (LLMRequestError, *Transient) as exc:
        return {"error": str(exc)}
    return {"labels": result.answer.labels, "translation": result.answer.translation or "",
            "rationale": result.answer.rationale or "", "model": result.model, "prompt_tokens": result.prompt_tokens,
            "completion_tokens": result.completion_tokens, "cost": str(result.cost),
            "latency_s": round(result.latency_s, 3)}


def llm_endpoint_test(*, endpoint: LLMEndpoint, utterance_id: int | None = None) -> dict[str, Any]:
    """Send one item with the built-in CoTR prompt: does the server answer, in the schema, and at what cost."""
    project = endpoint.project
    utterances = project_utterances(project).select_related("language").exclude(text="")
    utterance = (utterances.filter(pk=utterance_id) if utterance_id else utterances.order_by("id")).first()
    if utterance is None:
        raise LLMSetupError({"utterance": "no utterance with text in this project to send"})
    schema = project_answer_schema(project)
    rendered = render_prompt(BUILTIN_TEMPLATES["cotr"], prompt_item(utterance), schema)
    answer = _call_for_preview(endpoint_client(endpoint), endpoint, rendered)
    return {"ok": "error" not in answer, "utterance": utterance.pk, "text": utterance.text, **answer}


# --- labelling runs --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    unlabelled: bool = False  # only items no person labelled in this project
    split: str = ""  # train, dev or test ("" : all)
    language: str = ""  # a language code
    text_contains: str = ""
    utterance_ids: tuple[int, ...] = ()
    limit: int | None = None

    @classmethod
    def parse(cls, raw: dict[str, Any] | None) -> Selection:
        raw = dict(raw or {})
        errors = {}
        unknown = sorted(set(raw) - {"unlabelled", "split", "language", "text_contains", "utterance_ids", "limit"})
        if unknown:
            errors["selection"] = f"unknown keys {unknown}"
        split = str(raw.get("split") or "").strip().lower()
        if split and split not in SPLIT_ALIASES:
            errors["selection.split"] = "one of train, dev, test"
        limit = raw.get("limit")
        if limit is not None and (not isinstance(limit, int) or not 1 <= limit <= MAX_RUN_ITEMS):
            errors["selection.limit"] = f"a whole number from 1 to {MAX_RUN_ITEMS}"
        ids = raw.get("utterance_ids") or []
        if not isinstance(ids, list) or not all(isinstance(i, int) and i > 0 for i in ids):
            errors["selection.utterance_ids"] = "a list of utterance ids"
        if errors:
            raise LLMSetupError(errors)
        return cls(unlabelled=bool(raw.get("unlabelled", False)), split=split, language=str(raw.get("language") or ""),
                   text_contains=str(raw.get("text_contains") or ""), utterance_ids=tuple(sorted(set(ids))),
                   limit=limit)

    def as_params(self) -> dict[str, Any]:
        return {"unlabelled": self.unlabelled, "split": self.split, "language": self.language,
                "text_contains": self.text_contains, "utterance_ids": list(self.utterance_ids), "limit": self.limit}


def selection_utterances(project: Project, selection: Selection) -> QuerySet[Utterance]:
    utterances = project_utterances(project).exclude(text="")
    if selection.unlabelled:
        human = Annotation.objects.filter(project=project, origin=Origin.HUMAN).values("utterance_id")
        utterances = utterances.exclude(pk__in=human)
    if selection.split:
        utterances = utterances.filter(utterance_split_q(selection.split))
    if selection.language:
        utterances = utterances.filter(language__code=selection.language)
    if selection.text_contains:
        utterances = utterances.filter(text__icontains=selection.text_contains)
    if selection.utterance_ids:
        utterances = utterances.filter(pk__in=selection.utterance_ids)
    return utterances.order_by("id")


def llm_run_create(*, project: Project, user: Any, endpoint: LLMEndpoint, template: LLMPromptTemplate,
                   selection: dict[str, Any] | None = None, enqueue: bool = True) -> LLMRun:
    if endpoint.project_id != project.pk or template.project_id != project.pk:
        raise LLMSetupError({"endpoint": "the endpoint and the template must be this project's"})
    chosen = Selection.parse(selection)
    count = selection_utterances(project, chosen).count()
    if count == 0:
        raise LLMSetupError({"selection": "selects no utterance with text"})
    if count > MAX_RUN_ITEMS and chosen.limit is None:
        raise LLMSetupError({"selection": f"selects {count} utterances; at most {MAX_RUN_ITEMS} per run (set a limit)"})
    schema = project_answer_schema(project)
    if not schema.questions:
        raise LLMSetupError({"template": "the project's schema has no question an LLM can answer"})
    few_shot_examples(template, schema)  # refuse now, not in the worker, when gold is short
    with transaction.atomic():
        job = job_create(kind=JobKind.LLM_LABEL, created_by=user, project=project,
                         params={"endpoint": endpoint.pk, "template": template.pk, "selection": chosen.as_params()})
        run = LLMRun.objects.create(project=project, endpoint=endpoint, template=template, job=job,
                                    selection=chosen.as_params(), created_by=user)
        if enqueue:
            task_send_on_commit(CeleryTask.LLM_LABEL, job.pk)
    return run


def llm_job_cancel(*, job: Job) -> bool:
    """Mark a waiting or running LLM job cancelled; the worker stops after the calls in flight. What it stored stays
    (a later run of the same endpoint and template reuses it)."""
    updated = Job.objects.filter(pk=job.pk, status__in=[JobStatus.PENDING, JobStatus.RUNNING]).update(
        status=JobStatus.CANCELLED, message="Cancelled by a lead; the labels already made are kept.")
    from django.utils import timezone

    Job.objects.filter(pk=job.pk, status=JobStatus.CANCELLED, finished_at__isnull=True).update(finished_at=timezone.now())
    return bool(updated)


def run_counts(run: LLMRun, total: int) -> dict[str, Any]:
    """Tokens and cost this run paid (over all its attempts), and how its items stand."""
    paid = LLMLabel.objects.filter(run=run).aggregate(prompt=Sum("prompt_tokens"), completion=Sum("completion_tokens"),
                                                      cost=Sum("cost"))
    made = LLMLabel.objects.filter(run=run)
    return {"items": total, "labelled": made.filter(labels__isnull=False).count(),
            "failed": made.filter(labels__isnull=True).count(), "prompt_tokens": paid["prompt"] or 0,
            "completion_tokens": paid["completion"] or 0, "cost": str(paid["cost"] or Decimal(0))}


def _label_row(run: LLMRun, utterance_id: int, outcome: Any) -> LLMLabel:
    common = {"utterance_id": utterance_id, "endpoint_id": run.endpoint_id, "template_id": run.template_id, "run": run}
    if isinstance(outcome, LLMAnswerError):
        return LLMLabel(**common, model=run.endpoint.model, labels=None, raw=outcome.raw, error=str(outcome),
                        prompt_tokens=outcome.prompt_tokens, completion_tokens=outcome.completion_tokens,
                        cost=outcome.cost)
    return LLMLabel(**common, model=outcome.model[:200], labels=outcome.answer.labels,
                    translation=outcome.answer.translation or "", rationale=outcome.answer.rationale or "",
                    raw=outcome.raw, prompt_tokens=outcome.prompt_tokens, completion_tokens=outcome.completion_tokens,
                    cost=outcome.cost, latency_s=outcome.latency_s)


def llm_run_execute(*, job_id: int) -> None:
    """Label the run's selection: items already answered by this endpoint and template version (by any run) are
    skipped, answers are stored in batches as they come, the job's counts say tokens and cost so far, and a
    cancelled job stops after the calls in flight. Transient failures left after the client's retries are raised
    (the task retries; the answers stored stay); an answer outside the schema is stored as a per-item error."""
    job = job_start(job_id=job_id)
    if job is None:
        return
    run = LLMRun.objects.select_related("endpoint", "template__project__schema_version").get(job=job)
    project = run.template.project
    selection = Selection.parse(run.selection)
    ids = list(selection_utterances(project, selection).values_list("pk", flat=True))
    if selection.limit is not None:
        ids = ids[:selection.limit]
    answered = set(LLMLabel.objects.filter(endpoint=run.endpoint, template=run.template, utterance_id__in=ids)
                   .values_list("utterance_id", flat=True))
    todo = [i for i in ids if i not in answered]
    total = len(ids)
    try:
        schema = project_answer_schema(project)
        examples = few_shot_examples(run.template, schema, exclude=ids)
        client = endpoint_client(run.endpoint)
    except LLMSetupError as exc:
        job_fail(job=job, message=str(exc), counts=run_counts(run, total))
        return
    prompt = template_prompt(run.template)
    # job_start cleared the errors of an earlier attempt; the items that failed then are cached, so say them again.
    failed_before = LLMLabel.objects.filter(endpoint=run.endpoint, template=run.template, utterance_id__in=ids,
                                            labels__isnull=True).values_list("utterance_id", "error")
    job_record_errors(job=job, errors=[RowError(reason=e, row=u, column="utterance") for u, e in failed_before])
    job_progress(job=job, done=len(answered), total=total, counts={**run_counts(run, total), "cached": len(answered)})

    pending_rows: list[LLMLabel] = []
    errors: list[RowError] = []
    transient: list[Exception] = []
    done = len(answered)
    last_flush = time.monotonic()

    def flush() -> bool:
        """Store what came; False when the job was cancelled meanwhile."""
        nonlocal last_flush, pending_rows, errors
        if pending_rows:
            LLMLabel.objects.bulk_create(pending_rows, ignore_conflicts=True)  # another run may have stored one
        job_record_errors(job=job, errors=errors)
        pending_rows, errors = [], []
        last_flush = time.monotonic()
        job_progress(job=job, done=done, counts={**run_counts(run, total), "cached": len(answered)})
        return Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING).exists()

    texts = dict(Utterance.objects.filter(pk__in=todo).values_list("pk", "text"))
    languages = dict(Utterance.objects.filter(pk__in=todo).values_list("pk", "language__name"))

    def call(utterance_id: int) -> Any:
        rendered = render_prompt(prompt, PromptItem(texts[utterance_id], language=languages[utterance_id] or "the "
                                                    "source language"), schema, examples)
        return guarded_complete(client, rendered, run.endpoint.max_tokens)

    refused: LLMRequestError | None = None
    cancelled = False
    queue = iter(todo)
    in_flight: dict[Future[Any], int] = {}
    with ThreadPoolExecutor(max_workers=run.endpoint.max_concurrency, thread_name_prefix=f"llm-job-{job.pk}") as pool:
        def fill() -> None:
            while len(in_flight) < run.endpoint.max_concurrency * 2 and refused is None and not cancelled:
                utterance_id = next(queue, None)
                if utterance_id is None:
                    return
                in_flight[pool.submit(call, utterance_id)] = utterance_id

        fill()
        while in_flight:
            finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in finished:
                utterance_id = in_flight.pop(future)
                try:
                    outcome = future.result()
                except LLMAnswerError as exc:
                    outcome = exc
                    errors.append(RowError(reason=str(exc), row=utterance_id, column="utterance"))
                except LLMRequestError as exc:
                    refused = exc  # the same request fails again for every item: stop
                    continue
                except TemplateError as exc:
                    errors.append(RowError(reason=str(exc), row=utterance_id, column="utterance"))
                    continue
                except Transient as exc:
                    transient.append(exc)
                    continue
                pending_rows.append(_label_row(run, utterance_id, outcome))
                done += 1
            if len(pending_rows) >= FLUSH_EVERY_ITEMS or time.monotonic() - last_flush > FLUSH_EVERY_SECONDS:
                cancelled = not flush()
            fill()
    still_running = flush()
    counts = {**run_counts(run, total), "cached": len(answered)}
    if not still_running:
        Job.objects.filter(pk=job.pk).update(counts=counts)
        return
    if refused is not None:
        job_fail(job=job, message=f"The endpoint refused the request: {refused}", counts=counts)
        return
    if transient:
        raise transient[-1]  # the task retries later; stored answers are not asked again
    job_succeed(job=job, counts=counts, result={"labels": counts["labelled"], "failed": counts["failed"]})


def llm_job_fail(*, job_id: int, message: str) -> None:
    job = Job.objects.filter(pk=job_id).first()
    if job is not None and not job.is_finished:
        job_fail(job=job, message=message)


# --- synthetic labels ------------------------------------------------------------------------------------------------


def _source_name(endpoint: LLMEndpoint, template: LLMPromptTemplate) -> str:
    return f"{endpoint.name}/{endpoint.model}@{template.name} v{template.version}"


def llm_synthetic_publish(*, project: Project, user: Any, sources: Sequence[tuple[int, int]],
                          method: str = "single") -> LLMCombination:
    """Turn stored LLM answers into the project's synthetic labels (origin=llm annotations, which the gold export
    puts in train only): one (endpoint, template) pair as it is, or several combined per label by union,
    intersection or majority (models_zoo.llm.combine). Replaces the project's earlier synthetic labels."""
    pairs = list(dict.fromkeys((int(e), int(t)) for e, t in sources))
    if not pairs:
        raise LLMSetupError({"sources": "give at least one (endpoint, template) pair"})
    if method == "single" and len(pairs) != 1:
        raise LLMSetupError({"method": "several sources need union, intersection or majority"})
    if method != "single" and method not in METHODS:
        raise LLMSetupError({"method": f"one of single, {', '.join(METHODS)}"})
    if method != "single" and len(pairs) < 2:
        raise LLMSetupError({"sources": f"{method} combines two or more (endpoint, template) pairs"})
    endpoints = {e.pk: e for e in LLMEndpoint.objects.filter(project=project, pk__in=[p[0] for p in pairs])}
    templates = {t.pk: t for t in LLMPromptTemplate.objects.filter(project=project, pk__in=[p[1] for p in pairs])}
    missing = [p for p in pairs if p[0] not in endpoints or p[1] not in templates]
    if missing:
        raise LLMSetupError({"sources": f"not this project's endpoint and template: {missing}"})
    schema = project_answer_schema(project)
    answers: dict[int, list[dict[str, Any] | None]] = {}
    for index, (endpoint_id, template_id) in enumerate(pairs):
        rows = LLMLabel.objects.filter(endpoint_id=endpoint_id, template_id=template_id).values_list("utterance_id",
                                                                                                      "labels")
        for utterance_id, labels in rows.iterator(chunk_size=2000):
            answers.setdefault(utterance_id, [None] * len(pairs))[index] = labels
    if not answers:
        raise LLMSetupError({"sources": "these endpoints and templates have labelled nothing yet"})
    names = [_source_name(endpoints[e], templates[t]) for e, t in pairs]
    description = f"{method}({' + '.join(names)})" if method != "single" else names[0]
    digest = hashlib.sha256(description.encode()).hexdigest()[:10]
    model_version = f"{MODEL_VERSION_PREFIX}{description}"
    if len(model_version) > 200:
        model_version = f"{model_version[:185]}… #{digest}"
    annotations = []
    for utterance_id, per_source in answers.items():
        value = (combine_answers(per_source, schema, method) if method != "single"  # type: ignore[arg-type]
                 else (per_source[0] or {}))
        if value:
            annotations.append(Annotation(utterance_id=utterance_id, project=project,
                                          schema_version=project.schema_version, value=value, origin=Origin.LLM,
                                          model_version=model_version))
    sources_json = [{"endpoint": e, "template": t, "endpoint_name": endpoints[e].name, "model": endpoints[e].model,
                     "template_name": templates[t].name, "template_version": templates[t].version,
                     "template_kind": templates[t].kind} for e, t in pairs]
    with transaction.atomic():
        # One synthetic label set at a time: the export aggregates a project's llm annotations together.
        Annotation.objects.filter(project=project, origin=Origin.LLM,
                                  model_version__startswith=MODEL_VERSION_PREFIX).delete()
        LLMCombination.objects.filter(project=project).delete()
        combination = LLMCombination.objects.create(
            project=project, method=method, sources=sources_json, model_version=model_version, created_by=user,
            counts={"items": len(answers), "labelled": len(annotations), "no_label": len(answers) - len(annotations)})
        Annotation.objects.bulk_create(annotations, batch_size=2000)
    return combination

