"""Data-lifecycle benchmark: a month of health samples, presence and chat on PostgreSQL, partitioned vs. not.

    .venv/bin/python bench/retention_bench.py                      # 20 million samples (31 days x 25 rooms)
    .venv/bin/python bench/retention_bench.py --samples 2000000    # a quick run

It creates its own database (`--db`, dropped first and at the end unless --keep), migrates it (health samples
partitioned by day with pg_partman), and in one run:
 1. writes the history with COPY: 10 s samples of 3 lines (primary, backup, program) per room, as many days as
    --samples needs, ending now; presence (--shows shows, --sessions sessions each) and chat (--chat each);
 2. copies the samples into an unpartitioned table with the product's former indexes: the baseline;
 3. measures p50/p95 of the live reads on both: a line's newest sample, a line's last 15 minutes (the graph),
    a room's samples since 15 minutes (the wall), and the presence of an incident window (new index vs. the
    former query), the chat rate of a room;
 4. runs the lifecycle: the first downsampling of the whole history (catch-up), then the nightly pass
    (`streams.retention.nightly`: partitions, downsampling, pruning to 14 days by dropping partitions), one
    incident left open 20 days ago to show a held partition; the baseline prunes the same rows with batched
    DELETEs (RETENTION_BATCH_ROWS), then VACUUM; disk before/after for both.
"""

import argparse
import io
import os
import random
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone as dt_timezone
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
LINES = ("primary", "backup", "program")
PER_DAY = 8640  # one sample per 10 s


def pct(values, p):
    values = sorted(values)
    k = (len(values) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def timed(fn, n, warmup=5):
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    return {"p50": statistics.median(samples), "p95": pct(samples, 95), "max": max(samples), "n": n}


def size(cursor, table):
    """Bytes of a table with its indexes and, if partitioned, all its partitions."""
    cursor.execute("SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = %s::regclass) "
                   "THEN (SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree(%s::regclass)) "
                   "ELSE pg_total_relation_size(%s::regclass) END", [table, table, table])
    return int(cursor.fetchone()[0])


def gb(n):
    return f"{n / 1e9:.2f} GB"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--db", default="h_ret_bench")
    parser.add_argument("--samples", type=int, default=20_000_000)
    parser.add_argument("--rooms", type=int, default=25)
    parser.add_argument("--shows", type=int, default=400)
    parser.add_argument("--sessions", type=int, default=2000, help="viewer sessions per show")
    parser.add_argument("--chat", type=int, default=1000, help="chat messages per show")
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    with psycopg.connect(f"{args.server}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{args.db}"')
    os.environ["DATABASE_URL"] = f"{args.server}/{args.db}"
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlroom.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.db.models import Q
    from django.utils import timezone

    from incidents.models import Incident, IncidentType
    from streams import partitions, retention, selectors
    from streams.models import LiveRoom, ViewerSession

    try:
        call_command("migrate", verbosity=0)
        return run(args, settings, connection, Q, timezone, Incident, IncidentType, partitions, retention,
                   selectors, LiveRoom, ViewerSession)
    finally:
        connection.close()
        if not args.keep:
            with psycopg.connect(f"{args.server}/postgres", autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)')


def run(args, settings, connection, Q, timezone, Incident, IncidentType, partitions, retention, selectors,
        LiveRoom, ViewerSession):
    rng = random.Random(14)
    now = timezone.now().replace(microsecond=0)
    days = -(-args.samples // (args.rooms * len(LINES) * PER_DAY))
    start = (now - timedelta(days=days)).replace(second=now.second - now.second % 10)
    rooms = [LiveRoom.objects.create(name=f"直播间 {i}", slug=f"bench-{i:03d}", merchant=f"商家 {i % 7}")
             for i in range(args.rooms)]
    room_ids = [r.pk for r in rooms]
    print(f"history: {days} days x {args.rooms} rooms x {len(LINES)} lines = "
          f"{days * args.rooms * len(LINES) * PER_DAY:,} samples; {args.shows} shows")

    with connection.cursor() as cursor:
        partitions.create_partitions_covering(cursor, "streams_healthsample", start, now)
        partitions.create_partitions_covering(cursor, "streams_healthminute", start, now)
    raw = connection.connection  # psycopg connection under Django's
    t = time.perf_counter()
    columns = ("room_id, line_role, at, connected, bitrate_kbps, fps, loss_pct, jitter_ms, frozen, black, silent, "
               "audio_dbfs, detail")
    with raw.cursor() as cur:
        with cur.copy(f"COPY streams_healthsample ({columns}) FROM STDIN") as copy:
            for day in range(days):
                day_start = start + timedelta(days=day)
                for room_id in room_ids:
                    for line in LINES:
                        buf = io.StringIO()
                        base = day_start.timestamp()
                        for i in range(PER_DAY):
                            at = base + i * 10
                            if at > now.timestamp():
                                break
                            kbps = 2500 + (i * 37 + room_id * 11) % 400
                            buf.write(f"{room_id}\t{line}\t{datetime.fromtimestamp(at, dt_timezone.utc).isoformat()}"
                                      f"\tt\t{kbps}\t{24 + i % 2}\t{(i % 7) * 0.1:.1f}\t{5 + i % 9}\tf\tf\tf\t-20\t{{}}\n")
                        copy.write(buf.getvalue())
    raw.commit()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM streams_healthsample")
        n_samples = cursor.fetchone()[0]
    copy_s = time.perf_counter() - t
    print(f"COPY {n_samples:,} samples into the partitioned table: {copy_s:.0f} s")

    # Presence and chat: shows of 3 h spread over the history; 50,000 viewers.
    t = time.perf_counter()
    shows = []
    for s in range(args.shows):
        room_id = room_ids[s % len(room_ids)]
        show_start = start + timedelta(seconds=rng.randrange(int((now - start).total_seconds()) - 4 * 3600))
        shows.append((room_id, show_start, show_start + timedelta(hours=3)))
    with raw.cursor() as cur:
        with cur.copy("COPY streams_viewer (device_id, nickname, created_at, platform_merchant, last_user_agent) "
                      "FROM STDIN") as copy:
            for v in range(50_000):
                copy.write_row((f"dev-{v:06d}", f"观众{v}", start, "", ""))
        cur.execute("SELECT min(id) FROM streams_viewer")
        first_viewer = cur.fetchone()[0]
        with cur.copy("COPY streams_viewersession (room_id, viewer_id, joined_at, last_seen_at, left_at) "
                      "FROM STDIN") as copy:
            for room_id, show_start, show_end in shows:
                for _ in range(args.sessions):
                    joined = show_start + timedelta(seconds=rng.randrange(3 * 3600))
                    left = min(joined + timedelta(seconds=rng.randrange(60, 5400)), show_end)
                    copy.write_row((room_id, first_viewer + rng.randrange(50_000), joined, left, left))
        with cur.copy("COPY streams_chatmessage (room_id, author_name, is_assistant, text, created_at) "
                      "FROM STDIN") as copy:
            for room_id, show_start, _end in shows:
                for _ in range(args.chat):
                    copy.write_row((room_id, "观众", False, "主播好!这个还有货吗",
                                    show_start + timedelta(seconds=rng.randrange(3 * 3600))))
    raw.commit()
    print(f"COPY presence ({args.shows * args.sessions:,} sessions) and chat ({args.shows * args.chat:,}): "
          f"{time.perf_counter() - t:.0f} s")

    # The baseline: the same samples in an unpartitioned table with the former indexes (+ the new (room, at)).
    t = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE hs_plain (LIKE streams_healthsample INCLUDING DEFAULTS)")
        cursor.execute("INSERT INTO hs_plain SELECT * FROM streams_healthsample")
        cursor.execute("ALTER TABLE hs_plain ADD PRIMARY KEY (id)")
        cursor.execute("CREATE INDEX ON hs_plain (room_id, line_role, at DESC)")
        cursor.execute("CREATE INDEX ON hs_plain (at)")
        cursor.execute("CREATE INDEX ON hs_plain (room_id)")
        cursor.execute("CREATE INDEX ON hs_plain (room_id, at)")
        cursor.execute("VACUUM ANALYZE hs_plain")
        cursor.execute("VACUUM ANALYZE streams_healthsample")
        cursor.execute("ANALYZE streams_viewersession")
        cursor.execute("ANALYZE streams_chatmessage")
    print(f"baseline table filled and indexed: {time.perf_counter() - t:.0f} s")

    # --- Live reads ------------------------------------------------------------------------------------
    def pick():
        return rng.choice(rooms), rng.choice(LINES)

    def sql_of(queryset):
        return queryset.query.sql_with_params()

    def run_sql(sql, params, table=None):
        if table:
            sql = sql.replace('"streams_healthsample"', f'"{table}"')
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    from streams.models import ChatMessage, HealthSample

    def _newest_qs(room, line):
        """selectors.newest_sample's query: the last day first."""
        at = timezone.now()
        return HealthSample.objects.filter(room=room, line_role=line, at__gte=at - timedelta(days=1),
                                           at__lte=at + timedelta(minutes=1)).order_by("-at")[:1]

    def _newest_unbounded_qs(room, line):
        return HealthSample.objects.filter(room=room, line_role=line).order_by("-at")[:1]

    def graph(table=None):
        room, line = pick()
        return run_sql(*sql_of(selectors.line_samples_since(room, line, timezone.now() - timedelta(minutes=15))), table)

    def wall(table=None):
        room, _line = pick()
        qs = HealthSample.objects.filter(room=room, at__gte=timezone.now() - timedelta(minutes=15)).order_by("at")
        return run_sql(*sql_of(qs), table)

    held_windows = [(room_id, s + timedelta(minutes=30), s + timedelta(minutes=90)) for room_id, s, _e in shows]

    def presence():
        room_id, s, e = rng.choice(held_windows)
        return list(selectors.viewers_present(LiveRoom(pk=room_id), s, e))

    def presence_former():
        room_id, s, e = rng.choice(held_windows)
        return list(ViewerSession.objects.filter(room_id=room_id, joined_at__lte=e)
                    .filter(Q(left_at__gte=s) | Q(left_at__isnull=True, last_seen_at__gte=s))
                    .values_list("viewer_id", flat=True).distinct())

    latest_shows = {}
    for room_id, s, e in shows:
        if room_id not in latest_shows or s > latest_shows[room_id][0]:
            latest_shows[room_id] = (s, e)

    def presence_latest(former=False):
        room_id = rng.choice(list(latest_shows))
        s, _e = latest_shows[room_id]
        s, e = s + timedelta(minutes=30), s + timedelta(minutes=90)
        if former:
            return list(ViewerSession.objects.filter(room_id=room_id, joined_at__lte=e)
                        .filter(Q(left_at__gte=s) | Q(left_at__isnull=True, last_seen_at__gte=s))
                        .values_list("viewer_id", flat=True).distinct())
        return list(selectors.viewers_present(LiveRoom(pk=room_id), s, e))

    def chat_rate():
        room_id, s, _e = rng.choice(shows)
        return ChatMessage.objects.filter(room_id=room_id, created_at__gte=s + timedelta(minutes=60),
                                          created_at__lt=s + timedelta(minutes=61)).count()

    results = {}
    for name, fn, base in (
        ("newest sample of a line", lambda: run_sql(*sql_of(_newest_qs(*pick()))),
         lambda: run_sql(*sql_of(_newest_qs(*pick())), "hs_plain")),
        ("newest sample of a line, unbounded query", lambda: run_sql(*sql_of(_newest_unbounded_qs(*pick()))),
         lambda: run_sql(*sql_of(_newest_unbounded_qs(*pick())), "hs_plain")),
        ("a line's last 15 minutes (graph)", graph, lambda: graph("hs_plain")),
        ("a room's samples since 15 minutes (wall)", wall, lambda: wall("hs_plain")),
        ("presence in an incident window (1 h, any show)", presence, presence_former),
        ("presence in an incident window (1 h, the room's latest show)", presence_latest,
         lambda: presence_latest(former=True)),
        ("chat rate of a room (1 minute)", chat_rate, None),
    ):
        results[name] = (timed(fn, args.runs), timed(base, args.runs) if base else None)

    # --- Lifecycle --------------------------------------------------------------------------------------
    with connection.cursor() as cursor:
        before = {"partitioned": size(cursor, "streams_healthsample"), "plain": size(cursor, "hs_plain")}
    kind = IncidentType.objects.first()
    Incident.objects.create(room=rooms[0], incident_type=kind, title="bench: open case",
                            status=Incident.Status.RESOLVED, detected_at=now - timedelta(days=20),
                            resolved_at=now - timedelta(days=20) + timedelta(minutes=30))
    t = time.perf_counter()
    catch_up = retention.downsample(now)
    catch_up_s = time.perf_counter() - t
    # The downsampling job normally runs every 10 minutes; the nightly pass then has little of it to do.
    t = time.perf_counter()
    report = retention.nightly(now + timedelta(minutes=10))
    nightly_s = time.perf_counter() - t
    cutoff = now + timedelta(minutes=10) - timedelta(days=settings.RETENTION_HEALTH_RAW_DAYS)
    t = time.perf_counter()
    deleted = 0
    with connection.cursor() as cursor:
        while True:
            cursor.execute("DELETE FROM hs_plain WHERE id IN (SELECT id FROM hs_plain WHERE at < %s LIMIT %s)",
                           [cutoff, settings.RETENTION_BATCH_ROWS])
            if not cursor.rowcount:
                break
            deleted += cursor.rowcount
    plain_delete_s = time.perf_counter() - t
    t = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM hs_plain")
    vacuum_s = time.perf_counter() - t
    with connection.cursor() as cursor:
        after = {"partitioned": size(cursor, "streams_healthsample"), "plain": size(cursor, "hs_plain")}
        cursor.execute("SELECT count(*) FROM streams_healthsample")
        left_partitioned = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM hs_plain")
        left_plain = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM streams_healthminute")
        minutes = cursor.fetchone()[0]
        cursor.execute("ANALYZE streams_healthsample")
        cursor.execute("ANALYZE hs_plain")
    after_reads = {"newest sample of a line": (timed(lambda: run_sql(*sql_of(_newest_qs(*pick()))), args.runs),
                                               timed(lambda: run_sql(*sql_of(_newest_qs(*pick())), "hs_plain"), args.runs)),
                   "a line's last 15 minutes (graph)": (timed(graph, args.runs), timed(lambda: graph("hs_plain"), args.runs))}

    print(f"\n## Live reads ({args.runs} runs each, ms; partitioned table vs. unpartitioned baseline)\n")
    print("| read | p50 | p95 | max | baseline p50 | baseline p95 | baseline max |\n|---|---|---|---|---|---|---|")
    for name, (r, b) in results.items():
        base = f"{b['p50']:.2f} | {b['p95']:.2f} | {b['max']:.1f}" if b else "— | — | —"
        print(f"| {name} | {r['p50']:.2f} | {r['p95']:.2f} | {r['max']:.1f} | {base} |")
    for name, (r, b) in after_reads.items():
        print(f"| {name}, after the retention pass | {r['p50']:.2f} | {r['p95']:.2f} | {r['max']:.1f} | "
              f"{b['p50']:.2f} | {b['p95']:.2f} | {b['max']:.1f} |")
    print("(presence baseline: the former query, `joined_at <= end AND (left_at >= start OR ...)`, "
          "from (room, joined_at); chat rate has no baseline)")
    for name in ("newest sample of a line", "a line's last 15 minutes (graph)"):
        verdict = "meets" if results[name][0]["p95"] <= 10 else "MISSES"
        print(f"target p95 <= 10 ms: {name}: {verdict} ({results[name][0]['p95']:.2f} ms)")

    prune = report["prune"]["streams_healthsample"]
    print("\n## Lifecycle\n")
    print("| | partitioned (pg_partman) | unpartitioned baseline |\n|---|---|---|")
    print(f"| first downsampling of the whole history | {catch_up_s:.0f} s ({catch_up['minutes']:,} line-minutes) | — |")
    print(f"| nightly pass (partitions, downsampling, pruning, archive) | {nightly_s:.1f} s "
          f"({prune['dropped_partitions']} partitions dropped, {prune['held_partitions']} held for an open case) | "
          f"{plain_delete_s:.0f} s batched DELETE of {deleted:,} rows + {vacuum_s:.0f} s VACUUM |")
    print(f"| samples before → after | {n_samples:,} → {left_partitioned:,} | {n_samples:,} → {left_plain:,} |")
    print(f"| disk before → after | {gb(before['partitioned'])} → {gb(after['partitioned'])} | "
          f"{gb(before['plain'])} → {gb(after['plain'])} |")
    print(f"| minute aggregates kept | {minutes:,} rows | — |")
    print(f"\nnightly report: {report}")


if __name__ == "__main__":
    main()
