"""Database constraints hold the invariants even when a service is bypassed."""

import pytest
from django.db import IntegrityError, transaction

from annotation.models import Annotation, Origin
from annotation.schema import SchemaError
from annotation.services import annotation_create, label_schema_version_create, project_create
from corpora.languages import UnknownLanguageError, language_get_or_create
from corpora.models import Corpus, TextDirection, Utterance


@pytest.fixture
def corpus(db):
    return Corpus.objects.create(name="Tiny", slug="tiny", license="CC-BY-4.0")


@pytest.fixture
def utterance(corpus):
    return Utterance.objects.create(corpus=corpus, language=language_get_or_create("mr"), text="नमस्कार", content_hash="a" * 32)


@pytest.mark.django_db
@pytest.mark.parametrize(("code", "canonical", "script", "direction"), [
    ("mr", "mr", "Deva", TextDirection.LTR),
    ("ar-EG", "ar-EG", "Arab", TextDirection.RTL),
    ("he", "he", "Hebr", TextDirection.RTL),
    ("ur", "ur", "Arab", TextDirection.RTL),
    ("en_GB", "en-GB", "Latn", TextDirection.LTR),
    ("hi-Latn", "hi-Latn", "Latn", TextDirection.LTR),
])
def test_languages_resolve_with_script_and_direction(code, canonical, script, direction):
    language = language_get_or_create(code)
    assert (language.code, language.script, language.direction) == (canonical, script, direction)


@pytest.mark.django_db
@pytest.mark.parametrize("code", ["", "xx", "foo-bar", "und", "english"])
def test_unknown_language_codes_are_refused(code):
    with pytest.raises(UnknownLanguageError):
        language_get_or_create(code)


def test_same_content_twice_in_a_corpus_is_refused(utterance):
    with pytest.raises(IntegrityError), transaction.atomic():
        Utterance.objects.create(corpus=utterance.corpus, language=utterance.language, text="x", content_hash=utterance.content_hash)


def test_utterance_needs_text_or_audio(corpus):
    with pytest.raises(IntegrityError), transaction.atomic():
        Utterance.objects.create(corpus=corpus, language=language_get_or_create("en"), text="", content_hash="b" * 32)


def test_annotation_is_validated_against_its_schema(utterance, emotion_schema, annotator):
    with pytest.raises(SchemaError) as excinfo:
        annotation_create(utterance=utterance, schema_version=emotion_schema, value={"emotion": "bored"}, annotator=annotator)
    assert "emotion" in excinfo.value.errors
    with pytest.raises(SchemaError):
        annotation_create(utterance=utterance, schema_version=emotion_schema, value={"emotion": "joy"}, annotator=annotator, perspective="listener")
    made = annotation_create(utterance=utterance, schema_version=emotion_schema, value={"emotion": "joy"}, annotator=annotator, perspective="reader")
    assert made.origin == Origin.HUMAN and made.value == {"emotion": "joy"}


def test_machine_annotation_needs_model_version(utterance, emotion_schema):
    with pytest.raises(IntegrityError), transaction.atomic():
        Annotation.objects.create(utterance=utterance, schema_version=emotion_schema, value={"emotion": "joy"}, origin=Origin.LLM)


def test_one_annotation_per_annotator_and_item_in_a_project(utterance, emotion_schema, lead, annotator):
    project = project_create(name="P", corpus=utterance.corpus, schema_version=emotion_schema, created_by=lead, overlap=3)
    annotation_create(utterance=utterance, schema_version=emotion_schema, value={"emotion": "joy"}, annotator=annotator, project=project)
    with pytest.raises(IntegrityError), transaction.atomic():
        annotation_create(utterance=utterance, schema_version=emotion_schema, value={"emotion": "fear"}, annotator=annotator, project=project)
    assert project.memberships.get().role == "lead"


def test_schema_versions_count_up(emotion_schema):
    v2 = label_schema_version_create(schema=emotion_schema.schema, questions=[{"key": "emotion", "type": "single_choice", "labels": ["joy"]}])
    assert (emotion_schema.version, v2.version) == (1, 2)
