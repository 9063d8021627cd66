from django.db import migrations


def create_default_budget(apps, schema_editor):
    """One budget to start with, so a fresh install can compensate at once (edit it in the admin)."""
    Budget = apps.get_model("compensation", "Budget")
    if not Budget.objects.exists():
        Budget.objects.create(name="直播事故补偿预算", total_fen=5_000_000, per_viewer_cap_fen=5_000,
                              approval_threshold_fen=None)


class Migration(migrations.Migration):
    dependencies = [("compensation", "0003_recipient_without_fk_constraints")]

    operations = [migrations.RunPython(create_default_budget, migrations.RunPython.noop)]
