"""RTMP push benchmark: worker CPU per room for the push, and program → platform latency, same run.

    .venv/bin/python bench/rtmp_bench.py [--seconds 10] [--profiles 720,1080]

CPU: one room's program (a moving 30 fps picture plus 48 kHz audio, offered exactly as the room's pumps
offer it) goes through streams.media.rtmp_push.ProgramPush to 0, 1 and 3 destinations on a private
nginx-rtmp on loopback; the process's CPU time over the window, in % of one core. Baseline = the same
feed with no destination (the pusher idle), in the same run. Figures include nginx? No: nginx and the
readers are other processes; only this process (the worker's share) is measured.

Latency: the program picture changes colour every second; Debian's ffmpeg plays the destination through
nginx-rtmp and reports when the new colour arrives. Latency = change offered → first frame of the new
colour decoded by the reader (so it includes nginx and ffmpeg's own decode: an upper bound on what the
push adds). Loopback only; every loop is bounded in count and time.
"""

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import av  # noqa: E402
import numpy as np  # noqa: E402

from conftest import free_port  # noqa: E402
from streams.media.rtmp_push import ProgramPush, PushProfile, PushTarget  # noqa: E402
from streams.tests.media_support import COLOURS  # noqa: E402
from streams.tests.rtmp_support import NginxRtmp, PlatformReader  # noqa: E402

FPS = 30


def frames(colour, width, height, count=30):
    """A lit picture with texture and a moving block (x264 gets real work, not flat colour)."""
    out = []
    y, x = np.mgrid[0:height, 0:width]
    base = np.zeros((height, width, 3), np.uint8)
    base[:] = COLOURS[colour]
    stripes = ((x // 8 + y // 8) % 2 * 18).astype(np.uint8)
    for i in range(count):
        img = base.copy()
        img[: height // 3] = np.clip(img[: height // 3].astype(int) + stripes[: height // 3, :, None], 0, 255)
        bx = (i * width // count) % max(1, width - width // 8)
        img[height // 3: height // 3 + height // 8, bx: bx + width // 8] = 255
        out.append(av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p"))
    return out


def silence():
    frame = av.AudioFrame.from_ndarray(np.zeros((1, 960 * 2), np.int16), format="s16", layout="stereo")
    frame.sample_rate = 48000
    return frame


def cpu_s():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def feed(push, pictures, seconds, colour_of=None):
    """Offer pictures at 30 fps and 20 ms audio frames, like the room's pumps; returns change times."""
    audio = silence()
    start = time.monotonic()
    n = a = 0
    changes = []
    while (now := time.monotonic()) - start < seconds:
        due_v, due_a = start + n / FPS, start + a * 0.02
        if now >= due_v:
            key = colour_of(n) if colour_of else None
            pics = pictures[key] if key else pictures
            if key and (not changes or changes[-1][1] != key):
                changes.append((time.monotonic(), key))
            push.offer_video(pics[n % len(pics)], "primary")
            n += 1
        if now >= due_a:
            push.offer_audio(audio)
            a += 1
        await asyncio.sleep(max(0.0, min(start + n / FPS, start + a * 0.02) - time.monotonic()))
    return changes


async def cpu_case(nginx, width, height, destinations, seconds, pictures):
    profile = PushProfile(width=width, height=height, fps=FPS, video_bitrate=2_500_000 if height <= 720 else 4_500_000)
    push = ProgramPush("bench", profile)
    push.apply([PushTarget(i, "other", nginx.url(f"cpu{width}-{destinations}-{i}")) for i in range(destinations)])
    await feed(push, pictures, 2.0)  # warm-up: connected, encoder settled
    before_cpu, before = cpu_s(), time.monotonic()
    frames_before = push.frames
    await feed(push, pictures, seconds)
    elapsed = time.monotonic() - before
    cpu = (cpu_s() - before_cpu) / elapsed * 100
    health = push.health()
    fps = (push.frames - frames_before) / elapsed if destinations else 0.0
    push.stop()
    return {"cpu_pct": cpu, "fps": fps, "states": [d["state"] for d in health],
            "dropped": sum(d["dropped_frames"] for d in health), "reconnects": sum(d["reconnects"] for d in health)}


async def latency_case(nginx, width, height, changes_n):
    push = ProgramPush("bench", PushProfile(width=width, height=height, fps=FPS))
    push.apply([PushTarget(1, "other", nginx.url("latency"))])
    pictures = {c: frames(c, width, height, 10) for c in ("red", "green")}
    await feed(push, pictures["red"], 2.0)
    reader = PlatformReader(nginx.url("latency")).start()
    try:
        await reader.wait_for("red", since=0, timeout=15)
        changes = await feed(push, pictures, changes_n + 0.5, colour_of=lambda n: ("green", "red")[(n // FPS) % 2])
        await asyncio.sleep(1.0)
        latencies = []
        for at, colour in changes[1:]:
            seen = next((t for t, c in reader.frames if t >= at and c == colour), None)
            if seen is not None:
                latencies.append((seen - at) * 1000)
        return latencies, len(changes) - 1
    finally:
        reader.stop()
        push.stop()


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--profiles", default="720,1080")
    parser.add_argument("--changes", type=int, default=10)
    args = parser.parse_args()
    sizes = {"720": (1280, 720), "1080": (1920, 1080)}
    with tempfile.TemporaryDirectory() as tmp:
        nginx = NginxRtmp(tmp, free_port()).start()
        try:
            print(f"host: {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; {args.seconds:.0f} s per case")
            print(f"{'profile':>8} {'dest':>4} {'CPU % of a core':>16} {'added vs none':>14} {'out fps':>8} "
                  f"{'dropped':>8} {'reconn':>7}")
            for name in args.profiles.split(","):
                width, height = sizes[name]
                pictures = frames("blue", width, height)
                base = None
                for dests in (0, 1, 3):
                    r = await cpu_case(nginx, width, height, dests, args.seconds, pictures)
                    base = r["cpu_pct"] if base is None else base
                    print(f"{name + 'p30':>8} {dests:>4} {r['cpu_pct']:>16.1f} {r['cpu_pct'] - base:>14.1f} "
                          f"{r['fps']:>8.1f} {r['dropped']:>8} {r['reconnects']:>7}")
            latencies, n = await latency_case(nginx, 1280, 720, args.changes)
            if latencies:
                latencies.sort()
                p50 = latencies[len(latencies) // 2]
                print(f"latency 720p30, program change → platform reader ({len(latencies)}/{n} changes seen): "
                      f"median {p50:.0f} ms, max {latencies[-1]:.0f} ms")
            else:
                print(f"latency: no change seen by the reader ({n} changes)")
        finally:
            nginx.stop()


if __name__ == "__main__":
    asyncio.run(main())
