"""Benchmark of the control-room wall and the viewer fan-out (loopback only, bounded, stops by itself).

    DATABASE_URL=postgres://... REDIS_URL=redis://127.0.0.1:6379/2 .venv/bin/python bench/wall_bench.py

Phases, all against a real Daphne process (`-e tcp:...:backlog=1024`) on Redis + PostgreSQL:
  A. 200 live rooms x 1 health sample/s published the way the media worker publishes them (Redis pub/sub),
     50 dashboards on /ws/wall/: sample -> dashboard frame latency p50/p99 and lost final states
     (after the last sample every dashboard must show every room's final value).
     During A, one dashboard clicks (send_host_cue, the full action path without the media switch):
     click -> acknowledgement round trip p50/p99.
  B. 10,000 viewer sockets on /ws/live/<room>/: pin an announcement, time until the last socket has it
     (5 rounds); server memory per idle socket (Daphne RSS before/after the sockets).
  C. Baseline in the same run: a bare `websockets` server process with 10,000 clients,
     `websockets.broadcast()` of the same message; time to the last socket, memory per socket.
Prints the figures and writes docs/benchmarks/wall.md.
"""

import argparse
import asyncio
import collections
import gc
import json
import math
import os
import re
import resource
import statistics
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlroom.settings")
os.environ.setdefault("CHANNEL_LAYER_PREFIX", "cr_wall_bench")

import django  # noqa: E402

django.setup()

import websockets  # noqa: E402
from asgiref.sync import sync_to_async  # noqa: E402
from django.conf import settings  # noqa: E402

from streams import cadence  # noqa: E402
from streams.events import publish_health  # noqa: E402

ORIGIN = "http://127.0.0.1"
NOTES_MARKER = "<!-- notes (kept when the benchmark rewrites this file) -->"
ACK_RE = re.compile(r'data-nonce="([0-9a-f]+)" data-outcome="(\w+)"')


def tile_values(frame):
    """(room, primary kbps) of every tile metrics fragment in a frame (str.find: the client must stay cheap)."""
    for chunk in frame.split('id="tile-')[1:]:
        end = chunk.find('-live"')
        if end < 0 or end > 40:
            continue
        i = chunk.find("<dd>")
        j = chunk.find("<", i + 4)
        try:
            yield chunk[:end], int(chunk[i + 4:j])
        except ValueError:
            continue


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu():
    """(busy, total) jiffies of all CPUs, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def pct(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def rss_kb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=30):
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(port)


# --- setup (sync, database) ---------------------------------------------------------------------


def setup_rooms(n_rooms):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.test import Client

    from streams.models import LiveRoom

    for i in range(n_rooms):
        LiveRoom.objects.update_or_create(slug=f"bench-{i:03d}", defaults={
            "name": f"压测直播间 {i:03d}", "merchant": f"商家{i % 20}", "status": LiveRoom.Status.LIVE})
    User = get_user_model()
    user, _ = User.objects.get_or_create(username="bench_ops")
    user.groups.add(Group.objects.get(name="ops"))
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def teardown_rooms():
    from streams.models import LiveRoom

    LiveRoom.objects.filter(slug__startswith="bench-").update(status=LiveRoom.Status.ENDED)


def health(kbps):
    line = {"connected": True, "bitrate_kbps": kbps, "fps": 30, "width": 640, "height": 360, "loss_pct": 0.0,
            "jitter_ms": 3, "last_frame_age_ms": 30, "frozen": False, "black": False, "silent": False,
            "audio_dbfs": -20, "luma": 120, "state": "ok"}
    return {"at": "", "program": {"source": "primary", "viewers": 0, "encode_fps": 30, "bitrate_kbps": 900},
            "lines": {"primary": line, "backup": {**line, "bitrate_kbps": 500}}}


# --- phase A: wall ---------------------------------------------------------------------------------


class Dashboard:
    """One wall websocket, like a browser tab: applies frames, confirms them once a second, and notes when
    it first saw each (room, value) — in epoch time, so tabs in other processes can be compared."""

    def __init__(self, url, cookie):
        self.url, self.cookie = url, cookie
        self.ws = None
        self.last = {}  # room -> last value shown
        self.first_seen = {}  # (room, value) -> (received epoch s, server send epoch ms)
        self.frames = 0
        self.seq_gaps = 0
        self.last_seq = 0
        self.acks = {}
        self.ack_frames = 0
        self.frame_times = []
        self.bytes = 0

    async def run(self, stop):
        async with websockets.connect(self.url, origin=ORIGIN, additional_headers={"Cookie": self.cookie},
                                      max_size=None, open_timeout=30) as ws:
            self.ws = ws
            reported_at = time.monotonic()
            while not stop.is_set():
                if time.monotonic() - reported_at >= 1.0 and self.last_seq:
                    await ws.send(json.dumps({"seen": self.last_seq}))  # like wall.js: flow control
                    reported_at = time.monotonic()
                try:
                    frame = await asyncio.wait_for(ws.recv(), 0.5)
                except asyncio.TimeoutError:
                    continue
                now, received = time.monotonic(), time.time()
                self.frames += 1
                self.bytes += len(frame.encode())
                m = re.search(r'data-seq="(\d+)" data-sent="(\d+)"', frame[:200])
                seq = int(m.group(1)) if m else 0
                sent_epoch_ms = int(m.group(2)) if m else 0
                if self.last_seq and seq != self.last_seq + 1:
                    self.seq_gaps += 1
                self.last_seq = seq
                if 'data-outcome="' in frame:
                    self.ack_frames += 1
                else:
                    self.frame_times.append(sent_epoch_ms / 1000)  # server send time (data-sent)
                for slug, value in tile_values(frame):
                    self.last[slug] = value
                    self.first_seen.setdefault((slug, value), (received, sent_epoch_ms))  # re-renders count once
                for nonce, outcome in ACK_RE.findall(frame):
                    self.acks[nonce] = (now, outcome)

    def result(self):
        return {"last": self.last, "first_seen": self.first_seen, "frames": self.frames, "seq_gaps": self.seq_gaps,
                "frame_times": self.frame_times, "bytes": self.bytes}


def dashboards_process(url, cookie, count, conn):
    """Run `count` dashboards in a process of their own (a real wall is one browser per screen: one
    Python loop parsing 50 tabs' frames would add its own queueing to the latency). Reports when they
    are connected, runs until told to stop, then sends back what each saw."""
    async def main():
        stop = asyncio.Event()
        dashboards = [Dashboard(url, cookie) for _ in range(count)]
        tasks = [asyncio.create_task(d.run(stop)) for d in dashboards]
        while not all(d.ws for d in dashboards):
            await asyncio.sleep(0.05)
        conn.send("connected")
        gc.disable()  # a load generator's own collection pause would count against the server
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)
        gc.enable()
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        conn.send([d.result() for d in dashboards])

    asyncio.run(main())


DASHBOARD_PROCESSES = 7  # + the clicking dashboard in the load generator itself
WARMUP_S = 2


async def phase_wall(base_ws, cookie, n_rooms, n_dash, seconds, clicks, daphne_pid, producer):
    import multiprocessing

    loop = asyncio.get_running_loop()
    sent_epoch, stop = {}, asyncio.Event()
    url = base_ws + "/ws/wall/"
    clicker = Dashboard(url, cookie)
    clicker_task = asyncio.create_task(clicker.run(stop))
    spawn = multiprocessing.get_context("spawn")
    workers = []
    others = n_dash - 1
    for k in range(min(DASHBOARD_PROCESSES, others)):
        count = others // DASHBOARD_PROCESSES + (1 if k < others % DASHBOARD_PROCESSES else 0)
        parent, child = spawn.Pipe()
        proc = spawn.Process(target=dashboards_process, args=(url, cookie, count, child), daemon=True)
        proc.start()
        workers.append((proc, parent))
    for _proc, conn in workers:
        assert await loop.run_in_executor(None, conn.recv) == "connected"
    while clicker.ws is None:
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)  # snapshots delivered
    final = {}
    click_rtts, click_fail = [], 0

    async def click_loop():
        nonlocal click_fail
        await asyncio.sleep(1.0)
        for i in range(clicks):
            nonce = uuid.uuid4().hex
            t0 = time.monotonic()
            await clicker.ws.send(json.dumps({"action": "send_host_cue", "room": "bench-000", "text": f"压测提词 {i}",
                                              "nonce": nonce, "issued_at": time.time() * 1000}))
            deadline = t0 + 3
            while nonce not in clicker.acks and time.monotonic() < deadline:
                await asyncio.sleep(0.002)
            if nonce in clicker.acks and clicker.acks[nonce][1] == "ok":
                click_rtts.append((clicker.acks[nonce][0] - t0) * 1000)
            else:
                click_fail += 1
            await asyncio.sleep(0.1)

    click_task = asyncio.create_task(click_loop())
    gc.disable()  # as in the dashboard processes: no load-generator pauses inside the measured window
    start = time.monotonic()
    loadgen_pids = [os.getpid(), *(proc.pid for proc, _conn in workers)]
    cpu_daphne, cpu_self = cpu_seconds(daphne_pid), sum(cpu_seconds(pid) for pid in loadgen_pids)
    machine_start = machine_cpu()
    value = 1000
    slugs = [f"bench-{i:03d}" for i in range(n_rooms)]
    first = math.floor(time.time()) + 1
    counted_from = first + WARMUP_S  # samples of the first seconds warm the path up and are not counted
    seconds += WARMUP_S
    if producer == "beat":
        # Like the media worker: each room samples once a second at its place on the wall's beat
        # (streams/cadence.py): a quarter of the rooms sample 70-130 ms before each of the four slots.
        schedule = sorted((first + second + cadence.sample_offset(slug), slug)
                          for second in range(seconds) for slug in slugs)
    else:
        # An independent producer off the beat: samples spread evenly over each second.
        schedule = [(first + second + i / n_rooms, slug) for second in range(seconds) for i, slug in enumerate(slugs)]
    position = 0
    while position < len(schedule):
        at = schedule[position][0]
        delay = at - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        sends = []
        while position < len(schedule) and schedule[position][0] == at:
            slug = schedule[position][1]
            position += 1
            value += 1
            # The sample was taken at `at`: latency counts from then, including any wait in this burst.
            if at >= counted_from:
                sent_epoch[(slug, value)] = at * 1000
            final[slug] = value
            sends.append(publish_health(slug, health(value)))  # what the media worker calls
        await asyncio.gather(*sends)
    last_sample = time.time()
    await click_task
    elapsed = time.monotonic() - start
    cpu_daphne = (cpu_seconds(daphne_pid) - cpu_daphne) / elapsed * 100
    cpu_self = (sum(cpu_seconds(pid) for pid in loadgen_pids) - cpu_self) / elapsed * 100
    machine_end = machine_cpu()
    machine_busy = 100 * (machine_end[0] - machine_start[0]) / max(1, machine_end[1] - machine_start[1])
    await asyncio.sleep(3.0)  # the last frames arrive (the figure below says how long they took)
    gc.enable()
    stop.set()
    for _proc, conn in workers:
        conn.send("stop")
    results = [clicker.result()]
    for proc, conn in workers:
        results.extend(await loop.run_in_executor(None, conn.recv))
        proc.join(10)
    await clicker_task
    latencies, server_part, slow = [], [], []
    for r in results:
        for key, (received, server_ms) in r["first_seen"].items():
            sent_ms = sent_epoch.get(key)
            if sent_ms is None:
                continue  # a value from the snapshot or another phase
            latencies.append(received * 1000 - sent_ms)
            server_part.append(server_ms - sent_ms)
            if received * 1000 - sent_ms > 250:
                slow.append((round(sent_ms / 1000 - counted_from, 2), round(received * 1000 - sent_ms)))
    lost = sum(1 for r in results for slug, v in final.items() if r["last"].get(slug) != v)
    shown_final = [r["first_seen"][(slug, v)][0] for r in results for slug, v in final.items()
                   if (slug, v) in r["first_seen"]]
    shown = len(latencies)
    expected = len(sent_epoch) * n_dash
    return {
        "producer": producer, "rooms": n_rooms, "dashboards": len(results), "seconds": seconds - WARMUP_S,
        "samples": len(sent_epoch), "dashboard_processes": len(workers) + 1,
        "server_p50_ms": pct(server_part, 50), "server_p99_ms": pct(server_part, 99),
        "frame_p50_ms": pct(latencies, 50), "frame_p99_ms": pct(latencies, 99), "frame_max_ms": max(latencies),
        "deliveries_shown": shown, "deliveries_expected": expected,
        "superseded_pct": 100 * (1 - shown / expected) if expected else 0,
        "lost_final_states": lost, "settle_s": max(shown_final, default=last_sample) - last_sample,
        "frames_per_dashboard_per_s": statistics.mean(
            (len(r["frame_times"]) - 2) / (r["frame_times"][-1] - r["frame_times"][1]) for r in results),
        # deliveries over 250 ms, counted per second of the run: a steady tail or one bad moment?
        "slow_by_second": dict(sorted(collections.Counter(int(t) for t, _ms in slow).items())),
        "seq_gaps": sum(r["seq_gaps"] for r in results),
        "min_frame_gap_ms": min(min((b - a for a, b in zip(r["frame_times"][1:], r["frame_times"][2:])), default=1)
                                * 1000 for r in results),
        "daphne_cpu_pct": cpu_daphne, "loadgen_cpu_pct": cpu_self, "machine_busy_pct": machine_busy,
        "load_average": os.getloadavg()[0],
        "kb_per_dashboard_per_s": statistics.mean(r["bytes"] for r in results) / 1024 / (seconds + 4),
        "click_p50_ms": pct(click_rtts, 50), "click_p99_ms": pct(click_rtts, 99), "clicks_ok": len(click_rtts),
        "clicks_failed": click_fail,
    }


# --- phase B / C: viewer fan-out ----------------------------------------------------------------------


async def open_sockets(url, n, cookie_fmt=None, concurrency=200):
    sockets = [None] * n
    sem = asyncio.Semaphore(concurrency)

    async def one(i):
        async with sem:
            headers = {"Cookie": cookie_fmt.format(i)} if cookie_fmt else {}
            for attempt in range(5):
                try:
                    sockets[i] = await websockets.connect(url, origin=ORIGIN, additional_headers=headers,
                                                          open_timeout=60, max_size=None, ping_interval=None)
                    return
                except Exception:  # noqa: BLE001 - handshake storm: retry a few times
                    await asyncio.sleep(0.2 * (attempt + 1))

    t0 = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(n)))
    opened = [s for s in sockets if s is not None]
    return opened, time.monotonic() - t0


async def drain_initial(sockets):
    async def one(ws):
        try:
            await asyncio.wait_for(ws.recv(), 10)
        except Exception:  # noqa: BLE001
            pass

    await asyncio.gather(*(one(ws) for ws in sockets))


async def time_to_last(sockets, trigger, marker, timeout=30):
    """Fire `trigger()`, return (seconds until the last socket received a message containing marker, missed)."""
    arrivals = []

    async def one(ws):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                msg = await asyncio.wait_for(ws.recv(), deadline - time.monotonic())
            except Exception:  # noqa: BLE001
                return
            if marker in msg:
                arrivals.append(time.monotonic())
                return

    waiters = [asyncio.create_task(one(ws)) for ws in sockets]
    await asyncio.sleep(0.2)
    gc.disable()  # 10,000 client sockets: a collection here paused this process for up to 0.9 s
    t0 = time.monotonic()
    try:
        await trigger()
        await asyncio.gather(*waiters)
    finally:
        gc.enable()
    missed = len(sockets) - len(arrivals)
    return (max(arrivals) - t0 if arrivals else float("nan")), (statistics.median(arrivals) - t0 if arrivals else 0), missed


async def close_all(sockets):
    async def one(ws):
        try:
            await asyncio.wait_for(ws.close(), 5)
        except Exception:  # noqa: BLE001
            pass

    for i in range(0, len(sockets), 1000):
        await asyncio.gather(*(one(ws) for ws in sockets[i:i + 1000]))


async def phase_fanout(base_ws, daphne, n_viewers, rounds):
    from streams.models import LiveRoom
    from streams.viewer_services import pin_announcement, unpin_announcement

    from django.utils import timezone

    daphne_pid = daphne.pid
    room = await sync_to_async(LiveRoom.objects.get)(slug="bench-000")
    started_at = timezone.now()
    rss_before = rss_kb(daphne_pid)
    sockets, handshake_s = await open_sockets(base_ws + "/ws/live/bench-000/", n_viewers, "cr_device=benchdev{:06d}")
    await drain_initial(sockets)
    # Measure the idle state: wait until the batched presence flush has recorded every join.
    from streams.models import ViewerSession

    recorded_at = time.monotonic()
    while time.monotonic() - recorded_at < 60:
        open_sessions = await sync_to_async(
            ViewerSession.objects.filter(room=room, left_at__isnull=True, joined_at__gte=started_at).count)()
        if open_sessions >= len(sockets):
            break
        await asyncio.sleep(0.5)
    presence_s = time.monotonic() - recorded_at
    await asyncio.sleep(2)
    rss_after = rss_kb(daphne_pid)
    log_offset = daphne.log_path.stat().st_size
    results = []
    for r in range(rounds):
        marker = f"压测公告{r}-{uuid.uuid4().hex[:6]}"

        published = {}

        async def trigger(marker=marker, published=published):
            t0 = time.monotonic()
            await sync_to_async(pin_announcement)(room=room, actor=None, text=f"家人们稍安勿躁 {marker}")
            published["s"] = time.monotonic() - t0  # transaction + audit + render + PUBLISH, in this process

        last, median, missed = await time_to_last(sockets, trigger, marker)
        results.append((last, median, missed, published.get("s", float("nan"))))
        await asyncio.sleep(1.0)
    pauses = gc_pauses(daphne.log_path, log_offset)  # from the first round to the last
    await sync_to_async(unpin_announcement)(room=room, actor=None)
    await close_all(sockets)
    return {"gc_pauses": pauses, "gc_thresholds": daphne.gc,
        "viewers": len(sockets), "requested": n_viewers, "handshake_s": handshake_s,
        "last_s": [r[0] for r in results], "median_s": [r[1] for r in results], "missed": [r[2] for r in results],
        "mem_per_socket_kb": (rss_after - rss_before) / max(1, len(sockets)),
        "publish_s": [r[3] for r in results], "presence_recorded_s": presence_s,
    }


BASELINE_SERVER = textwrap.dedent('''
    import asyncio, gc, resource, sys, websockets
    if sys.argv[3] != "python":  # the same garbage-collector settings as our web process (fair comparison)
        gc.set_threshold(*map(int, sys.argv[3].split(",")))
    gc.collect(); gc.freeze()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE); resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    clients = set()
    async def handler(ws):
        if ws.request.path == "/control":
            async for msg in ws:
                websockets.broadcast(clients, msg)
            return
        clients.add(ws)
        try:
            await ws.wait_closed()
        finally:
            clients.discard(ws)
    async def main():
        async with websockets.serve(handler, "127.0.0.1", int(sys.argv[1]), backlog=1024, max_size=None,
                                    ping_interval=None):
            await asyncio.sleep(float(sys.argv[2]))
    asyncio.run(main())
''')


async def phase_baseline(n_viewers, rounds, message_len):
    port = free_port()
    thresholds = ",".join(map(str, settings.GC_THRESHOLDS)) if settings.GC_THRESHOLDS else "python"
    proc = subprocess.Popen([sys.executable, "-c", BASELINE_SERVER, str(port), "600", thresholds],
                            preexec_fn=raise_nofile)
    try:
        wait_port(port)
        rss_before = rss_kb(proc.pid)
        sockets, handshake_s = await open_sockets(f"ws://127.0.0.1:{port}/viewer", n_viewers)
        await asyncio.sleep(2)
        rss_after = rss_kb(proc.pid)
        control = await websockets.connect(f"ws://127.0.0.1:{port}/control", max_size=None)
        results = []
        for r in range(rounds):
            marker = f"baseline{r}-{uuid.uuid4().hex[:6]}"
            body = (marker + " ").ljust(message_len, "x")

            async def trigger(body=body):
                await control.send(body)

            results.append(await time_to_last(sockets, trigger, marker))
            await asyncio.sleep(1.0)
        await control.close()
        await close_all(sockets)
        return {"viewers": len(sockets), "handshake_s": handshake_s, "last_s": [r[0] for r in results],
                "median_s": [r[1] for r in results], "missed": [r[2] for r in results],
                "mem_per_socket_kb": (rss_after - rss_before) / max(1, len(sockets))}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# --- main -------------------------------------------------------------------------------------------


def start_daphne(port, log_name="wall_bench_daphne.log", **env_overrides):
    env = dict(os.environ, **env_overrides)
    env.setdefault("GC_THRESHOLDS", ",".join(map(str, settings.GC_THRESHOLDS or ())) or "python")
    env.setdefault("LOG_LEVEL", "WARNING")
    log_path = ROOT / "bench" / log_name
    proc = subprocess.Popen([sys.executable, "-m", "daphne", "-e", f"tcp:port={port}:interface=127.0.0.1:backlog=1024",
                             "controlroom.asgi:application"], cwd=ROOT, env=env, stdout=open(log_path, "w"),
                            stderr=subprocess.STDOUT, preexec_fn=raise_nofile)
    proc.log_path = log_path
    proc.gc = env["GC_THRESHOLDS"]
    return proc


def stop_daphne(proc):
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


GC_PAUSE_RE = re.compile(r"gc pause: generation (\d) collection took (\d+) ms")


def gc_pauses(log_path, since_offset):
    """The server's collections of ≥ GC_PAUSE_WARNING_MS logged after byte offset `since_offset`: [(gen, ms)]."""
    with open(log_path, "rb") as log:
        log.seek(since_offset)
        text = log.read().decode(errors="replace")
    return [(int(g), int(ms)) for g, ms in GC_PAUSE_RE.findall(text)]


def fanout_row(design, r):
    pauses = r.get("gc_pauses")  # None: not measured (the baseline server logs none)
    return (f"| {design} | {r['viewers']} | {r['handshake_s']:.1f} s | "
            f"{statistics.median(r['last_s']) * 1000:.0f} ms | {', '.join(f'{x * 1000:.0f}' for x in r['last_s'])} ms | "
            f"{statistics.median(r['median_s']) * 1000:.0f} ms | {sum(r['missed'])} | {r['mem_per_socket_kb']:.1f} KB | "
            + ("– |" if pauses is None else f"{len(pauses)}, max {max(ms for _g, ms in pauses)} ms |" if pauses else "0 |"))


def write_report(a, a_off, b, b_python_gc, c, args):
    ratio = statistics.median(b["last_s"]) / statistics.median(c["last_s"]) if c and b else float("nan")
    lines = [
        "# Wall and viewer fan-out benchmark",
        "",
        f"`bench/wall_bench.py` (run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}), 2-core machine, "
        "Daphne + channels_redis + PostgreSQL, load generator in the same machine (loopback only). "
        f"Load average at the end of the run: {os.getloadavg()[0]:.1f} (the machine is shared with other work, "
        "so figures are upper bounds).",
        "",
        "## Wall: health samples to dashboards",
        "",
        "Two producers in the same run, same Daphne, 50 dashboards (websocket clients spread over "
        f"{a['dashboard_processes']} processes, as a wall is one browser per screen; one of them clicks). *On the beat* is how the media "
        "worker samples (streams/cadence.py: each room once a second, just before one of the wall's four "
        "250 ms frame slots). *Off the beat* spreads the samples evenly over each second, like a producer that "
        "ignores the beat: a sample then waits for the next slot, up to 250 ms, before any work is done.",
        "",
        "| figure | on the beat (media worker) | off the beat (comparison) | target |",
        "|---|---|---|---|",
        f"| rooms × samples/s | {a['rooms']} × 1 for {a['seconds']} s ({a['samples']} samples) | "
        f"{a_off['rooms']} × 1 for {a_off['seconds']} s ({a_off['samples']} samples) | 200 × 1 |",
        f"| dashboards | {a['dashboards']} | {a_off['dashboards']} | 50 |",
        f"| sample → frame latency p50 | {a['frame_p50_ms']:.0f} ms | {a_off['frame_p50_ms']:.0f} ms | |",
        f"| sample → frame latency p99 | {a['frame_p99_ms']:.0f} ms (max {a['frame_max_ms']:.0f}) | "
        f"{a_off['frame_p99_ms']:.0f} ms (max {a_off['frame_max_ms']:.0f}) | ≤ 250 ms |",
        f"| of which until the server hands the frame to the socket p50 / p99 | "
        f"{a['server_p50_ms']:.0f} / {a['server_p99_ms']:.0f} ms | {a_off['server_p50_ms']:.0f} / "
        f"{a_off['server_p99_ms']:.0f} ms | |",
        f"| lost final states (dashboard × room), 15 s after the last sample | {a['lost_final_states']} | "
        f"{a_off['lost_final_states']} | 0 |",
        f"| time after the last sample until every dashboard showed every final state | {a['settle_s'] * 1000:.0f} ms | "
        f"{a_off['settle_s'] * 1000:.0f} ms | |",
        f"| samples superseded before a frame | {a['superseded_pct']:.2f} % | {a_off['superseded_pct']:.2f} % | "
        "(coalescing) |",
        f"| tile frames per dashboard per second (server send times, after the snapshot) | "
        f"{a['frames_per_dashboard_per_s']:.2f} | {a_off['frames_per_dashboard_per_s']:.2f} | ≤ 4 |",
        f"| smallest gap between two tile frames sent to one dashboard (server send times) | "
        f"{a['min_frame_gap_ms']:.0f} ms | {a_off['min_frame_gap_ms']:.0f} ms | one frame per 250 ms slot, ≥ 200 ms apart |",
        f"| sequence gaps | {a['seq_gaps']} | {a_off['seq_gaps']} | 0 |",
        f"| CPU: Daphne / load generator (50 dashboards + sample sender), % of one core | "
        f"{a['daphne_cpu_pct']:.0f} % / {a['loadgen_cpu_pct']:.0f} % | {a_off['daphne_cpu_pct']:.0f} % / "
        f"{a_off['loadgen_cpu_pct']:.0f} % | |",
        f"| whole machine busy (both cores), load average | {a['machine_busy_pct']:.0f} %, {a['load_average']:.1f} | "
        f"{a_off['machine_busy_pct']:.0f} %, {a_off['load_average']:.1f} | |",
        f"| ratio of p99 latency, on / off the beat | **{a['frame_p99_ms'] / a_off['frame_p99_ms']:.2f}×** | | |",
        f"| click → ack (send_host_cue, full action path, under the load above) p50 / p99 | "
        f"{a['click_p50_ms']:.0f} / {a['click_p99_ms']:.0f} ms ({a['clicks_ok']} ok, {a['clicks_failed']} failed) | "
        "p99 ≤ 150 ms + media switch |",
        "",
        "The media switch itself (first frame of the new source) is measured by the media worker benchmark; "
        "a wall click on \"cut to backup\" adds it to the figure above.",
        "",
        "## Announcement fan-out to viewer sockets",
        "",
        "| design | sockets | handshakes | time to last socket (p50 of rounds) | all rounds | median socket | missed "
        "| memory per idle socket | server GC pauses ≥ 100 ms during the rounds |",
        "|---|---|---|---|---|---|---|---|---|",
        fanout_row(f"ours: Daphne, one Redis SUBSCRIBE per process, local socket set (GC thresholds {b['gc_thresholds']})",
                   b),
        *([fanout_row("ours, the same code on Python's default GC thresholds (comparison)", b_python_gc)]
          if b_python_gc else []),
        fanout_row("baseline: bare `websockets.broadcast()` (same GC settings as ours)", c),
        "",
        f"Ratio ours / baseline (time to last socket): **{ratio:.2f}×**. Target: ≤ 2 s to the last socket.",
        "Our time starts before the service call (transaction, audit row, render once, Redis PUBLISH); that call took "
        f"{', '.join(f'{x * 1000:.0f}' for x in b['publish_s'])} ms of it. All {b['viewers']} joins were recorded "
        f"as ViewerSession rows by the batched presence flush {b['presence_recorded_s']:.1f} s after the last "
        "handshake; the sockets were idle (heartbeats only) during the rounds.",
        "",
        f"Arguments: {vars(args)}",
    ]
    out = ROOT / "docs" / "benchmarks" / "wall.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    notes = ""
    if out.exists() and NOTES_MARKER in out.read_text():
        notes = out.read_text().split(NOTES_MARKER, 1)[1]  # hand-written notes survive a re-run
    out.write_text("\n".join(lines) + "\n\n" + NOTES_MARKER + notes)
    print("\n".join(lines))


async def main(args):
    raise_nofile()
    assert settings.REDIS_URL, "the benchmark needs REDIS_URL (channels_redis, real pub/sub)"
    cookie = await sync_to_async(setup_rooms)(args.rooms)
    port = free_port()
    daphne = start_daphne(port)
    try:
        wait_port(port)
        base_ws = f"ws://127.0.0.1:{port}"
        a = await phase_wall(base_ws, cookie, args.rooms, args.dashboards, args.seconds, args.clicks, daphne.pid,
                             producer="beat")
        print("wall (samples on the beat):", a, flush=True)
        a_off = await phase_wall(base_ws, cookie, args.rooms, args.dashboards, args.seconds, 0, daphne.pid,
                                 producer="spread")
        print("wall (samples off the beat):", a_off, flush=True)
        b = await phase_fanout(base_ws, daphne, args.viewers, args.rounds)
        print("fanout:", b, flush=True)
        stop_daphne(daphne)
        b_python_gc = None
        if args.compare_python_gc:
            # The same fan-out from a fresh process left on Python's default collector (the comparison).
            port = free_port()
            daphne = start_daphne(port, "wall_bench_daphne_python_gc.log", GC_THRESHOLDS="python")
            wait_port(port)
            b_python_gc = await phase_fanout(f"ws://127.0.0.1:{port}", daphne, args.viewers, args.rounds)
            print("fanout, Python's default GC:", b_python_gc, flush=True)
    finally:
        stop_daphne(daphne)
        await sync_to_async(teardown_rooms)()
    from django.template.loader import render_to_string

    message_len = len(render_to_string("streams/live.html#banner", {"announcement": {"text": "家人们稍安勿躁 " + "x" * 20,
                                                                                     "kind": "info", "pk": 1}}))
    c = await phase_baseline(args.viewers, args.rounds, message_len)
    print("baseline:", c, flush=True)
    write_report(a, a_off, b, b_python_gc, c, args)


# --- phase D: a dense wall (24 rooms) beside the six-room wall, same run -----------------------------


def render_wall(n_rooms, renders=20):
    """GET / (the whole wall page, as the operator's browser asks for it) in-process: median ms and bytes."""
    from django.test import Client

    from streams.models import LiveRoom

    LiveRoom.objects.filter(slug__startswith="bench-").update(status=LiveRoom.Status.ENDED)
    cookie = setup_rooms(n_rooms)
    client = Client()
    client.cookies.load(cookie)
    times, size, dense = [], 0, False
    for _ in range(renders):
        t0 = time.perf_counter()
        response = client.get("/", HTTP_HOST="127.0.0.1")
        times.append((time.perf_counter() - t0) * 1000)
        body = response.content.decode()
        size, dense = len(body.encode()), 'class="wall-grid dense"' in body
    return {"rooms": n_rooms, "render_p50_ms": pct(times, 50), "render_max_ms": max(times), "page_kb": size / 1024,
            "dense": dense}, cookie


async def main_density(args):
    """The density figure: the 24-room wall (dense by default) beside the six-room wall, in the same run:
    page render, then pushes to `--dashboards` dashboards (sample -> frame latency, bytes per dashboard)."""
    raise_nofile()
    assert settings.REDIS_URL, "the benchmark needs REDIS_URL (channels_redis, real pub/sub)"
    runs = {}
    try:
        for n_rooms in (6, 24):
            render, cookie = await sync_to_async(render_wall)(n_rooms)
            port = free_port()
            daphne = start_daphne(port, f"wall_bench_density_{n_rooms}.log")
            try:
                wait_port(port)
                push = await phase_wall(f"ws://127.0.0.1:{port}", cookie, n_rooms, args.dashboards, args.seconds, 0,
                                        daphne.pid, producer="beat")
            finally:
                stop_daphne(daphne)
            runs[n_rooms] = (render, push)
            print(n_rooms, "rooms:", render, {k: push[k] for k in (
                "frame_p50_ms", "frame_p99_ms", "lost_final_states", "kb_per_dashboard_per_s", "daphne_cpu_pct",
                "machine_busy_pct")}, flush=True)
    finally:
        await sync_to_async(teardown_rooms)()
    rows = ["| wall | page render p50 (max) | page | dense | dashboards | sample → frame p50 / p99 | lost final states "
            "| pushed per dashboard | Daphne CPU | machine busy |", "|---|---|---|---|---|---|---|---|---|---|"]
    for n_rooms, (render, push) in runs.items():
        rows.append(f"| {n_rooms} rooms{' (baseline)' if n_rooms == 6 else ''} | {render['render_p50_ms']:.0f} ms "
                    f"({render['render_max_ms']:.0f} ms) | {render['page_kb']:.0f} KB | {'yes' if render['dense'] else 'no'} "
                    f"| {push['dashboards']} | {push['frame_p50_ms']:.0f} / {push['frame_p99_ms']:.0f} ms "
                    f"| {push['lost_final_states']} | {push['kb_per_dashboard_per_s']:.1f} KB/s "
                    f"| {push['daphne_cpu_pct']:.0f} % | {push['machine_busy_pct']:.0f} % |")
    print("\n".join(rows))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rooms", type=int, default=200)
    parser.add_argument("--dashboards", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--clicks", type=int, default=100)
    parser.add_argument("--viewers", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-compare-python-gc", dest="compare_python_gc", action="store_false",
                        help="skip the fan-out on a second server left on Python's default GC thresholds")
    parser.add_argument("--density", action="store_true",
                        help="only the density figure: a 24-room wall beside the six-room wall (page render, pushes)")
    parsed = parser.parse_args()
    asyncio.run(main_density(parsed) if parsed.density else main(parsed))
