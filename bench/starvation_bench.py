"""Starvation benchmark: healthy lines on a quiet host, then on a host saturated from outside.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cr_starve_bench REDIS_URL=redis://127.0.0.1:6379/1 \
    .venv/bin/python bench/starvation_bench.py [--duration 600] [--rooms 6] [--cut-every 3] [--write]

Process mode: one `manage.py mediaworker` serving every room (channel layer on Redis, PostgreSQL). Each room
has a primary and a backup publisher looping pre-encoded VP8 clips (red and green) with the product's default
failover settings (input_loss_ms 300 …). One real decoding aiortc viewer watches the first room. Two phases of
`--duration` seconds each, the same in every other respect:

1. quiet: nothing else started by the benchmark;
2. loaded: `stress-ng --cpu 2` saturates both cores from outside for the whole phase.

The publishers share the host with the worker, so they starve too; --generator-nice 10 (root) raises the
benchmark's own priority so that the hog starves the worker rather than the publishers. A publisher whose
connection closes is counted ("publishers left"): switches after that are the product doing its job.
STARVE_WORKER_ROOT=/path/to/another/checkout runs that checkout's worker instead (an A/B run).

Figures per phase: automatic switches in all rooms (target 0: every line is healthy), overload episodes the
worker raised (one per room per episode; an episode already under way is not counted again), manual cuts (service call → channel layer → worker → first decoded frame of the new colour at
the viewer) p50/p95 (target p95 ≤ 100 ms), the worker's CPU share and the worst event-loop lag it reported.
Prints a table; with --write, puts it into docs/benchmarks.md under its own heading.
"""

import argparse
import asyncio
import datetime
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlroom.settings")

import media_bench  # noqa: E402  (same folder: its publishers, process helpers and percentiles)

HEADING = "## Starvation: healthy lines on a saturated host (bench/starvation_bench.py)"
RED, GREEN = (220, 30, 30), (30, 200, 60)


def make_rooms(prefix, count):
    from django.db.models import Q

    from streams.models import LiveRoom, MediaWorkerLease

    # rooms of earlier runs would be leased by the worker too: end them
    LiveRoom.objects.filter(Q(slug__startswith="starve-") | Q(slug__startswith="bench-")).update(
        status=LiveRoom.Status.ENDED)
    MediaWorkerLease.objects.all().delete()
    return [media_bench.new_room(f"{prefix}-{i}") for i in range(count)]


def phase_counts(slugs, since):
    from streams.models import Alert, ControlAction

    autos = ControlAction.objects.filter(room__slug__in=slugs, action="switch_source", reason__startswith="auto:",
                                         created_at__gte=since)
    overloads = Alert.objects.filter(room__slug__in=slugs, kind="worker_overloaded", raised_at__gte=since)
    left = ControlAction.objects.filter(room__slug__in=slugs, action="publisher_left", created_at__gte=since)
    return list(autos.values_list("room__slug", "reason")), overloads.count(), left.count()


async def run_phase(name, rooms, viewer, worker, duration, cut_every):
    from asgiref.sync import sync_to_async
    from django.utils import timezone

    from streams import services
    from streams.mediaworker import client

    since = timezone.now()
    meter = media_bench.CpuMeter(worker.pid)
    cuts, worst_lag, failed_cuts = [], 0.0, 0
    source, colour = "backup", "green"
    end = time.monotonic() + duration
    next_cut = time.monotonic() + cut_every
    while time.monotonic() < end:
        await asyncio.sleep(max(0.0, min(next_cut, end) - time.monotonic()))
        for room in rooms:
            try:
                health = await client.call("health", room.slug)
                worst_lag = max(worst_lag, (health.get("program") or {}).get("loop_lag_ms") or 0.0)
            except Exception:
                pass
        if time.monotonic() >= end:
            break
        next_cut += cut_every
        t0 = time.monotonic()
        try:
            await sync_to_async(services.switch_source)(room=rooms[0], source=source, actor=None,
                                                                actor_label="bench", reason="bench")
            seen = await viewer.wait_for(colour, since=t0, timeout=5)
            cuts.append((seen - t0) * 1000)
        except Exception as exc:
            failed_cuts += 1
            print(f"  cut to {source} failed: {exc}", flush=True)
        source, colour = ("primary", "red") if source == "backup" else ("backup", "green")
    cpu = meter.share()
    await asyncio.sleep(1.0)  # audit rows of the last moments
    autos, overloads, left = await sync_to_async(phase_counts)([r.slug for r in rooms], since)
    return {"phase": name, "duration": duration, "autos": autos, "overloads": overloads, "left": left, "cuts": cuts,
            "failed_cuts": failed_cuts, "cpu": cpu, "worst_lag": worst_lag}


def table(results):
    rows = ["| phase | automatic switches (target 0) | publishers left | overload alerts raised | manual cuts | cut p50 | cut p95 (target ≤ 100 ms) "
            "| worker CPU | worst loop lag |",
            "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        failed = f" ({r['failed_cuts']} failed)" if r["failed_cuts"] else ""
        rows.append(
            f"| {r['phase']} ({r['duration']:.0f} s) | {len(r['autos'])} | {r['left']} | {r['overloads']} | {len(r['cuts'])}{failed} "
            f"| {media_bench.pct(r['cuts'], 50):.0f} ms | {media_bench.pct(r['cuts'], 95):.0f} ms "
            f"| {r['cpu'] * 100:.0f} % of a core | {r['worst_lag']:.0f} ms |")
    return "\n".join(rows)


def write_doc(text):
    path = ROOT / "docs" / "benchmarks.md"
    doc = path.read_text()
    if HEADING in doc:  # replace our own section only
        head, _, rest = doc.partition(HEADING)
        nxt = rest.find("\n## ")
        doc = head + text + (rest[nxt:] if nxt >= 0 else "\n")
    else:
        doc = doc.rstrip("\n") + "\n\n" + text
    path.write_text(doc)


async def main(args):
    assert shutil.which("stress-ng"), "stress-ng is needed for the loaded phase"
    await media_bench.prepare_process_mode()
    from asgiref.sync import sync_to_async

    from streams.tests.media_support import Http, Viewer

    media_bench.WIDTH, media_bench.HEIGHT, media_bench.FPS = args.width, args.height, args.fps
    rooms = await sync_to_async(make_rooms)(f"starve-{int(time.time())}", args.rooms)
    env = {**media_bench.worker_env(), "MEDIA_OUTPUT_WIDTH": str(args.width), "MEDIA_OUTPUT_HEIGHT": str(args.height),
           "MEDIA_OUTPUT_FPS": str(args.fps)}
    back = []
    if args.generator_nice:
        # The publishers stand in for encoders elsewhere: this process (publishers, viewer, web side) at a
        # higher priority, the worker and the hog back at the ordinary one (children inherit ours).
        os.nice(-args.generator_nice)
        back = ["nice", "-n", str(args.generator_nice)]
    worker_root = os.environ.get("STARVE_WORKER_ROOT", str(ROOT))  # another checkout's worker, for an A/B run
    worker = subprocess.Popen([*back, sys.executable, "manage.py", "mediaworker", "--worker-id", "starve"],
                              cwd=worker_root, env={**env, "PYTHONPATH": worker_root},
                              stdout=open(ROOT / "test-artifacts" / "bench-starve.log", "w"), stderr=subprocess.STDOUT)
    http, clips, peers, results, hog = Http(), {}, [], [], None
    generator_nice = os.nice(0)
    try:
        for room in rooms:
            await media_bench.wait_lease(room.slug, "starve", timeout=30)
        for room in rooms:
            peers.append(await media_bench.LoopLine(http, room.slug, "primary", room.tokens["primary"], RED, clips).start())
            peers.append(await media_bench.LoopLine(http, room.slug, "backup", room.tokens["backup"], GREEN, clips).start())
        viewer = await Viewer(http, rooms[0].slug).start()
        peers.append(viewer)
        await viewer.wait_for("red", timeout=20)
        await asyncio.sleep(3)
        print(f"quiet phase, {args.duration:.0f} s ...", flush=True)
        results.append(await run_phase("quiet", rooms, viewer, worker, args.duration, args.cut_every))
        print(f"loaded phase (stress-ng --cpu 2), {args.duration:.0f} s ...", flush=True)
        hog = subprocess.Popen([*back, "stress-ng", "--cpu", "2", "--timeout", f"{int(args.duration) + 30}s", "--quiet"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        await asyncio.sleep(1)
        results.append(await run_phase("stress-ng --cpu 2", rooms, viewer, worker, args.duration, args.cut_every))
    finally:
        if hog is not None:
            hog.terminate()
            hog.wait(10)
        for peer in peers:
            try:
                await peer.close()
            except Exception:
                pass
        media_bench.stop_process(worker)
    load = os.getloadavg()
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = (f"{HEADING}\n\n`bench/starvation_bench.py --duration {args.duration:.0f}` run {stamp}: {args.rooms} rooms, "
            f"each a primary and a backup looping pre-encoded {args.width}x{args.height}@{args.fps} VP8 + Opus, "
            f"product default failover settings, one `mediaworker` process, one decoding viewer on the first room, "
            f"a manual cut every {args.cut_every:g} s, load generator (publishers, viewer, web side) at nice "
            f"{generator_nice}, worker from {'this checkout' if worker_root == str(ROOT) else worker_root}. Same run: first quiet, then with `stress-ng --cpu 2`. "
            f"Host load average at the end {load[0]:.1f} (other work was running on the machine).\n\n"
            f"{table(results)}\n")
    for r in results:
        if r["autos"]:
            text += f"\nAutomatic switches in the {r['phase']} phase: {', '.join(f'{s} {w}' for s, w in r['autos'])}\n"
    print()
    print(text)
    if args.write:
        write_doc(text)
        print("written to docs/benchmarks.md")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=600, help="seconds per phase")
    parser.add_argument("--rooms", type=int, default=6)
    parser.add_argument("--cut-every", type=float, default=3.0)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=180)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--generator-nice", type=int, default=0,
                        help="raise this process's priority by N (root) so the hog starves the worker, not the publishers")
    parser.add_argument("--write", action="store_true", help="write the table into docs/benchmarks.md")
    asyncio.run(main(parser.parse_args()))
