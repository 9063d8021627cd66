"""PostgreSQL: health samples partitioned by day, minute aggregates by month (pg_partman), rows kept.

Dropping old samples is then dropping a partition (streams/retention.py). SQLite keeps plain tables and prunes
with bounded batched deletes. Converting copies the existing rows once: on a large installation run it in a
quiet hour (about 10 s per million samples on a 2-core host).
"""

from django.conf import settings
from django.db import migrations

from streams import partitions


def forward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        partitions.ensure_partman(cursor)
        partitions.partition_table(cursor, "streams_healthsample", "at", "1 day",
                                   settings.RETENTION_PARTITION_PREMAKE_DAYS)
        partitions.partition_table(cursor, "streams_healthminute", "minute", "1 month", 2)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        partitions.unpartition_table(cursor, "streams_healthminute")
        partitions.unpartition_table(cursor, "streams_healthsample")


class Migration(migrations.Migration):
    dependencies = [("streams", "0011_retention_models")]
    operations = [migrations.RunPython(forward, backward)]
