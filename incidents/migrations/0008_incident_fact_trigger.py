"""PostgreSQL trigger keeping incidents_incidentfact in step with incidents_incident (and backfill).

AFTER INSERT OR UPDATE, so the stored generated local-time columns are already computed; the copy
commits or rolls back with the incident write itself. On SQLite nothing happens (analytics there
are computed in Python).
"""

from django.db import migrations

COLUMNS = ("incident_id, room_id, incident_type_id, severity, counted, detected_at, local_hour, local_dow, week, "
           "mtta_s, mttm_s, mttr_s, announce_s, downtime_s")


def values(row):
    return (f"{row}.id, {row}.room_id, {row}.incident_type_id, {row}.severity, "
            f"NOT {row}.is_drill AND {row}.status <> 'cancelled', {row}.detected_at, {row}.detected_local_hour, "
            f"{row}.detected_local_dow, {row}.detected_local_date - ({row}.detected_local_dow - 1), "
            f"date_part('epoch', {row}.acknowledged_at - {row}.detected_at), "
            f"date_part('epoch', {row}.mitigated_at - {row}.detected_at), "
            f"date_part('epoch', {row}.resolved_at - {row}.detected_at), "
            f"date_part('epoch', {row}.first_announcement_at - {row}.detected_at), "
            f"date_part('epoch', COALESCE({row}.mitigated_at, {row}.resolved_at) - {row}.detected_at)")


UPDATE_SET = ", ".join(f"{c} = EXCLUDED.{c}" for c in COLUMNS.split(", ")[1:])


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"""
        CREATE OR REPLACE FUNCTION incidents_sync_fact() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO incidents_incidentfact ({COLUMNS}) VALUES ({values("NEW")})
            ON CONFLICT (incident_id) DO UPDATE SET {UPDATE_SET};
            RETURN NULL;
        END $$
    """)
    schema_editor.execute("DROP TRIGGER IF EXISTS incidents_fact_sync ON incidents_incident")
    schema_editor.execute("CREATE TRIGGER incidents_fact_sync AFTER INSERT OR UPDATE ON incidents_incident "
                          "FOR EACH ROW EXECUTE FUNCTION incidents_sync_fact()")
    schema_editor.execute(f"INSERT INTO incidents_incidentfact ({COLUMNS}) SELECT {values('i')} "
                          f"FROM incidents_incident i ON CONFLICT (incident_id) DO NOTHING")


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP TRIGGER IF EXISTS incidents_fact_sync ON incidents_incident")
    schema_editor.execute("DROP FUNCTION IF EXISTS incidents_sync_fact()")


class Migration(migrations.Migration):
    dependencies = [("incidents", "0007_incident_fact")]
    operations = [migrations.RunPython(forwards, backwards)]
