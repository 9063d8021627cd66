"""Write latency of incident and compensation actions, through Django's full stack, on both databases.

    .venv/bin/python bench/write_latency_bench.py [--n 30] [--pg postgres://postgres@127.0.0.1:5432/cr_write_bench]

For each database (the embedded default, SQLite in WAL mode in a temporary file, then PostgreSQL) a child
process migrates a fresh database, seeds the types, two rooms, users and a budget, and then times N times
each action as a person's click sends it (test client, session login, CSRF off, the htmx header where the
page uses htmx):

  complete step   POST /incidents/<id>/steps/<step>/complete     (no one-click action: the write itself)
  resolve         POST /incidents/<id>/transition  to=resolved   (with the case record)
  sign off        POST /incidents/<id>/review      sign_off=1     (a manager)
  approve         POST /compensation/<id>/approve               (a second manager)
  start issuance  POST /compensation/<id>/issue                 (batches queued, not waited for)

Each database is measured twice: quiet, and "busy" as on `make run`, where the web process also hosts the
media worker (threads doing pure-Python work that compete for the GIL) and health samples are written to
the database every 200 ms from another thread (on SQLite: the one writer lock).

Baseline in the same run: the same clicks with the live pushes (fragment renders for the incident page,
every role's checklist, the wall panel, in both languages) done inside the request, as they were before
they moved to the background pusher. A loaded host makes every figure larger; compare the columns.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def busy_neighbours(stop):
    """What shares the web process on the embedded default: media-worker threads and health writes."""
    import threading

    from django.db import close_old_connections
    from django.utils import timezone

    from streams.models import HealthSample, LiveRoom

    def cpu():
        while not stop.is_set():
            sum(i * i for i in range(20000))  # frame analysis and packet handling, in Python
            time.sleep(0.001)

    def health_writer():
        room = LiveRoom.objects.get(slug="bench-room")
        while not stop.is_set():
            now = timezone.now()
            HealthSample.objects.bulk_create([HealthSample(room=room, line_role=role, at=now, connected=True, fps=15,
                                                           bitrate_kbps=800) for role in ("primary", "backup",
                                                                                           "program")] * 6)
            time.sleep(0.2)
        close_old_connections()

    threads = [threading.Thread(target=cpu, daemon=True) for _ in range(2)]
    threads.append(threading.Thread(target=health_writer, daemon=True))
    for t in threads:
        t.start()
    return threads


def child(n, inline, busy):
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlroom.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.test import Client
    from django.utils import timezone

    from compensation.models import Budget
    from compensation import services as comp
    from controlroom import deferred
    from incidents import services
    from streams.models import LiveRoom, Viewer, ViewerSession

    call_command("migrate", verbosity=0)
    deferred.INLINE = inline
    User = get_user_model()

    def user(name, role):
        u, _ = User.objects.get_or_create(username=name)
        u.groups.add(Group.objects.get_or_create(name=role)[0])
        return u

    op, mgr, mgr2 = user("bench_op", "ops"), user("bench_mgr", "manager"), user("bench_mgr2", "manager")
    room, _ = LiveRoom.objects.get_or_create(slug="bench-room", defaults={"name": "压测直播间", "merchant": "压测商家"})
    budget = Budget.objects.create(name="bench", total_fen=10**12, per_viewer_cap_fen=10**6,
                                   approval_threshold_fen=1)
    now = timezone.now()
    viewers = Viewer.objects.bulk_create([Viewer(device_id=f"bench-{now.timestamp()}-{i}",
                                                 platform_merchant=room.merchant, platform_user_id=f"b{now.timestamp()}-{i}")
                                          for i in range(200)])
    ViewerSession.objects.bulk_create([ViewerSession(room=room, viewer=v, joined_at=now - timezone.timedelta(hours=1),
                                                     last_seen_at=now + timezone.timedelta(hours=2),
                                                     left_at=now + timezone.timedelta(hours=2)) for v in viewers])

    def client(u):
        c = Client(HTTP_HX_REQUEST="true")
        c.force_login(u)
        return c

    c_op, c_mgr, c_mgr2 = client(op), client(mgr), client(mgr2)
    import threading

    stop = threading.Event()
    if busy:
        busy_neighbours(stop)
    times = {k: [] for k in ("complete step", "resolve", "sign off", "approve", "start issuance")}

    def timed(name, c, url, data):
        t0 = time.perf_counter()
        response = c.post(url, data)
        times[name].append((time.perf_counter() - t0) * 1000)
        assert response.status_code in (200, 302), (name, response.status_code, response.content[:300])

    for i in range(n + 1):  # the first round warms up (template compilation, connections) and is dropped
        if i == 1:
            for values in times.values():
                values.clear()
        incident = services.open_incident(room=room, incident_type="other", actor=op)
        services.transition(incident=incident, to="acknowledged", actor=op)
        # a 30-minute outage, so that the viewers present during it are owed compensation
        type(incident).objects.filter(pk=incident.pk).update(detected_at=timezone.now() - timezone.timedelta(minutes=30))
        step = incident.steps.filter(role="ops", action="").first()
        timed("complete step", c_op, f"/incidents/{incident.pk}/steps/{step.pk}/complete", {"run_action": "0"})
        timed("resolve", c_op, f"/incidents/{incident.pk}/transition",
              {"to": "resolved", "cause": "原因", "handling": "处理", "outcome": "结果"})
        timed("sign off", c_mgr, f"/incidents/{incident.pk}/review",
              {"root_cause": "根因", "went_well": "", "to_improve": "", "sign_off": "1",
               "items-TOTAL_FORMS": "0", "items-INITIAL_FORMS": "0"})
        incident.refresh_from_db()
        campaign = comp.create_campaign(actor=mgr, room=room, budget=budget, kind="coupon", title=f"bench {i}",
                                        amount_fen=500, incident=incident)
        timed("approve", c_mgr2, f"/compensation/{campaign.pk}/approve", {})
        timed("start issuance", c_op, f"/compensation/{campaign.pk}/issue", {})
    stop.set()
    print(json.dumps(times))


def run(label, env, n, inline, busy):
    out = subprocess.run([sys.executable, __file__, "--child", str(n)] + (["--inline"] if inline else [])
                         + (["--busy"] if busy else []),
                         env=env, capture_output=True, text=True, cwd=ROOT, timeout=1200)
    if out.returncode != 0:
        sys.exit(f"{label} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432/cr_write_bench")
    parser.add_argument("--child", type=int)
    parser.add_argument("--inline", action="store_true")
    parser.add_argument("--busy", action="store_true")
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.inline, args.busy)
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "SQLITE_PATH")}
    name = args.pg.rsplit("/", 1)[1]
    subprocess.run(["psql", args.pg.rsplit("/", 1)[0] + "/postgres", "-qc", f"DROP DATABASE IF EXISTS {name}"],
                   check=True)
    subprocess.run(["psql", args.pg.rsplit("/", 1)[0] + "/postgres", "-qc", f"CREATE DATABASE {name}"], check=True)
    print(f"write latency, ms, n={args.n} per action (p50 / p95 / max); host: {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        for (label, env), busy in [(db, busy) for db in (
                ("SQLite (embedded default)", {**base, "SQLITE_PATH": f"{tmp}/bench.sqlite3"}),
                ("PostgreSQL", {**base, "DATABASE_URL": args.pg})) for busy in (False, True)]:
            after = run(label, env, args.n, inline=False, busy=busy)
            before = run(label, env, args.n, inline=True, busy=busy)
            print(f"\n{label}, {'busy process (media threads + health writes)' if busy else 'quiet process'}")
            print(f"  {'action':16} {'pushes after the response':>28} {'baseline: pushes in the request':>34}")
            for action in after:
                a, b = after[action], before[action]
                print(f"  {action:16} {pct(a, 50):8.0f} / {pct(a, 95):5.0f} / {max(a):5.0f}"
                      f"      {pct(b, 50):12.0f} / {pct(b, 95):5.0f} / {max(b):5.0f}")
            print(f"  all actions p95: {pct(sum(after.values(), []), 95):.0f} ms "
                  f"(baseline {pct(sum(before.values(), []), 95):.0f} ms); mean "
                  f"{statistics.mean(sum(after.values(), [])):.0f} ms")


if __name__ == "__main__":
    main()
