"""Paging benchmark: incident opened -> the group robot's endpoint has the page, and deliveries per second.

    .venv/bin/python bench/paging_bench.py [--latency 20] [--burst-incidents 20] [--burst-robots 10]

A local webhook receiver (incidents/tests/robot_receiver.py: plain http.server, checks format and
signature) runs in this process. The product runs in a child process:

- embedded: SQLite file, no Redis; deliveries run on the web process's in-process pool.
- celery:   PostgreSQL (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/h_paging_bench, created if
            missing) + Redis (REDIS_URL, default redis://127.0.0.1:6379/4) + a real `celery worker`
            (--concurrency 2).

Latency: one DingTalk robot (signed); incidents opened one at a time, each waiting for its page; time from
the call to open_incident to the request arriving at the receiver. Throughput: `--burst-robots` robots,
`--burst-incidents` SEV2 incidents opened back to back; deliveries / (last arrival - first open).
Baseline (same run): the same signed POSTs sent straight from this process with urllib, no rows, no tasks.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SECRET = "SECbench-secret"


def child(mode, receiver_base, n_latency, n_burst, burst_robots):
    """Runs inside the product's process (embedded or with Celery); prints one JSON line."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlroom.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from incidents import paging, services
    from incidents.models import PageDelivery, PagingRobot
    from streams.models import LiveRoom

    assert settings.EMBEDDED == (mode == "embedded")
    run = str(int(time.time()))  # fresh rooms per run: an open incident of an earlier run would dedupe
    PagingRobot.objects.all().delete()
    manager = User.objects.filter(username="bench_manager").first() or User.objects.create_user("bench_manager")
    manager.groups.add(Group.objects.get(name="manager"))

    def rooms(prefix, n):
        out = []
        for i in range(n):
            room, _ = LiveRoom.objects.get_or_create(slug=f"{prefix}-{i}", defaults={
                "name": f"压测直播间 {i}", "merchant": "压测商家", "status": LiveRoom.Status.LIVE})
            out.append(room)
        return out

    def wait_sent(ids, expected, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if PageDelivery.objects.filter(incident_id__in=ids, status="sent").count() >= expected:
                return True
            time.sleep(0.01)
        return False

    opened = {}
    robot = paging.save_robot(actor=manager, name="bench", platform="dingtalk", secret=SECRET,
                              webhook_url=f"{receiver_base}/dingtalk?access_token=bench", roles=["tech_support"])
    for room in rooms(f"lat-{mode}-{run}", n_latency):
        t0 = time.time()
        incident = services.open_incident(room=room, incident_type="stream-interruption", actor=None, source="line_down")
        opened[incident.pk] = t0
        if not wait_sent([incident.pk], 1, timeout=30):
            print(json.dumps({"error": f"incident {incident.pk} never paged"}))
            return
    PagingRobot.objects.filter(pk=robot.pk).update(enabled=False)
    for i in range(burst_robots):
        paging.save_robot(actor=manager, name=f"bench-{i}", platform="wecom", roles=["ops"],
                          webhook_url=f"{receiver_base}/wecom?key=wecom-key-123")
    burst = {}
    burst_started = time.time()
    for room in rooms(f"burst-{mode}-{run}", n_burst):
        t0 = time.time()
        incident = services.open_incident(room=room, incident_type="stream-interruption", actor=None, source="line_down")
        burst[incident.pk] = t0
    opened_all = time.time()
    ok = wait_sent(list(burst), n_burst * burst_robots)
    print(json.dumps({"latency_opened": opened, "burst_opened": burst, "burst_started": burst_started,
                      "burst_open_s": opened_all - burst_started, "burst_complete": ok}))


def run_child(mode, env, args, receiver):
    cmd = [sys.executable, __file__, "--child", mode, "--receiver", receiver.base, "--latency", str(args.latency),
           "--burst-incidents", str(args.burst_incidents), "--burst-robots", str(args.burst_robots)]
    start = len(receiver.received)
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise SystemExit(f"{mode} child failed:\n{proc.stderr[-3000:]}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    if "error" in data:
        raise SystemExit(f"{mode}: {data['error']}")
    got = receiver.received[start:]
    bad = [r for r in got if r.problems or r.signature_ok is False]
    arrivals = {}
    for r in got:
        text = r.body.get("markdown", {}).get("text") or r.body.get("markdown", {}).get("content") or ""
        m = re.search(r"#(\d+) ", text)
        if m:
            arrivals.setdefault(int(m.group(1)), []).append(r.at)
    lat = sorted((arrivals[int(pk)][0] - t0) * 1000 for pk, t0 in data["latency_opened"].items())
    burst_ids = [int(pk) for pk in data["burst_opened"]]
    burst_arrivals = [t for pk in burst_ids for t in arrivals.get(pk, [])]
    span = max(burst_arrivals) - data["burst_started"] if burst_arrivals else float("nan")
    flow = max(burst_arrivals) - min(burst_arrivals) if len(burst_arrivals) > 1 else float("nan")
    return {"mode": mode, "latency_ms": lat, "bad": len(bad), "burst_deliveries": len(burst_arrivals),
            "burst_span_s": span, "flow_s": flow, "burst_open_s": data["burst_open_s"], "complete": data["burst_complete"]}


def baseline(receiver, n_latency, n_total):
    from incidents import robots

    message = robots.Message(title="基线", lines=["#0 baseline"], link_label="查看", link_url="http://x/",
                             claim_label="我来处理", claim_url="http://x/c")
    lat = []
    for _ in range(n_latency):
        t0 = time.time()
        result = robots.send("dingtalk", f"{receiver.base}/dingtalk?access_token=b", SECRET, message, 5)
        assert result.ok, result
        lat.append((time.time() - t0) * 1000)
    from concurrent.futures import ThreadPoolExecutor

    t0 = time.time()
    with ThreadPoolExecutor(2) as pool:  # as many senders as the product's pool / worker concurrency
        results = list(pool.map(lambda _: robots.send("wecom", f"{receiver.base}/wecom?key=wecom-key-123", "",
                                                      message, 5).ok, range(n_total)))
    assert all(results)
    return {"latency_ms": sorted(lat), "rate": n_total / (time.time() - t0)}


def pct(values, q):
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def ensure_database(url):
    import psycopg
    from urllib.parse import urlparse

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin = f"postgresql://{parsed.username or 'postgres'}@{parsed.hostname}:{parsed.port or 5432}/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--child")
    parser.add_argument("--receiver")
    parser.add_argument("--latency", type=int, default=20)
    parser.add_argument("--burst-incidents", type=int, default=20)
    parser.add_argument("--burst-robots", type=int, default=10)
    parser.add_argument("--modes", default="embedded,celery")
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.receiver, args.latency, args.burst_incidents, args.burst_robots)

    from incidents.tests.robot_receiver import RobotReceiver

    base_env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "SQLITE_PATH")}
    base_env.update(LOG_LEVEL="WARNING", PYTHONPATH=str(ROOT), SITE_URL="http://127.0.0.1:8000")
    rows = []
    with RobotReceiver(secrets={"dingtalk": SECRET}) as receiver, tempfile.TemporaryDirectory() as tmp:
        base = baseline(receiver, args.latency, args.burst_incidents * args.burst_robots)
        for mode in args.modes.split(","):
            env = dict(base_env)
            worker = None
            if mode == "embedded":
                env["SQLITE_PATH"] = str(Path(tmp) / "paging-bench.sqlite3")
            else:
                env["DATABASE_URL"] = os.environ.get("DATABASE_URL",
                                                     "postgres://postgres@127.0.0.1:5432/h_paging_bench")
                env["REDIS_URL"] = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/4")
                env["CHANNEL_LAYER_PREFIX"] = "paging_bench"
                ensure_database(env["DATABASE_URL"])
                subprocess.run([sys.executable, "manage.py", "migrate", "--verbosity", "0"], env=env, cwd=ROOT,
                               check=True, timeout=300)
                worker = subprocess.Popen(
                    [sys.executable, "-m", "celery", "-A", "controlroom", "worker", "--concurrency", "2",
                     "--pool", "prefork", "--loglevel", "WARNING", "--without-gossip", "--without-mingle",
                     "--without-heartbeat"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    start_new_session=True)
                time.sleep(5)  # worker ready
            try:
                rows.append(run_child(mode, env, args, receiver))
            finally:
                if worker is not None:
                    worker.terminate()
                    worker.wait(timeout=30)

    n = args.burst_incidents * args.burst_robots
    print(f"\nPaging bench ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load {os.getloadavg()[0]:.1f})")
    print("| path | open → receiver p50 | p95 | max | deliveries/s, first → last arrival | end to end (burst of %d) | bad requests |" % n)
    print("|---|---|---|---|---|---|---|")
    bl = base["latency_ms"]
    print(f"| baseline: signed POST from this process (no rows, no tasks) | {statistics.median(bl):.1f} ms | "
          f"{pct(bl, .95):.1f} ms | {max(bl):.1f} ms | {base['rate']:.0f} (2 threads) | — | 0 |")
    for row in rows:
        lat = row["latency_ms"]
        rate = row["burst_deliveries"] / row["burst_span_s"] if row["burst_span_s"] else float("nan")
        flow = (row["burst_deliveries"] - 1) / row["flow_s"] if row["flow_s"] else float("nan")
        print(f"| {row['mode']} | {statistics.median(lat):.1f} ms | {pct(lat, .95):.1f} ms | {max(lat):.1f} ms | "
              f"{flow:.0f} | {rate:.0f}/s: {row['burst_deliveries']}/{n} in {row['burst_span_s']:.2f} s "
              f"(opening the incidents took {row['burst_open_s']:.2f} s) | {row['bad']} |")


if __name__ == "__main__":
    main()
