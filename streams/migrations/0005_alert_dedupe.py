"""One open alert per room and kind: repeats update it (count, last_seen_at) instead of adding rows."""

import django.utils.timezone
from django.db import migrations, models
from django.db.models import Count, F


def fold_open_duplicates(apps, schema_editor):
    """Before the constraint: keep the newest open alert of each room and kind, count the others into it
    and close them (acknowledged without a person: they were repeats)."""
    Alert = apps.get_model("streams", "Alert")
    Alert.objects.update(last_seen_at=F("raised_at"))
    groups = (Alert.objects.filter(acknowledged_at__isnull=True).values("room_id", "kind")
              .annotate(n=Count("id")).filter(n__gt=1))
    now = django.utils.timezone.now()
    for group in groups:
        rows = list(Alert.objects.filter(acknowledged_at__isnull=True, room_id=group["room_id"], kind=group["kind"])
                    .order_by("-raised_at", "-id"))
        keep, repeats = rows[0], rows[1:]
        keep.count = sum(row.count for row in rows)
        keep.save(update_fields=["count"])
        Alert.objects.filter(pk__in=[row.pk for row in repeats]).update(acknowledged_at=now)


class Migration(migrations.Migration):
    dependencies = [("streams", "0004_default_announcement_templates")]

    operations = [
        migrations.AddField(model_name="alert", name="count",
                            field=models.PositiveIntegerField(default=1, verbose_name="次数")),
        migrations.AddField(model_name="alert", name="last_seen_at",
                            field=models.DateTimeField(default=django.utils.timezone.now, verbose_name="最近一次")),
        migrations.RunPython(fold_open_duplicates, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="alert",
            constraint=models.UniqueConstraint(condition=models.Q(acknowledged_at__isnull=True),
                                               fields=("room", "kind"), name="one_open_alert_per_room_and_kind"),
        ),
    ]
