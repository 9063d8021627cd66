"""Seed the incident types with realistic version-1 SOP runbooks (per role, ordered)."""

from django.db import migrations


def seed(apps, schema_editor):
    from incidents.seed import seed_types

    seed_types((apps.get_model("incidents", "IncidentType"), apps.get_model("incidents", "Runbook"),
                apps.get_model("incidents", "RunbookStep")))


class Migration(migrations.Migration):
    dependencies = [("incidents", "0002_lifecycle_runbooks_timeline")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
