"""The item browser's indexes (annotation/browse/README.md) and a reviewer's answer to a flag.

Text search is ``utterance.text__icontains``, which Django writes as ``UPPER(text) LIKE UPPER(%s)`` on PostgreSQL: a
trigram GIN index on that very expression lets it use an index instead of reading every utterance. SQLite has no
trigram index; there the search scans (the embedded default holds small corpora).
"""

from django.conf import settings
from django.db import migrations, models


TRIGRAM_SQL = """
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX IF NOT EXISTS utterance_text_upper_trgm ON corpora_utterance USING gin (UPPER(text) gin_trgm_ops);
"""


def _trigram_index(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(TRIGRAM_SQL)


def _drop_trigram_index(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS utterance_text_upper_trgm;")


class Migration(migrations.Migration):
    dependencies = [
        ("annotation", "0005_distribution_sql_functions"),
        (
            "corpora",
            "0002_alter_utterance_conversation_alter_utterance_corpus_and_more",
        ),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="flag",
            name="dismissed",
            field=models.BooleanField(default=False, help_text="Closed without a change: the item was fine"),
        ),
        migrations.AddField(
            model_name="flag",
            name="resolution_note",
            field=models.TextField(
                blank=True,
                default="",
                help_text="The reviewer's answer",
                max_length=2000,
            ),
        ),
        migrations.AddIndex(
            model_name="projectitem",
            index=models.Index(fields=["project", "id"], name="project_item_browse"),
        ),
        migrations.AddIndex(
            model_name="projectitem",
            index=models.Index(
                fields=["project", "language", "id"],
                name="project_item_browse_language",
            ),
        ),
        migrations.AddIndex(
            model_name="projectitem",
            index=models.Index(
                fields=["project", "-disagreement", "-id"],
                name="project_item_browse_disagree",
            ),
        ),
        migrations.AddIndex(
            model_name="projectitem",
            index=models.Index(
                condition=models.Q(("uncertainty__isnull", False)),
                fields=["project", "-uncertainty", "-id"],
                name="project_item_browse_uncertain",
            ),
        ),
        migrations.AddConstraint(
            model_name="flag",
            constraint=models.CheckConstraint(
                condition=models.Q(("dismissed", False), ("resolved", True), _connector="OR"),
                name="flag_dismissed_is_closed",
            ),
        ),
        migrations.RunPython(_trigram_index, _drop_trigram_index),
    ]
