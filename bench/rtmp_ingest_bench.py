"""RTMP ingest benchmark and soak: encoders → ingest edge → media engine → platform, measured at the platform.

    .venv/bin/python bench/rtmp_ingest_bench.py [--changes 10] [--switches 10]        # latency figures
    .venv/bin/python bench/rtmp_ingest_bench.py --soak-minutes 10                     # soak with faults

Parts: Debian's ffmpeg encoders publish RTMP (H.264 + AAC) to the product's ingest edge (nginx-rtmp, config
from streams.rtmp_edge, here without the on_publish callbacks, which are not on the media path); the media
engine (streams.media, one room, the product's code) pulls both lines from the edge and pushes the program to
a second nginx-rtmp standing in for the platform; an ffmpeg player there reports each frame's colour and
timestamp. Loopback only; every loop is bounded in count and time.

- Added latency, ingest → destination: an encoder fed raw frames by this script changes colour at a known
  instant; latency = that instant → the new colour decoded by the platform's player. Baseline in the same
  run: the same encoder publishing straight to the platform (encoder + nginx + player, no product), so
  "added" = through the product − straight.
- Command → first new-source frame: `switch_source` between a red and a green line; the engine's
  acknowledgement (the new source's first frame handed to the output) and the platform player's first frame
  of the new colour.
- Soak: a fault every 20 s in rotation (primary encoder killed, backup killed, both killed, manual slate,
  the platform restarted), each cleared 10 s later; reports destination disconnects the product caused
  (publishes at the platform beyond one per platform start), the largest timestamp gap and the audio holes
  the player saw, the sources on air, and the process's RSS at the start and the end.
"""

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlroom.settings")

import numpy as np  # noqa: E402

from conftest import free_port  # noqa: E402
from streams import rtmp_edge  # noqa: E402
from streams.media.engine import Hooks, MediaEngine, OutputConfig, RoomSettings  # noqa: E402
from streams.media.rtmp_ingest import RtmpSource  # noqa: E402
from streams.media.rtmp_push import PushTarget  # noqa: E402
from streams.tests.media_support import COLOURS  # noqa: E402
from streams.tests.rtmp_support import FfmpegEncoder, NginxRtmp, PlatformReader  # noqa: E402

FPS = 30
SLUG = "bench"
RED, GREEN = "DC1E1E", "1EC83C"


def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Edge:
    """The product's ingest edge config, without callbacks, under a private prefix."""

    def __init__(self, directory):
        self.dir, self.port = Path(directory), free_port()
        self.proc = None

    def start(self):
        conf = rtmp_edge.write_config(self.dir, callback=None, ingest_port=self.port, platform_port=free_port())
        self.proc = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(self.dir)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        import socket

        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the edge did not start")

    def url(self, name):
        return f"rtmp://127.0.0.1:{self.port}/ingest/{name}"

    def stop(self):
        NginxRtmp.stop(self)


class RawEncoder:
    """ffmpeg encoding raw frames this script writes (so the colour change instant is known) to RTMP."""

    def __init__(self, url, width=640, height=360):
        self.url, self.w, self.h = url, width, height
        self.proc = None
        self.colour = "red"
        self.changed_at = []  # (monotonic, colour) when the first frame of a new colour was written
        self.task = None

    def start(self):
        self.proc = subprocess.Popen(
            ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error",
             "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{self.w}x{self.h}", "-r", str(FPS), "-i", "pipe:0",
             "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
             "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", str(FPS), "-pix_fmt", "yuv420p",
             "-c:a", "aac", "-b:a", "64k", "-f", "flv", self.url],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.task = asyncio.ensure_future(self._write())
        return self

    async def _write(self):
        rng = np.random.default_rng(1)
        pictures = {}
        for name in ("red", "green", "blue"):
            img = np.empty((self.h, self.w, 3), np.uint8)
            img[:] = COLOURS[name]
            pictures[name] = img
        start, n, shown = time.monotonic(), 0, None
        loop = asyncio.get_running_loop()
        while self.proc.poll() is None:
            due = start + n / FPS
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            img = pictures[self.colour].copy()
            img[: self.h // 8, : self.w // 8] = rng.integers(0, 255, (self.h // 8, self.w // 8, 3), np.uint8)
            if shown != self.colour:
                shown = self.colour
                self.changed_at.append((time.monotonic(), shown))
            try:
                await loop.run_in_executor(None, self.proc.stdin.write, img.tobytes())
            except (BrokenPipeError, ValueError):
                return
            n += 1

    def stop(self):
        if self.task:
            self.task.cancel()
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


def platform_nginx(tmp):
    directory = Path(tmp) / "platform"
    directory.mkdir(parents=True, exist_ok=True)
    return NginxRtmp(directory, free_port()).start()


def first_seen(reader, colour, since):
    return next((t for t, c in list(reader.frames) if t >= since and c == colour), None)


def settings_for(edge, platform, **extra):
    return RoomSettings(
        program_source="primary", revert_after_s=5, max_auto_switches=20, auto_switch_window_s=60,
        destinations=(PushTarget(1, "other", platform.url(SLUG)),),
        rtmp_pulls=(RtmpSource("primary", edge.url("bench.primary"), "p"),
                    RtmpSource("backup", edge.url("bench.backup"), "b")), **extra)


class Tally:
    """Folds what the platform's players saw into running figures and lets go of the samples, so the bench
    process's own memory stays flat and its RSS speaks for the engine. (Trimming with `del lst[:n]` is safe
    against the reader threads' appends.)"""

    def __init__(self):
        self.frames = 0
        self.max_gap = 0.0
        self.max_hole = 0.0
        self.colours = {}

    def fold(self, reader):
        ts = reader.video_ts
        n = len(ts)
        if n >= 2:
            self.max_gap = max(self.max_gap, max(b - a for a, b in zip(ts[:n], ts[1:n])))
            self.frames += n - 1
            del ts[:n - 1]
        audio = reader.audio
        n = len(audio)
        if n >= 2:
            self.max_hole = max(self.max_hole, max(abs(b[0] - (a[0] + a[1] / 48000))
                                                   for a, b in zip(audio[:n], audio[1:n])))
            del audio[:n - 1]
        frames = reader.frames
        n = len(frames)
        for _t, colour in frames[:n]:
            self.colours[colour] = self.colours.get(colour, 0) + 1
        del frames[:n]


class BenchHooks(Hooks):
    def __init__(self, settings):
        self.settings = settings
        self.events = []

    async def load_settings(self, room):
        return self.settings

    async def publisher_event(self, room, role, action, detail):
        self.events.append((time.monotonic(), role, action))

    async def auto_switch(self, room, ack, trigger):
        self.events.append((time.monotonic(), "program", f"auto {ack.get('from')}→{ack.get('to')} ({trigger})"))


def config(push_w, push_h):
    return OutputConfig(width=160, height=120, thumbnail_every_s=0, push_width=push_w, push_height=push_h,
                        push_video_bitrate=2_500_000 if push_h >= 720 else 800_000)


async def wait_line(room, role, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if room.lines[role].has_picture:
            return True
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{role} never had a picture")


async def latency(args, tmp):
    edge = Edge(Path(tmp) / "edge").start()
    platform = platform_nginx(tmp)
    encoders = []
    try:
        # Baseline: the encoder straight to the platform
        direct = RawEncoder(platform.url("direct")).start()
        encoders.append(direct)
        reader = PlatformReader(platform.url("direct")).start()
        base = await colour_changes(direct, reader, args.changes)
        reader.stop()
        direct.stop()

        # Through the product: encoder → edge → engine (pull, program, push) → platform
        hooks = BenchHooks(None)
        engine = MediaEngine(hooks, config(args.push_width, args.push_height))
        primary = RawEncoder(edge.url("bench.primary")).start()
        backup = FfmpegEncoder(edge.url("bench.backup"), GREEN, 660, size="640x360").start()
        encoders += [primary, backup]
        hooks.settings = settings_for(edge, platform, auto_failover=False)
        room = await engine.room(SLUG)
        await wait_line(room, "primary")
        await wait_line(room, "backup")
        reader = PlatformReader(platform.url(SLUG)).start()
        through = await colour_changes(primary, reader, args.changes)

        # Command → first frame of the new source (engine acknowledgement; the platform's player)
        acks, seen = [], []
        for i in range(args.switches):
            target, colour = ("backup", "green") if i % 2 == 0 else ("primary", "blue")
            primary.colour = "blue"
            started = time.monotonic()
            ack = await room.switch_source(target)
            acks.append(ack["latency_ms"])
            await asyncio.sleep(1.5)
            at = first_seen(reader, colour, started)
            if at is not None:
                seen.append((at - started) * 1000)
        reader.stop()
        await engine.shutdown()
    finally:
        for e in encoders:
            e.stop()
        edge.stop()
        platform.stop()
    return base, through, acks, seen


def cpu_s():
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def pull_cpu(args, tmp):
    """This process's CPU (% of a core) for one room pulling 0, 1 and 2 RTMP lines (720p30 H.264 + AAC from
    ffmpeg), with no push destination: the cost of the pull (demux, decode, analysis) beside the idle room."""
    edge = Edge(Path(tmp) / "edge-cpu").start()
    encoders = [FfmpegEncoder(edge.url(f"cpu.{role}"), colour, 440, size="1280x720").start()
                for role, colour in (("primary", RED), ("backup", GREEN))]
    results = []
    try:
        for pulls in (0, 1, 2):
            sources = tuple(RtmpSource(role, edge.url(f"cpu.{role}"), role) for role in ("primary", "backup")[:pulls])
            hooks = BenchHooks(RoomSettings(rtmp_pulls=sources))
            engine = MediaEngine(hooks, config(args.push_width, args.push_height))
            room = await engine.room(f"cpu{pulls}")
            for source in sources:
                await wait_line(room, source.role)
            await asyncio.sleep(2)
            before, started = cpu_s(), time.monotonic()
            seqs = {role: room.lines[role].seq for role in ("primary", "backup")}
            await asyncio.sleep(args.seconds)
            elapsed = time.monotonic() - started
            fps = [(room.lines[s.role].seq - seqs[s.role]) / elapsed for s in sources]
            results.append((pulls, (cpu_s() - before) / elapsed * 100, fps))
            await engine.shutdown()
    finally:
        for e in encoders:
            e.stop()
        edge.stop()
    return results


async def colour_changes(encoder, reader, changes):
    await asyncio.sleep(0.5)
    deadline = time.monotonic() + 20
    while first_seen(reader, "red", 0) is None and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    out = []
    for i in range(changes):
        colour = ("blue", "red")[i % 2]
        encoder.colour = colour
        await asyncio.sleep(1.5)
        at = next((t for t, c in reversed(encoder.changed_at) if c == colour), None)
        seen = first_seen(reader, colour, at) if at else None
        if seen is not None:
            out.append((seen - at) * 1000)
    return out


def summary(values):
    if not values:
        return "none seen"
    v = sorted(values)
    return f"median {v[len(v) // 2]:.0f} ms, p90 {v[int(len(v) * 0.9) - 1 if len(v) >= 10 else -1]:.0f} ms, " \
           f"max {v[-1]:.0f} ms (n={len(v)})"


async def soak(args, tmp):
    edge = Edge(Path(tmp) / "edge").start()
    platform = platform_nginx(tmp)
    hooks = BenchHooks(None)
    engine = MediaEngine(hooks, config(args.push_width, args.push_height))
    hooks.settings = settings_for(edge, platform)
    enc = {"primary": FfmpegEncoder(edge.url("bench.primary"), RED, 440, size="640x360").start(),
           "backup": FfmpegEncoder(edge.url("bench.backup"), GREEN, 660, size="640x360").start()}
    colours = {"primary": RED, "backup": GREEN}
    readers, platform_starts = [], 1
    try:
        room = await engine.room(SLUG)
        await wait_line(room, "primary")
        await wait_line(room, "backup")
        readers.append(PlatformReader(platform.url(SLUG)).start())
        await asyncio.sleep(5)
        tally = Tally()
        tally.fold(readers[0])
        rss_start = rss_mb()
        print(f"soak: {args.soak_minutes:g} min, a fault every 20 s; RSS at start {rss_start:.0f} MB", flush=True)
        faults = ("primary killed", "backup killed", "both killed", "slate", "platform restarted")
        start = time.monotonic()
        n = 0
        while time.monotonic() - start < args.soak_minutes * 60:
            fault = faults[n % len(faults)]
            n += 1
            if fault.endswith("killed"):
                roles = ("primary", "backup") if fault.startswith("both") else (fault.split()[0],)
                for role in roles:
                    enc[role].kill()
            elif fault == "slate":
                await room.switch_source("slate")
            else:
                platform.stop()
                platform.start()
                platform_starts += 1
                readers.append(PlatformReader(platform.url(SLUG)).start())
            await asyncio.sleep(10)
            if fault.endswith("killed"):
                for role in roles:
                    enc[role] = FfmpegEncoder(edge.url(f"bench.{role}"), colours[role], 440,
                                              size="640x360").start()
            elif fault == "slate":
                try:
                    await room.end_slate()
                except Exception as exc:  # noqa: BLE001 - reported, the soak goes on
                    print(f"  end_slate refused: {exc}", flush=True)
            await asyncio.sleep(10)
            for r in readers:
                tally.fold(r)
            h = room.push.health()[0]
            print(f"  {time.monotonic() - start:6.0f} s  {fault:<19} program {room.source:<7} "
                  f"push {h['state']} reconnects {h['reconnects']} dropped {h['dropped_frames']}  "
                  f"RSS {rss_mb():.0f} MB", flush=True)
        rss_end = rss_mb()
        # platform restarts each force one new publish; anything beyond that the product caused
        publishes = len(__import__("re").findall(rf"publish: name='{SLUG}'", (platform.dir / "error.log").read_text()))
        for r in readers:
            tally.fold(r)
        print(f"faults: {n}; platform starts {platform_starts}; publishes at the platform {publishes} "
              f"→ disconnects caused by the product: {publishes - platform_starts}")
        print(f"largest video timestamp gap {tally.max_gap * 1000:.1f} ms ({tally.max_gap * FPS:.2f} frame durations) "
              f"over {tally.frames} frames; largest audio hole {tally.max_hole * 1000:.1f} ms")
        print(f"RSS start {rss_start:.0f} MB, end {rss_end:.0f} MB")
        print(f"frames seen by the players by colour: {tally.colours}")
    finally:
        for r in readers:
            r.stop()
        await engine.shutdown()
        for e in enc.values():
            e.stop()
        edge.stop()
        platform.stop()


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--changes", type=int, default=10)
    parser.add_argument("--switches", type=int, default=10)
    parser.add_argument("--push-width", type=int, default=1280)
    parser.add_argument("--push-height", type=int, default=720)
    parser.add_argument("--soak-minutes", type=float, default=0)
    parser.add_argument("--seconds", type=float, default=10.0, help="CPU window per case")
    args = parser.parse_args()
    print(f"host: {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; ingest 640x360@30 H.264 from ffmpeg, "
          f"push {args.push_width}x{args.push_height}@30")
    with tempfile.TemporaryDirectory() as tmp:
        if args.soak_minutes:
            await soak(args, tmp)
            return
        base_cpu = None
        for pulls, cpu, fps in await pull_cpu(args, tmp):
            base_cpu = cpu if base_cpu is None else base_cpu
            print(f"room pulling {pulls} RTMP line(s) 720p30: {cpu:.1f} % of a core "
                  f"(+{cpu - base_cpu:.1f} vs none); decoded fps {', '.join(f'{f:.1f}' for f in fps) or '-'}")
        base, through, acks, seen = await latency(args, tmp)
        print(f"colour change at the encoder → platform player, straight (baseline): {summary(base)}")
        print(f"colour change at the encoder → platform player, through the product: {summary(through)}")
        if base and through:
            print(f"added by the product (medians): {sorted(through)[len(through) // 2] - sorted(base)[len(base) // 2]:.0f} ms")
        print(f"switch command → engine ack (first frame of the new source to the output): {summary(acks)}")
        print(f"switch command → first frame of the new source at the platform player: {summary(seen)}")


if __name__ == "__main__":
    asyncio.run(main())
