"""Native range partitioning of PostgreSQL time-series tables, managed with pg_partman (schema `partman`).

Why pg_partman and not django-postgres-extra: it is Debian's `postgresql-15-partman` (Crunchy Data, packaged
for every PostgreSQL release), it works under Django's own PostgreSQL backend and connection pool (the
alternative replaces the database ENGINE), and it keeps its configuration in the database, where any
operator can inspect it (`SELECT * FROM partman.part_config`). We use it to create partitions ahead of time
(`run_maintenance`); dropping old partitions is ours, because a partition holding an open case's rows must
stay (streams/retention.py), which pg_partman's own retention cannot know.

Django keeps `id` as the model's primary key; at the database level the key is (id, partition column),
because PostgreSQL requires the partition key in every unique index. `id` stays unique: it comes from one
sequence. Nothing may point a foreign key into a partitioned table (none does).

Only called on PostgreSQL (migrations check the vendor).
"""

from datetime import datetime, timedelta, timezone as dt_timezone

PARTMAN_SCHEMA = "partman"


def ensure_partman(cursor):
    """pg_partman in its own schema. CREATE EXTENSION needs a superuser (or the database owner on a trusted
    setup); a deployment whose application role cannot, has a superuser run these two statements once."""
    cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {PARTMAN_SCHEMA}")
    cursor.execute(f"CREATE EXTENSION IF NOT EXISTS pg_partman SCHEMA {PARTMAN_SCHEMA}")


def is_partitioned(cursor, table):
    cursor.execute("SELECT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass(%s))", [table])
    return cursor.fetchone()[0]


def _definitions(cursor, table):
    """(constraints, indexes) of `table`: constraint (name, type, definition) and index (name, definition) that
    do not back a constraint."""
    cursor.execute("SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
                   "WHERE conrelid = %s::regclass AND contype IN ('p', 'u', 'f', 'c') ORDER BY conname", [table])
    constraints = cursor.fetchall()
    cursor.execute("SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
                   "WHERE x.indrelid = %s::regclass AND NOT EXISTS "
                   "(SELECT 1 FROM pg_constraint c WHERE c.conindid = i.oid AND c.conrelid = x.indrelid) "
                   "ORDER BY i.relname", [table])
    return constraints, cursor.fetchall()


def partition_table(cursor, table, column, interval, premake):
    """Turn plain `table` into one partitioned by range on `column` (pg_partman, `interval` e.g. "1 day"),
    keeping its rows, ids, constraints and index names. Partitions cover its oldest row up to `premake`
    intervals ahead; a default partition catches anything outside them."""
    if is_partitioned(cursor, table):
        return
    old = f"{table}_unpartitioned"
    constraints, indexes = _definitions(cursor, table)
    cursor.execute(f'SELECT coalesce(max(id), 0), min("{column}") FROM "{table}"')
    max_id, oldest = cursor.fetchone()
    cursor.execute(f'ALTER TABLE "{table}" RENAME TO "{old}"')
    for name, _kind, _definition in constraints:
        cursor.execute(f'ALTER TABLE "{old}" DROP CONSTRAINT "{name}"')
    for name, _definition in indexes:
        cursor.execute(f'DROP INDEX "{name}"')
    # PostgreSQL 15 has no identity columns on partitioned tables: a sequence owned by the column instead.
    cursor.execute(f'ALTER TABLE "{old}" ALTER COLUMN id DROP IDENTITY IF EXISTS')
    cursor.execute(f'CREATE TABLE "{table}" (LIKE "{old}" INCLUDING DEFAULTS INCLUDING STORAGE) '
                   f'PARTITION BY RANGE ("{column}")')
    cursor.execute(f'CREATE SEQUENCE "{table}_id_seq" OWNED BY "{table}".id')
    cursor.execute(f"ALTER TABLE \"{table}\" ALTER COLUMN id SET DEFAULT nextval('\"{table}_id_seq\"')")
    cursor.execute(f"SELECT setval('\"{table}_id_seq\"', %s, %s)", [max(max_id, 1), max_id > 0])
    for name, kind, definition in constraints:
        if kind == "p":
            definition = f'PRIMARY KEY (id, "{column}")'
        cursor.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}')
    for name, definition in indexes:
        cursor.execute(definition.replace(f" ON public.{old} ", f" ON public.{table} "))
    start = (oldest or datetime.now(dt_timezone.utc)) - timedelta(days=1)
    # pg_partman 4 (Debian 12) calls native partitioning "native", 5 (PGDG, newer Debian) "range".
    cursor.execute("SELECT split_part(extversion, '.', 1)::int FROM pg_extension WHERE extname = 'pg_partman'")
    kind = "native" if cursor.fetchone()[0] < 5 else "range"
    cursor.execute(f"SELECT {PARTMAN_SCHEMA}.create_parent(p_parent_table := %s, p_control := %s, "
                   "p_type := %s, p_interval := %s, p_premake := %s, p_start_partition := %s, p_jobmon := false)",
                   [f"public.{table}", column, kind, interval, premake, start.isoformat()])
    cursor.execute(f'INSERT INTO "{table}" SELECT * FROM "{old}"')
    cursor.execute(f'DROP TABLE "{old}"')


def unpartition_table(cursor, table):
    """The reverse of partition_table: a plain table with an identity `id` primary key, rows kept."""
    if not is_partitioned(cursor, table):
        return
    old = f"{table}_partitioned"
    constraints, indexes = _definitions(cursor, table)
    cursor.execute(f'SELECT coalesce(max(id), 0) FROM "{table}"')
    max_id = cursor.fetchone()[0]
    cursor.execute(f"DELETE FROM {PARTMAN_SCHEMA}.part_config WHERE parent_table = %s", [f"public.{table}"])
    cursor.execute(f'ALTER TABLE "{table}" RENAME TO "{old}"')
    for name, _kind, _definition in constraints:
        cursor.execute(f'ALTER TABLE "{old}" DROP CONSTRAINT "{name}"')
    for name, _definition in indexes:
        cursor.execute(f'DROP INDEX "{name}"')
    cursor.execute(f'ALTER TABLE "{old}" ALTER COLUMN id DROP DEFAULT')
    cursor.execute(f'ALTER SEQUENCE "{table}_id_seq" RENAME TO "{old}_id_seq"')
    cursor.execute(f'CREATE TABLE "{table}" (LIKE "{old}" INCLUDING DEFAULTS INCLUDING STORAGE)')
    cursor.execute(f'ALTER TABLE "{table}" ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY')
    cursor.execute(f'INSERT INTO "{table}" SELECT * FROM "{old}"')
    cursor.execute(f"SELECT setval(pg_get_serial_sequence(%s, 'id'), %s, %s)", [table, max(max_id, 1), max_id > 0])
    for name, kind, definition in constraints:
        if kind == "p":
            definition = "PRIMARY KEY (id)"
        cursor.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}')
    for name, definition in indexes:
        cursor.execute(definition.replace(f" ON ONLY public.{old} ", f" ON public.{table} ")
                       .replace(f" ON public.{old} ", f" ON public.{table} "))
    cursor.execute(f'DROP TABLE "{old}" CASCADE')
    cursor.execute(f'DROP TABLE IF EXISTS {PARTMAN_SCHEMA}."template_public_{table}"')


def run_maintenance(cursor, table):
    """Create the partitions due ahead of time for `table` (pg_partman; its retention stays off)."""
    cursor.execute(f"SELECT {PARTMAN_SCHEMA}.run_maintenance(p_parent_table := %s, p_analyze := false, "
                   "p_jobmon := false)", [f"public.{table}"])


def create_partitions_covering(cursor, table, start, end):
    """Make sure partitions exist from `start` to `end` (e.g. to load history into a fresh database)."""
    cursor.execute(f"SELECT partition_interval FROM {PARTMAN_SCHEMA}.part_config WHERE parent_table = %s",
                   [f"public.{table}"])
    step = cursor.fetchone()[0]
    # Partitions start on whole days (months): pg_partman takes the given instants as partition starts.
    cursor.execute("SELECT array_agg(t) FROM generate_series(date_trunc(CASE WHEN %s::interval >= '28 days' "
                   "THEN 'month' ELSE 'day' END, %s::timestamptz), %s::timestamptz, %s::interval) t",
                   [step, start, end, step])
    cursor.execute(f"SELECT {PARTMAN_SCHEMA}.create_partition_time(%s, %s)",
                   [f"public.{table}", cursor.fetchone()[0]])


def partitions(cursor, table):
    """[(child table name, lower bound, upper bound)] oldest first, without the default partition."""
    cursor.execute(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = %s::regclass", [table])
    found = []
    for name, bound in cursor.fetchall():
        if bound == "DEFAULT":
            continue
        # FOR VALUES FROM ('2026-12-04 00:00:00+08') TO ('2026-12-05 00:00:00+08')
        low, high = (part.split("')")[0] for part in bound.split("('")[1:3])
        cursor.execute("SELECT %s::timestamptz, %s::timestamptz", [low, high])
        lower, upper = cursor.fetchone()
        found.append((name, lower, upper))
    return sorted(found, key=lambda p: p[1])


def default_partition(table):
    return f"{table}_default"
