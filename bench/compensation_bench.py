"""Compensation issuance benchmark: coupons end to end vs a raw COPY of the same rows, same run.

    .venv/bin/python bench/compensation_bench.py [--sizes 100000,1000000] [--workers 2]

End to end = `issue_campaign` (freeze the audience from ViewerSession in SQL, reserve the budget, plan
batches, queue them) -> real Celery worker processes run every batch (codes from `secrets`, COPY into a
temp table, INSERT ... SELECT ... ON CONFLICT DO NOTHING, batch marked done in the same transaction)
-> the campaign is completed (grants counted, budget settled). Measured until status = completed.

Baseline = the same number of grant rows (pre-generated in memory) COPYed straight into the same
compensation_grant table (same indexes and foreign keys), not idempotent.

Uses its own database (default postgres://postgres@127.0.0.1:5432/cr_comp_bench, created if missing) and
REDIS_URL (default redis://127.0.0.1:6379/4; Celery's queue there is emptied first).
"""

import argparse
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cr_comp_bench")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/4")
os.environ.setdefault("CHANNEL_LAYER_PREFIX", "cr_comp_bench")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlroom.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")


def ensure_database():
    import psycopg
    from urllib.parse import urlparse

    url = urlparse(os.environ["DATABASE_URL"])
    name = url.path.lstrip("/")
    admin = f"postgresql://{url.username or 'postgres'}@{url.hostname}:{url.port or 5432}/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


ensure_database()

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import Group, User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from compensation import services  # noqa: E402
from compensation.models import Budget, Campaign  # noqa: E402
from incidents.models import Incident, IncidentType  # noqa: E402
from streams.models import LiveRoom, Viewer  # noqa: E402


def log(*args):
    print(*args, flush=True)


def setup_audience(size):
    """A room whose `size` viewers all watched through a 10-minute outage (viewers made with COPY)."""
    slug = f"bench-{size}"
    room, _ = LiveRoom.objects.get_or_create(slug=slug, defaults={"name": slug, "merchant": "bench"})
    type_, _ = IncidentType.objects.get_or_create(slug="bench-outage", defaults={"name": "bench"})
    incident = Incident.objects.filter(room=room).first()
    if incident is None:
        end = timezone.now() - timedelta(minutes=1)
        incident = Incident.objects.create(room=room, incident_type=type_, title="bench outage", status="resolved",
                                           detected_at=end - timedelta(minutes=10), resolved_at=end)
    have = Viewer.objects.filter(device_id__startswith="bench-").count()
    if have < size:
        t = time.perf_counter()
        with connection.cursor() as cursor:
            # Identified viewers of the bench merchant (imported audience): only those are eligible.
            with cursor.cursor.copy("COPY streams_viewer (device_id, nickname, created_at, platform_merchant, "
                                    "platform_user_id, last_user_agent) FROM STDIN") as copy:
                copy.write("".join(f"bench-{i:08d}\t\t2026-01-01 00:00:00+00\tbench\tbench-{i:08d}\t\n"
                                   for i in range(have, size)))
        log(f"  setup: {size - have} viewers in {time.perf_counter() - t:.1f} s")
    if not room.viewer_sessions.exists():
        t = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO streams_viewersession (room_id, viewer_id, joined_at, last_seen_at, left_at) "
                "SELECT %s, id, %s, %s, %s FROM streams_viewer WHERE device_id >= 'bench-' AND device_id < %s",
                [room.pk, incident.detected_at - timedelta(minutes=2), incident.resolved_at + timedelta(minutes=1),
                 incident.resolved_at + timedelta(minutes=1), f"bench-{size:08d}"])
            cursor.execute("ANALYZE streams_viewersession")
        log(f"  setup: {size} sessions in {time.perf_counter() - t:.1f} s")
    return room, incident


def clean_grants():
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE compensation_redemption, compensation_grant, compensation_recipient, "
                       "compensation_issuancebatch")
        cursor.execute("CHECKPOINT")


def raw_copy(size, campaign, viewer_ids):
    """Baseline: COPY `size` grant rows straight into compensation_grant (same table, indexes, FKs)."""
    clean_grants()
    codes = services.new_codes(size)
    payload = "".join(f"{c}\t{campaign.pk}\t{v}\t{campaign.amount_fen}\t2026-01-01 00:00:00+00\t\n"
                      for c, v in zip(codes, viewer_ids))
    t = time.perf_counter()
    with connection.cursor() as cursor:
        with cursor.cursor.copy("COPY compensation_grant (code, campaign_id, viewer_id, amount_fen, issued_at, "
                                "redeemed_order) FROM STDIN") as copy:
            copy.write(payload)
    elapsed = time.perf_counter() - t
    clean_grants()
    return elapsed


def start_workers(concurrency):
    log_path = ROOT / "test-artifacts" / "bench-celery.log"
    log_path.parent.mkdir(exist_ok=True)
    out = open(log_path, "w")
    proc = subprocess.Popen([sys.executable, "-m", "celery", "-A", "controlroom", "worker", "--concurrency",
                             str(concurrency), "--loglevel", "INFO", "--without-gossip", "--without-mingle",
                             "--without-heartbeat"], cwd=ROOT, env=dict(os.environ, LOG_LEVEL="WARNING"),
                            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while "ready." not in log_path.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"celery worker did not start, see {log_path}")
        time.sleep(0.2)
    return proc


def drop_stale_tasks(redis_url):
    import redis

    redis.Redis.from_url(redis_url).delete("celery", "unacked", "unacked_index", "unacked_mutex")


def end_to_end(size, operator, budget, room, incident):
    clean_grants()
    campaign = services.create_campaign(actor=operator, room=room, budget=budget, incident=incident,
                                        kind=Campaign.Kind.COUPON, amount_fen=100, title=f"bench {size}")
    assert campaign.eligible_count == size, campaign.eligible_count
    t0 = time.perf_counter()
    services.issue_campaign(actor=operator, campaign_id=campaign.pk)
    t_issue = time.perf_counter() - t0
    while True:
        status = Campaign.objects.filter(pk=campaign.pk).values_list("status", flat=True).get()
        if status != Campaign.Status.ISSUING:
            break
        time.sleep(0.02)
    total = time.perf_counter() - t0
    campaign.refresh_from_db()
    assert campaign.status == "completed" and campaign.issued_count == size, (campaign.status, campaign.issued_count)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), count(DISTINCT viewer_id) FROM compensation_grant WHERE campaign_id = %s",
                       [campaign.pk])
        count, distinct = cursor.fetchone()
    assert count == distinct == size
    # Replay every batch: nothing must be inserted.
    t = time.perf_counter()
    replay = services._insert_grants(campaign, list(
        campaign.grants.values_list("viewer_id", flat=True)), campaign.amount_fen)
    t_replay = time.perf_counter() - t
    assert replay == 0
    budget.refresh_from_db()
    budget.reserved_fen = 0  # give the money back for the next round
    budget.save(update_fields=["reserved_fen"])
    return campaign, total, t_issue, t_replay


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    drop_stale_tasks(os.environ["REDIS_URL"])
    call_command("migrate", verbosity=0)
    operator, _ = User.objects.get_or_create(username="bench_ops")
    operator.groups.add(Group.objects.get(name="ops"))
    budget, _ = Budget.objects.get_or_create(name="bench", defaults={
        "total_fen": 10**12, "per_viewer_cap_fen": 10_000, "approval_threshold_fen": 10**12})
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        pg = cursor.fetchone()[0].split(",")[0]
    log(f"compensation bench: {pg}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}, "
        f"{args.workers} Celery worker processes")
    workers = start_workers(args.workers)
    results = []
    try:
        for size in sizes:
            log(f"[{size:,} viewers]")
            room, incident = setup_audience(size)
            viewer_ids = list(room.viewer_sessions.values_list("viewer_id", flat=True))
            probe = services.create_campaign(actor=operator, room=room, budget=budget, incident=incident,
                                             kind=Campaign.Kind.COUPON, amount_fen=100, title="baseline")
            # A web process has its URLconf imported and templates loaded before anyone clicks "issue";
            # do the same here so the first render of the progress bar does not count imports.
            services.render_progress(probe)
            t_copy = raw_copy(size, probe, viewer_ids)
            campaign, t_e2e, t_issue, t_replay = end_to_end(size, operator, budget, room, incident)
            batches = campaign.batches.count()
            ratio = t_e2e / t_copy
            log(f"  raw COPY into compensation_grant: {t_copy:6.2f} s  ({size / t_copy:,.0f} rows/s)")
            log(f"  end to end (start -> completed):  {t_e2e:6.2f} s  ({size / t_e2e:,.0f} grants/s, "
                f"{batches} batches of {campaign.batch_size}; issue call incl. audience freeze {t_issue:.2f} s)")
            log(f"  ratio end-to-end / raw COPY:      {ratio:6.2f} x")
            log(f"  replay of all {size:,} grants:      {t_replay:6.2f} s, 0 rows inserted")
            results.append((size, t_copy, t_e2e, ratio, t_issue, t_replay, batches, campaign.batch_size))
    finally:
        os.killpg(workers.pid, 15)
        workers.wait(timeout=20)
    log("")
    log("| coupons | raw COPY | end to end | ratio | issue call (audience freeze) | replay (0 rows) | batches |")
    log("|---|---|---|---|---|---|---|")
    for size, t_copy, t_e2e, ratio, t_issue, t_replay, batches, batch_size in results:
        log(f"| {size:,} | {t_copy:.2f} s | {t_e2e:.2f} s | {ratio:.2f}x | {t_issue:.2f} s | {t_replay:.2f} s | "
            f"{batches} x {batch_size:,} |")


if __name__ == "__main__":
    main()
