"""Stored generated columns with the Beijing-time hour, ISO weekday and date of detection.

Analytics group by these instead of converting 100k timestamps per request. PostgreSQL only,
and outside Django's model state: the database computes them (also for COPY and corrections).
"""

from django.db import migrations

LOCAL = "timezone('Asia/Shanghai', detected_at)"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        "ALTER TABLE incidents_incident "
        f"ADD COLUMN IF NOT EXISTS detected_local_hour smallint GENERATED ALWAYS AS (EXTRACT(HOUR FROM {LOCAL})::smallint) STORED, "
        f"ADD COLUMN IF NOT EXISTS detected_local_dow smallint GENERATED ALWAYS AS (EXTRACT(ISODOW FROM {LOCAL})::smallint) STORED, "
        f"ADD COLUMN IF NOT EXISTS detected_local_date date GENERATED ALWAYS AS (({LOCAL})::date) STORED"
    )


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("ALTER TABLE incidents_incident DROP COLUMN IF EXISTS detected_local_hour, "
                          "DROP COLUMN IF EXISTS detected_local_dow, DROP COLUMN IF EXISTS detected_local_date")


class Migration(migrations.Migration):
    dependencies = [("incidents", "0004_trigram_search")]
    operations = [migrations.RunPython(forwards, backwards)]
