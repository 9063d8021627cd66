"""Hostile anonymous WHEP clients against a real Daphne + `manage.py mediaworker` (Redis, PostgreSQL), loopback only.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/h_abuse_bench REDIS_URL=redis://127.0.0.1:6379/4 \
    .venv/bin/python bench/whep_abuse_bench.py [--offers 200] [--joins 5] [--reap-wait 90]

Clients use distinct loopback source addresses (127.0.0.0/8 all reach a server on 127.0.0.1), so the server sees
them as different clients by REMOTE_ADDR, as it would in production. Figures, each beside its baseline from the
same run:
- a legitimate viewer's join time (WHEP POST -> first decoded frame at a real aiortc viewer): idle server, just
  after 200 never-connecting offers from ONE address, and after the half-open sessions are gone;
- the same with the 200 offers spread over 200 addresses (per-client limits cannot help there: the per-room cap
  and the engine's reaping of sessions that never connect must);
- how long until the engine no longer holds the half-open sessions (polled with the engine's `health` op);
- an offer with thousands of m-lines (about 1 MiB), and one just under the byte cap with too many m-lines: time
  to refuse, /healthz meanwhile, and the other room's largest frame gap at its viewer during the refusals
  versus an equal idle window.
Writes docs/benchmarks/whep-abuse-latest.md; the summary goes into docs/benchmarks.md by hand.
"""

import argparse
import asyncio
import http.client
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlroom.settings")


class AddressHttp:
    """HTTP from one loopback source address (the server's REMOTE_ADDR); the Http interface of media_support."""

    def __init__(self, port, address):
        self.port, self.address = port, address

    async def request(self, method, path, body=b"", headers=None, content_type="application/sdp"):
        def go():
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30, source_address=(self.address, 0))
            try:
                data = body.encode() if isinstance(body, str) else body
                conn.request(method, path, body=data if method in ("POST", "PATCH") else None,
                             headers={**(headers or {}), "Content-Type": content_type})
                resp = conn.getresponse()
                return resp.status, resp.read().decode("utf-8", "replace"), dict(resp.getheaders())
            finally:
                conn.close()

        return await asyncio.get_running_loop().run_in_executor(None, go)


async def wait_lease(slugs, worker_id, timeout=30):
    from asgiref.sync import sync_to_async

    from streams.models import MediaWorkerLease

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        held = await sync_to_async(lambda: set(MediaWorkerLease.objects.filter(
            room__slug__in=slugs, worker_id=worker_id).values_list("room__slug", flat=True)))()
        if held == set(slugs):
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{worker_id} never leased {slugs}")


async def never_connecting_offer():
    from streams.media import ice

    pc = ice.new_peer_connection()
    pc.addTransceiver("video", direction="recvonly")
    pc.addTransceiver("audio", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()  # nobody will ever answer the server's ICE checks
    return sdp


async def join_time(port, slug, address):
    """WHEP POST -> first decoded frame (s), or the HTTP status if refused."""
    from streams.tests.media_support import Viewer

    viewer = Viewer(AddressHttp(port, address), slug)
    started = time.monotonic()
    try:
        await viewer.start()
    except AssertionError as exc:
        await viewer.close()
        return None, str(exc)[:80]
    try:
        await asyncio.wait_for(viewer.first_frame.wait(), 20)
        took = time.monotonic() - started
    except asyncio.TimeoutError:
        took = None
    await viewer.http.request("DELETE", viewer.location)
    await viewer.close()
    return took, "201"


async def joins(port, slug, address, count):
    times, notes = [], []
    for _ in range(count):
        took, note = await join_time(port, slug, address)
        if took is not None:
            times.append(took * 1000)
        else:
            notes.append(note)
        await asyncio.sleep(0.3)
    return times, notes


def fmt_joins(times, notes, count):
    if not times:
        return f"no viewer joined ({'; '.join(sorted(set(notes)))})"
    text = f"median {statistics.median(times):.0f} ms, max {max(times):.0f} ms ({len(times)}/{count} joined)"
    if notes:
        text += f"; refused: {'; '.join(sorted(set(notes)))}"
    return text


async def engine_viewers(slug):
    from streams.mediaworker import client

    health = await client.call_worker("health", slug, timeout=5)
    return (health.get("program") or {}).get("viewers")


async def flood(port, slug, offer, addresses, count, concurrency=20):
    """`count` WHEP offers that never connect; returns ({status: n}, seconds)."""
    statuses = {}
    queue = list(range(count))
    started = time.monotonic()

    async def one(i):
        status, _, _ = await AddressHttp(port, addresses[i % len(addresses)]).request("POST", f"/whep/{slug}", offer)
        statuses[status] = statuses.get(status, 0) + 1

    while queue:
        batch, queue = queue[:concurrency], queue[concurrency:]
        await asyncio.gather(*(one(i) for i in batch))
    return statuses, time.monotonic() - started


async def wait_reaped(slug, baseline, limit_s):
    """Seconds until the engine holds no more than `baseline` viewers of the room, or None after limit_s."""
    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        if (await engine_viewers(slug) or 0) <= baseline:
            return time.monotonic() - started
        await asyncio.sleep(1.0)
    return None


def p95(values):
    values = sorted(values)
    return values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]


def largest_gap_ms(viewer, start, end):
    times = [t for t, _ in viewer.seen if start <= t <= end]
    return max((b - a for a, b in zip(times, times[1:])), default=float("nan")) * 1000


async def main(args):
    from media_bench import new_room, prepare_process_mode, start_process, stop_process

    await prepare_process_mode()
    from asgiref.sync import sync_to_async

    from conftest import free_port, wait_for_port
    from streams import client_limits
    from streams.models import LiveRoom, MediaWorkerLease
    from streams.tests.media_support import Publisher, Viewer

    client_limits.reset()
    stamp = int(time.time())
    target, other = f"abuse-{stamp}", f"abuse-other-{stamp}"
    await sync_to_async(lambda: LiveRoom.objects.filter(slug__startswith="abuse-").update(status="ended"))()
    await sync_to_async(lambda: MediaWorkerLease.objects.all().delete())()
    rooms = {slug: await sync_to_async(new_room)(slug) for slug in (target, other)}
    env = {**os.environ, "LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT),
           "MEDIA_OUTPUT_WIDTH": "320", "MEDIA_OUTPUT_HEIGHT": "180", "MEDIA_OUTPUT_FPS": "30"}
    port = free_port()
    web = start_process([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                         "controlroom.asgi:application"], env, "bench-abuse-daphne.log")
    worker = start_process([sys.executable, "manage.py", "mediaworker", "--worker-id", "bench-abuse"],
                           env, "bench-abuse-worker.log")
    peers = []
    results = {}
    try:
        wait_for_port(port, proc=web)
        await wait_lease([target, other], "bench-abuse")
        publisher_http = AddressHttp(port, "127.0.0.1")
        for slug, colour in ((target, "red"), (other, "green")):
            peers.append(await Publisher(publisher_http, slug, "primary", rooms[slug].tokens["primary"], colour,
                                         width=320, height=180).start())
        watcher = await Viewer(AddressHttp(port, "127.0.0.9"), other).start()  # the other room's audience
        peers.append(watcher)
        await watcher.wait_for("green", timeout=20)
        await asyncio.sleep(2)
        legit = "127.0.0.3"

        print("baseline: a viewer joins the idle server ...", flush=True)
        await join_time(port, target, "127.0.0.4")  # warm-up: the room's first viewer is not the baseline
        results["idle"] = await joins(port, target, legit, args.joins)
        idle_viewers = await engine_viewers(target) or 0

        offer = await never_connecting_offer()
        print(f"attack 1: {args.offers} never-connecting offers from one address ...", flush=True)
        results["one_flood"] = await flood(port, target, offer, ["127.0.0.2"], args.offers)
        results["one_held"] = await engine_viewers(target)
        results["one_during"] = await joins(port, target, legit, args.joins)
        results["one_reaped"] = await wait_reaped(target, idle_viewers, args.reap_wait)
        results["one_after"] = await joins(port, target, legit, args.joins)

        client_limits.reset()
        print(f"attack 2: {args.offers} never-connecting offers from {args.offers} addresses ...", flush=True)
        spread = [f"127.0.{1 + i // 250}.{1 + i % 250}" for i in range(args.offers)]
        results["many_flood"] = await flood(port, target, offer, spread, args.offers)
        results["many_held"] = await engine_viewers(target)
        results["many_during"] = await joins(port, target, legit, args.joins)
        results["many_reaped"] = await wait_reaped(target, idle_viewers, args.reap_wait)
        results["many_after"] = await joins(port, target, legit, args.joins)

        print("attack 3: offers with thousands of m-lines ...", flush=True)
        section = "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:96 VP8/90000\r\n"
        huge = offer + section * (1_000_000 // len(section))  # ~1 MB, below Django's 2.5 MB body cap
        dense = offer + section * ((30_000 - len(offer)) // len(section))  # under the 32 KB cap, too many m-lines
        idle_start = time.monotonic()
        await asyncio.sleep(args.window)
        results["gap_idle"] = largest_gap_ms(watcher, idle_start, time.monotonic())
        refusals = {"huge": [], "dense": []}
        statuses = {}
        health = []
        attack_start = time.monotonic()
        i = 0
        while time.monotonic() - attack_start < args.window:
            i += 1
            for name, body in (("huge", huge), ("dense", dense)):
                started = time.monotonic()
                status, _, _ = await AddressHttp(port, f"127.0.3.{1 + i % 250}").request("POST", f"/whep/{target}", body)
                refusals[name].append((time.monotonic() - started) * 1000)
                statuses[(name, status)] = statuses.get((name, status), 0) + 1
            started = time.monotonic()
            status, _, _ = await AddressHttp(port, "127.0.0.5").request("GET", "/healthz")
            health.append((status, (time.monotonic() - started) * 1000))
        results["gap_attack"] = largest_gap_ms(watcher, attack_start, time.monotonic())
        results["refusals"], results["refusal_statuses"], results["health"] = refusals, statuses, health
        results["sizes"] = (len(huge), huge.count("m="), len(dense), dense.count("m="))
    finally:
        for peer in peers:
            await peer.close()
        stop_process(worker)
        stop_process(web)

    report(results, args)


def report(r, args):
    n = args.joins
    one_status = ", ".join(f"{k}: {v}" for k, v in sorted(r["one_flood"][0].items()))
    many_status = ", ".join(f"{k}: {v}" for k, v in sorted(r["many_flood"][0].items()))

    def reaped(value):
        return f"{value:.0f} s" if value is not None else f"not within {args.reap_wait} s (no engine-side reaping)"

    huge_len, huge_m, dense_len, dense_m = r["sizes"]
    health_codes = sorted({s for s, _ in r["health"]})
    rows = [
        "| measurement | figure | baseline (same run) |",
        "|---|---|---|",
        f"| viewer join (POST → first decoded frame) | — | idle: {fmt_joins(*r['idle'], n)} |",
        f"| {args.offers} never-connecting offers, one address | answers {one_status} in {r['one_flood'][1]:.1f} s; "
        f"engine then holds {r['one_held']} viewer sessions | — |",
        f"| viewer join just after (another address) | {fmt_joins(*r['one_during'], n)} | idle (above) |",
        f"| half-open sessions gone (one address) | {reaped(r['one_reaped'])} | — |",
        f"| viewer join after that | {fmt_joins(*r['one_after'], n)} | idle (above) |",
        f"| {args.offers} never-connecting offers, {args.offers} addresses | answers {many_status} in "
        f"{r['many_flood'][1]:.1f} s; engine then holds {r['many_held']} viewer sessions | — |",
        f"| viewer join just after | {fmt_joins(*r['many_during'], n)} | idle (above) |",
        f"| half-open sessions gone ({args.offers} addresses) | {reaped(r['many_reaped'])} | — |",
        f"| viewer join after that | {fmt_joins(*r['many_after'], n)} | idle (above) |",
        f"| refuse an offer of {huge_len / 1e6:.1f} MB with {huge_m} m-lines | median "
        f"{statistics.median(r['refusals']['huge']):.1f} ms, p95 {p95(r['refusals']['huge']):.1f} ms, "
        f"max {max(r['refusals']['huge']):.1f} ms "
        f"({len(r['refusals']['huge'])} tries) | — |",
        f"| refuse an offer of {dense_len / 1e3:.0f} KB with {dense_m} m-lines | median "
        f"{statistics.median(r['refusals']['dense']):.1f} ms, p95 {p95(r['refusals']['dense']):.1f} ms, "
        f"max {max(r['refusals']['dense']):.1f} ms | — |",
        f"| other room's largest frame gap at its viewer, {args.window:.0f} s | {r['gap_attack']:.0f} ms during the "
        f"refusals | {r['gap_idle']:.0f} ms in an idle window |",
        f"| /healthz during the refusals | statuses {health_codes}, median "
        f"{statistics.median(ms for _, ms in r['health']):.1f} ms, max {max(ms for _, ms in r['health']):.1f} ms | — |",
    ]
    statuses = ", ".join(f"{name} → {status}: {count}" for (name, status), count in sorted(r["refusal_statuses"].items()))
    table = "\n".join(rows)
    load = os.getloadavg()
    text = (f"# WHEP abuse benchmark\n\n`bench/whep_abuse_bench.py` run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: "
            "real Daphne + one `manage.py mediaworker` (Redis, PostgreSQL), output 320x180@30, loopback only; each "
            "client its own 127.x source address. Load average at the end "
            f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} on {os.cpu_count()} cores shared with other work.\n\n"
            f"{table}\n\nRefusal statuses: {statuses}.\n")
    print()
    print(text)
    doc = ROOT / "docs" / "benchmarks" / "whep-abuse-latest.md"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text)
    print(f"written to {doc.relative_to(ROOT)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--offers", type=int, default=200)
    parser.add_argument("--joins", type=int, default=5)
    parser.add_argument("--reap-wait", type=int, default=90)
    parser.add_argument("--window", type=float, default=5.0)
    asyncio.run(main(parser.parse_args()))
