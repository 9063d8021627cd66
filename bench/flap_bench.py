"""A flapping line against the real stack (Daphne + `manage.py mediaworker` + PostgreSQL + Redis).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cr_flap_bench REDIS_URL=redis://127.0.0.1:6379/6 \\
        .venv/bin/python bench/flap_bench.py [--duration 600] [--baseline 60] [--stall 0.6] [--healthy 0.9]

One room, anti-flap at 2 automatic switches per 60 s. An aiortc publisher on the primary line stalls for
`--stall` seconds, then sends for `--healthy` seconds, over and over for `--duration` seconds (the storm); the
backup line stays healthy. Before the storm, `--baseline` seconds of the same room without flapping, in the
same run. Throughout, a legitimate viewer joins over WHEP every few seconds (POST → first decoded frame) and
the room's lease is checked twice a second. Figures: open alerts per room and kind (must be ≤ 1), alert rows,
what the anti-flap hold says it refused, audit rows, lease lapses (must be 0), join time p50/p95 per phase.
"""

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlroom.settings")

LEASE_S = 4  # short leases: a renewal stuck behind business work shows up as a lapse quickly


def pct(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    k = (len(values) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def lease_ok(slug, worker_id):
    from django.utils import timezone

    from streams.models import MediaWorkerLease

    return MediaWorkerLease.objects.filter(room__slug=slug, worker_id=worker_id, expires_at__gt=timezone.now()).exists()


def counts(slug):
    from django.db.models import Count

    from streams.models import Alert, ControlAction

    open_per_kind = dict(Alert.objects.filter(room__slug=slug, acknowledged_at__isnull=True).values_list("kind")
                         .annotate(n=Count("id")).values_list("kind", "n"))
    hold = Alert.objects.filter(room__slug=slug, kind="failover_hold").order_by("-id").first()
    return {
        "open_alerts_per_kind": open_per_kind,
        "alert_rows": Alert.objects.filter(room__slug=slug).count(),
        "hold_count": hold.count if hold else 0,
        "hold_refused": (hold.detail or {}).get("refused", 0) if hold else 0,
        "audit_failover_hold": ControlAction.objects.filter(room__slug=slug, action="failover_hold").count(),
        "audit_auto_switch": ControlAction.objects.filter(room__slug=slug, action="switch_source",
                                                          actor_label="auto").count(),
    }


async def phase(name, seconds, http, slug, worker_id, primary, flap, stall_s, healthy_s, join_every):
    from asgiref.sync import sync_to_async

    from streams.tests.media_support import Viewer

    joins, failed_joins, lapses, checks = [], 0, 0, 0
    stop = asyncio.Event()

    async def flapper():
        while not stop.is_set():
            primary.set_fault("stall")
            await asyncio.sleep(stall_s)
            primary.set_fault(None)
            await asyncio.sleep(healthy_s)

    async def lease_watch():
        nonlocal lapses, checks
        while not stop.is_set():
            checks += 1
            if not await sync_to_async(lease_ok)(slug, worker_id):
                lapses += 1
            await asyncio.sleep(0.5)

    tasks = [asyncio.ensure_future(lease_watch())]
    if flap:
        tasks.append(asyncio.ensure_future(flapper()))
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        t0 = time.monotonic()
        viewer = Viewer(http, slug)
        try:
            await viewer.start()
            await asyncio.wait_for(viewer.first_frame.wait(), 15)
            joins.append((time.monotonic() - t0) * 1000)
        except Exception as exc:  # noqa: BLE001 - a failed join is a figure, not a crash
            failed_joins += 1
            print(f"  {name}: join failed: {exc}"[:200], flush=True)
        finally:
            await viewer.close()
        await asyncio.sleep(max(0.0, join_every - (time.monotonic() - t0)))
    stop.set()
    primary.set_fault(None)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {"joins": joins, "failed_joins": failed_joins, "lease_lapses": lapses, "lease_checks": checks}


async def main(args):
    from media_bench import make_room, prepare_process_mode, start_process

    await prepare_process_mode()
    from asgiref.sync import sync_to_async

    from conftest import free_port, wait_for_port
    from streams.models import LiveRoom
    from streams.tests.media_support import Http, Publisher

    slug = f"flap-{int(time.time())}"
    room = await sync_to_async(make_room)(slug, max_auto_switches=2, others=LiveRoom.objects.all())
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LOG_LEVEL": "WARNING",
           "MEDIA_WORKER_LEASE_SECONDS": str(LEASE_S)}
    port = free_port()
    worker_id = "flap-bench"
    daphne = start_process([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                            "controlroom.asgi:application"], env, "flap-daphne.log")
    worker = start_process([sys.executable, "manage.py", "mediaworker", "--worker-id", worker_id], env,
                           "flap-mediaworker.log")
    peers = []
    try:
        wait_for_port(port)
        for _ in range(100):
            if await sync_to_async(lease_ok)(slug, worker_id):
                break
            await asyncio.sleep(0.2)
        http = Http(f"http://127.0.0.1:{port}")
        primary = await Publisher(http, slug, "primary", room.tokens["primary"], "red").start()
        backup = await Publisher(http, slug, "backup", room.tokens["backup"], "green").start()
        peers = [primary, backup]
        await asyncio.sleep(3)
        common = dict(http=http, slug=slug, worker_id=worker_id, primary=primary, stall_s=args.stall,
                      healthy_s=args.healthy, join_every=args.join_every)
        await phase("warm-up", 8, flap=False, **common)  # first joins pay one-off costs (codecs, pools)
        print(f"baseline {args.baseline:.0f} s (no flapping) ...", flush=True)
        base = await phase("baseline", args.baseline, flap=False, **common)
        base_counts = await sync_to_async(counts)(slug)
        print(f"storm {args.duration:.0f} s (primary stalls {args.stall} s every {args.stall + args.healthy} s) ...",
              flush=True)
        storm = await phase("storm", args.duration, flap=True, **common)
        storm_counts = await sync_to_async(counts)(slug)
    finally:
        for peer in peers:
            await peer.close()
        for proc in (worker, daphne):
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
    report(args, base, base_counts, storm, storm_counts)


def report(args, base, base_counts, storm, storm_counts):
    def row(label, b, s):
        print(f"| {label} | {b} | {s} |")

    print()
    print(f"| figure | baseline ({args.baseline:.0f} s, no flapping) | storm ({args.duration:.0f} s, primary stalls "
          f"{args.stall} s / sends {args.healthy} s) |")
    print("|---|---|---|")
    row("viewer joins (WHEP POST → first decoded frame)", len(base["joins"]), len(storm["joins"]))
    row("join time p50 (ms)", f"{pct(base['joins'], 50):.0f}", f"{pct(storm['joins'], 50):.0f}")
    row("join time p95 (ms)", f"{pct(base['joins'], 95):.0f}", f"{pct(storm['joins'], 95):.0f}")
    row("failed joins", base["failed_joins"], storm["failed_joins"])
    row(f"lease lapses (checks every 0.5 s, lease {LEASE_S} s)", f"{base['lease_lapses']} of {base['lease_checks']}",
        f"{storm['lease_lapses']} of {storm['lease_checks']}")
    row("open alerts per kind (max)", max(base_counts["open_alerts_per_kind"].values(), default=0),
        max(storm_counts["open_alerts_per_kind"].values(), default=0))
    row("open alerts by kind", base_counts["open_alerts_per_kind"], storm_counts["open_alerts_per_kind"])
    row("alert rows in total", base_counts["alert_rows"], storm_counts["alert_rows"])
    row("anti-flap hold: refusals counted on the one alert", base_counts["hold_refused"], storm_counts["hold_refused"])
    row("audit rows: failover_hold / automatic switches",
        f"{base_counts['audit_failover_hold']} / {base_counts['audit_auto_switch']}",
        f"{storm_counts['audit_failover_hold']} / {storm_counts['audit_auto_switch']}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of flapping (default 600)")
    parser.add_argument("--baseline", type=float, default=60.0, help="seconds without flapping first")
    parser.add_argument("--stall", type=float, default=0.6)
    parser.add_argument("--healthy", type=float, default=0.9)
    parser.add_argument("--join-every", type=float, default=4.0)
    asyncio.run(main(parser.parse_args()))
