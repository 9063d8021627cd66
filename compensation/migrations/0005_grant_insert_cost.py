import django.db.models.deletion
from django.db import migrations, models


def drop_code_like_index(apps, schema_editor):
    """Django adds a varchar_pattern_ops ("_like") index to a CharField primary key on PostgreSQL; codes
    are only ever looked up by equality, so it is pure insert cost."""
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'compensation_grant' "
                       "AND indexname LIKE %s", ["compensation_grant_code_%_like"])
        for (name,) in cursor.fetchall():
            cursor.execute(f'DROP INDEX IF EXISTS "{name}"')


class Migration(migrations.Migration):

    dependencies = [
        ("compensation", "0004_default_budget"),
    ]

    operations = [
        # The per-row deferred FK check (and its lock on one hot campaign row) was about half the insert
        # cost; a batch holds a shared lock on the campaign row while inserting, so it cannot vanish.
        migrations.AlterField(
            model_name="grant",
            name="campaign",
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT,
                                    related_name="grants", to="compensation.campaign"),
        ),
        migrations.RunPython(drop_code_like_index, migrations.RunPython.noop),
    ]
