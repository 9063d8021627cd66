"""Trigram indexes so free-text icontains over the case record is fast, Chinese included.

PostgreSQL only (pg_trgm); on SQLite icontains simply scans.
"""

from django.db import migrations

FIELDS = ("title", "cause", "handling", "outcome")


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for field in FIELDS:
        # Matches Django's icontains SQL: UPPER("col"::text) LIKE UPPER(%s).
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS incident_{field}_trgm ON incidents_incident '
            f'USING gin ((UPPER("{field}"::text)) gin_trgm_ops)'
        )


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for field in FIELDS:
        schema_editor.execute(f"DROP INDEX IF EXISTS incident_{field}_trgm")


class Migration(migrations.Migration):
    dependencies = [("incidents", "0003_seed_types_and_runbooks")]
    operations = [migrations.RunPython(forwards, backwards)]
