"""The item browser's indexes (annotation/browse/README.md) and a reviewer's answer to a flag.

Text search (``UPPER(text) LIKE``) gets no index: a trigram GIN index would cost every imported utterance tens of
microseconds (measured, see the README), most of the import's budget. PostgreSQL gets statistics on ``UPPER(text)``
instead (14+): they cost ANALYZE a sample, not each insert, and let the planner see that a common word matches many
rows, so it walks the items in id order and stops after a page instead of matching the whole corpus first.
"""

from django.conf import settings
from django.db import migrations, models

STATISTICS_SQL = "CREATE STATISTICS IF NOT EXISTS utterance_text_upper_stats ON (UPPER(text)) FROM corpora_utterance"


def _text_statistics(apps, schema_editor):  # type: ignore[no-untyped-def]
    connection = schema_editor.connection
    if connection.vendor == "postgresql" and connection.pg_version >= 140000:
        schema_editor.execute(STATISTICS_SQL)


def _drop_text_statistics(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP STATISTICS IF EXISTS utterance_text_upper_stats")


class Migration(migrations.Migration):
    dependencies = [
        ("annotation", "0012_label_studio_annotation_source"),
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
        migrations.RunPython(_text_statistics, _drop_text_statistics),
    ]
