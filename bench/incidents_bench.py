"""Incident analytics benchmark on PostgreSQL with 100,000 incidents and 1,000,000 timeline entries.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cr_incidents_bench .venv/bin/python bench/incidents_bench.py

What it does, in one run:
 1. Generates the history with `manage.py seed_incident_history` (COPY) unless it is already there
    (--regenerate forces it) and reports the generation time.
 2. Renders the analytics page through Django's full stack (middleware, auth, SQL, charts, template)
    N times for the default view (last 90 days) and the full year (all incidents), reports p50/p95/max.
 3. Baseline in the same run: the same figures computed the naive way, loading the rows into Python
    (counts, means, medians, live hours split at shift boundaries); prints the ratio and checks that
    both give the same numbers.
 4. Also the case library with a Chinese free-text filter over the 100k cases.
"""

import argparse
import os
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlroom.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.models import Group  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

from incidents import analytics  # noqa: E402
from incidents.models import Incident, IncidentTimelineEntry  # noqa: E402
from streams.models import LiveSession  # noqa: E402


def pct(values, p):
    values = sorted(values)
    k = (len(values) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def timed(fn, n, warmup=3):
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    return {"p50": pct(samples, 50), "p95": pct(samples, 95), "max": max(samples), "n": n}


def backend_cpu_ms():
    """CPU time (user+sys) the PostgreSQL backend of this connection has used so far, from /proc."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def cpu_cost(fn, n):
    """CPU per call, independent of other load: our process + the database backend (sequential path:
    inside a transaction the analytics run on this connection, so one backend does all the SQL)."""
    from django.db import transaction

    app, db = [], []
    for i in range(n + 2):
        with transaction.atomic():
            with connection.cursor() as cursor:
                # Parallel-query workers are other processes: keep all SQL work in this backend.
                cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
            b0, p0 = backend_cpu_ms(), time.process_time()
            fn()
            p1, b1 = time.process_time(), backend_cpu_ms()
        if i >= 2:
            app.append((p1 - p0) * 1000)
            db.append(b1 - b0)
    return {"app": statistics.median(app), "db": statistics.median(db),
            "total_p50": statistics.median([a + d for a, d in zip(app, db)]),
            "total_max": max(a + d for a, d in zip(app, db)), "n": n}


def naive_dashboard(start, end, bands, now):
    """The baseline: fetch rows, aggregate in Python (what a first version would do)."""
    rows = list(Incident.objects.filter(is_drill=False, detected_at__gte=start, detected_at__lt=end)
                .exclude(status="cancelled")
                .values_list("incident_type_id", "severity", "room_id", "room__merchant", "detected_at",
                             "acknowledged_at", "mitigated_at", "resolved_at", "first_announcement_at"))
    by = {k: Counter() for k in ("type", "severity", "room", "merchant", "shift", "heat")}
    durations = defaultdict(lambda: defaultdict(list))
    for type_id, sev, room_id, merchant, det, ack, mit, res, ann in rows:
        local = timezone.localtime(det)
        by["type"][type_id] += 1
        by["severity"][sev] += 1
        by["room"][room_id] += 1
        by["merchant"][merchant] += 1
        night = (local.hour >= bands.night_start or local.hour < bands.night_end) \
            if bands.night_start > bands.night_end else bands.night_start <= local.hour < bands.night_end
        by["shift"]["night" if night else "day"] += 1
        by["heat"][(local.isoweekday(), local.hour)] += 1
        for name, t in (("mtta", ack), ("mttm", mit), ("mttr", res), ("announce", ann), ("downtime", mit or res)):
            if t is not None:
                durations[type_id][name].append((t - det).total_seconds())
    stats = {t: {name: (statistics.fmean(v), statistics.median(v)) for name, v in d.items()}
             for t, d in durations.items()}
    night_s, total_s = analytics.split_live_seconds(
        LiveSession.objects.filter(started_at__lt=end).values_list("started_at", "ended_at"), start, end, bands, now)
    return by, stats, {"night": night_s / 3600, "day": (total_s - night_s) / 3600}


def check_same(sql, naive):
    by, stats, hours = naive
    c = sql["counts"]
    assert dict(by["type"]) == c["type"], "counts by type differ"
    assert dict(by["merchant"]) == c["merchant"], "counts by merchant differ"
    assert dict(by["heat"]) == c["heat"], "heatmap differs"
    assert dict(by["shift"]) == c["shift"], "shift counts differ"
    for row in sql["response"]:
        if row["is_total"]:
            continue
        mean, median = stats[row["incident_type_id"]]["mttr"]
        assert abs(row["mttr_mean"] - mean) < 1e-3 and abs(row["mttr_median"] - median) < 1e-3, "MTTR differs"
    for shift in ("night", "day"):
        assert abs(sql["rates"][shift]["live_hours"] - hours[shift]) < 1e-6, "live hours differ"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--baseline-runs", type=int, default=3)
    parser.add_argument("--regenerate", action="store_true")
    args = parser.parse_args()
    if not settings.USES_POSTGRES:
        sys.exit("set DATABASE_URL to a PostgreSQL database (the benchmark is about PostgreSQL).")

    call_command("migrate", verbosity=0)
    have_incidents = Incident.objects.count()
    have_entries = IncidentTimelineEntry.objects.count()
    if args.regenerate or have_incidents < args.incidents or have_entries < args.entries:
        t = time.perf_counter()
        call_command("seed_incident_history", incidents=args.incidents, entries=args.entries, clear=True)
        print(f"generated {args.incidents:,} incidents + {args.entries:,} timeline entries "
              f"in {time.perf_counter() - t:.1f} s (COPY)")
    print(f"database: {Incident.objects.count():,} incidents, {IncidentTimelineEntry.objects.count():,} "
          f"timeline entries, {LiveSession.objects.count():,} live sessions")
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")

    user, _ = get_user_model().objects.get_or_create(username="bench_manager")
    user.groups.add(Group.objects.get(name="manager"))
    client = Client()
    client.force_login(user)

    def page(url):
        def run():
            response = client.get(url)
            assert response.status_code == 200, response.status_code
            return response
        return run

    results = {}
    html = page("/incidents/analytics/")().content.decode()
    assert "<svg" in html
    results["analytics page, default view (last 90 days)"] = timed(page("/incidents/analytics/"), args.runs)
    results["analytics page, last 365 days (all incidents)"] = timed(page("/incidents/analytics/?days=365"),
                                                                     args.runs)
    results["analytics CSV, last 365 days"] = timed(page("/incidents/analytics.csv?days=365"), max(5, args.runs // 3))
    results["case library, Chinese free text 路由器"] = timed(page("/incidents/?q=%E8%B7%AF%E7%94%B1%E5%99%A8"),
                                                           args.runs)
    results["case library, night shift + type filter"] = timed(
        page("/incidents/?shift=night&type=stream-interruption"), args.runs)

    # Baseline: the same figures aggregated in Python, same year, same run.
    start, end = analytics.default_range(365)
    bands = analytics.default_bands()
    now = timezone.now()
    naive = None

    def run_naive():
        nonlocal naive
        naive = naive_dashboard(start, end, bands, now)

    results["baseline: naive Python aggregation, 365 days"] = timed(run_naive, args.baseline_runs, warmup=0)

    cpu = {}
    if Path("/proc/self/stat").exists():
        try:
            cpu["analytics page, default view (last 90 days)"] = cpu_cost(page("/incidents/analytics/"), 10)
            cpu["analytics page, last 365 days (all incidents)"] = cpu_cost(page("/incidents/analytics/?days=365"), 10)
            cpu["baseline: naive Python aggregation, 365 days"] = cpu_cost(run_naive, 2)
        except OSError as exc:  # database on another host: no /proc for its backend
            print(f"(no CPU accounting: {exc})")
    sql = analytics.dashboard(start, end, bands)
    sql["rates"] = analytics.failure_rates(start, end, bands, counts_by_shift=sql["counts"]["shift"], now=now)
    check_same(sql, naive)

    print("\n| measurement | runs | p50 ms | p95 ms | max ms |\n|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['n']} | {r['p50']:.0f} | {r['p95']:.0f} | {r['max']:.0f} |")
    if cpu:
        print("\nCPU per render (clock ticks from /proc; unaffected by other processes' load; ticks are 10 ms):")
        print("| measurement | runs | app CPU ms (p50) | PostgreSQL CPU ms (p50) | total p50 | total max |\n|---|---|---|---|---|---|")
        for name, r in cpu.items():
            print(f"| {name} | {r['n']} | {r['app']:.0f} | {r['db']:.0f} | {r['total_p50']:.0f} | {r['total_max']:.0f} |")
    year = results["analytics page, last 365 days (all incidents)"]
    base = results["baseline: naive Python aggregation, 365 days"]
    print(f"\nratio baseline / SQL page (365 days, p50): {base['p50'] / year['p50']:.1f}x")
    print("SQL and naive Python agree on counts, heatmap, shift counts, MTTR mean/median and live hours.")
    for name, r in results.items():
        if name.startswith("analytics page"):
            verdict = "meets" if r["p95"] <= 300 else "MISSES"
            print(f"target p95 <= 300 ms: {name}: {verdict} ({r['p95']:.0f} ms)")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    connection.close()


if __name__ == "__main__":
    main()
