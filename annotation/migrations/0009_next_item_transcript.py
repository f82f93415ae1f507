"""The annotate screen's item names where an automatic transcript came from: ``sentio_next_item`` (0007) adds the
utterance's transcript source, model, confidence and ASR metadata to its payload, as ``item_view_get`` does."""

import importlib

from django.db import migrations

_BASE = importlib.import_module("annotation.migrations.0007_gold_suggestions_from_project_models")
_UTTERANCE_FIELDS = "'id', u.id, 'text', u.text, 'audio', u.audio, 'audio_duration_s', u.audio_duration_s,"
_WITH_TRANSCRIPT = (
    _UTTERANCE_FIELDS
    + "\n        'transcript_source', u.transcript_source, 'transcript_model', u.transcript_model,"
    + "\n        'transcript_confidence', u.transcript_confidence, 'asr', u.metadata -> 'asr',"
)
assert _BASE.FUNCTIONS_SQL.count(_UTTERANCE_FIELDS) == 1
FUNCTIONS_SQL = _BASE.FUNCTIONS_SQL.replace(_UTTERANCE_FIELDS, _WITH_TRANSCRIPT)


def _create(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FUNCTIONS_SQL)


def _restore(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(_BASE.FUNCTIONS_SQL)


class Migration(migrations.Migration):
    dependencies = [("annotation", "0008_model_version_heldout")]

    operations = [migrations.RunPython(_create, _restore)]
