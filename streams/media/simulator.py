"""Synthetic publishers for the demo: each demo room's primary and backup line over WHIP.

Cheap by design: every line loops a short pre-encoded VP8 clip (one closed GOP, so each loop starts on
a keyframe) and a pre-encoded Opus tone; nothing is encoded while running. Faults come from small
control files (written by `streams.services.inject_demo_fault` or `simulate_streams --inject`):
stall (stop sending), black, silence, weak (late bursts and lost audio), none.
"""

import asyncio
import json
import logging
import math
import random
import time
import urllib.error
import urllib.request
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from aiortc import MediaStreamTrack, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from . import ice

logger = logging.getLogger(__name__)

FAULTS = ("none", "stall", "black", "silence", "weak")
DEMO_WIDTH, DEMO_HEIGHT, DEMO_FPS = 320, 180, 15
CLIP_SECONDS = 2


def fault_file(directory, room_slug, line_role):
    return Path(directory) / f"{room_slug}--{line_role}.json"


def write_fault(directory, room_slug, line_role, fault, duration_s=None):
    if fault not in FAULTS:
        raise ValueError(f"unknown fault {fault!r}; use one of {', '.join(FAULTS)}")
    path = fault_file(directory, room_slug, line_role)
    path.parent.mkdir(parents=True, exist_ok=True)
    until = time.time() + duration_s if duration_s else None
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"fault": fault, "until": until}))
    tmp.replace(path)


def read_fault(directory, room_slug, line_role):
    if directory is None:
        return "none"
    try:
        data = json.loads(fault_file(directory, room_slug, line_role).read_text())
    except (OSError, ValueError):
        return "none"
    if data.get("until") and time.time() > data["until"]:
        return "none"
    return data.get("fault") or "none"


def line_colour(index, role):
    """Distinct per room and per line: primary warm, backup cool."""
    hue = (index * 47) % 120
    return (230, 60 + hue, 40) if role == "primary" else (40, 120 + hue // 2, 220)


def encode_clip(rgb, width=DEMO_WIDTH, height=DEMO_HEIGHT, fps=DEMO_FPS, black=False, texture=False,
                bitrate=250_000):
    """One closed GOP of VP8 packets: a solid colour with a moving bar (never 'frozen').

    texture=True adds moving camera-like grain (zero mean, so the mean colour stays), which makes
    decoding and re-encoding cost what real pictures cost (flat colour is unrealistically cheap).
    """
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height, codec.pix_fmt = width, height, "yuv420p"
    codec.time_base = Fraction(1, fps)
    codec.framerate = Fraction(fps, 1)
    codec.bit_rate = bitrate
    grain = np.random.default_rng(7).integers(-35, 36, size=(height, width * 2, 1), dtype=np.int16)
    codec.gop_size = 10_000
    codec.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    packets = []
    count = fps * CLIP_SECONDS
    for i in range(count):
        img = np.zeros((height, width, 3), np.uint8)
        if not black:
            img[:] = rgb
            if texture:
                shift = (i * 9) % width
                img[:] = np.clip(img.astype(np.int16) + grain[:, shift:shift + width], 0, 255).astype(np.uint8)
            x = int((width - 24) * i / count)
            img[height - 30: height - 10, x: x + 24] = 255
        frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
        frame.pts = i
        packets += [bytes(p) for p in codec.encode(frame)]
    packets += [bytes(p) for p in codec.encode(None)]
    return packets


def encode_tone(freq, silent=False):
    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate, codec.layout, codec.format = 48000, "stereo", "s16"
    codec.bit_rate = 48_000
    out = []
    for i in range(50):  # one second of 20 ms packets
        t = (np.arange(960) + i * 960) / 48000.0
        wave = np.zeros(960) if silent else np.sin(2 * math.pi * freq * t) * 6000
        samples = np.repeat(wave.astype(np.int16), 2).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="stereo")
        frame.sample_rate = 48000
        frame.pts = i * 960
        out += [bytes(p) for p in codec.encode(frame)]
    return out


class LoopTrack(MediaStreamTrack):
    """Replays pre-encoded packets in real time (aiortc packetises av.Packet without encoding)."""

    def __init__(self, kind, clips, interval, clock, line):
        super().__init__()
        self.kind = kind
        self.clips = clips  # {"normal": [...], "black"/"silence": [...]}
        self.interval, self.clock, self.line = interval, clock, line
        self.index = 0
        self.count = 0
        self.start = None
        self.clip = "normal"

    async def recv(self):
        if self.readyState != "live":
            raise MediaStreamError
        if self.start is None:
            self.start = time.monotonic()
        while True:
            self.count += 1
            delay = self.start + self.count * self.interval - time.monotonic()
            if self.line.fault == "weak" and self.kind == "video":
                delay += random.choice((0, 0, 0, 0.15, 0.3))  # late bursts (jitter, fps dips)
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -1:
                self.start, self.count = time.monotonic(), 0  # fell far behind: resync
            if self.line.fault == "stall":
                continue
            if self.line.fault == "weak" and self.kind == "audio" and random.random() < 0.1:
                continue
            break
        wanted = {"black": "black", "silence": "silence"}.get(self.line.fault, "normal")
        if self.kind == "video" and self.index == 0:
            self.clip = wanted if wanted in self.clips else "normal"  # change clip only on a keyframe
        elif self.kind == "audio":
            self.clip = wanted if wanted in self.clips else "normal"
        packets = self.clips[self.clip]
        data = packets[self.index % len(packets)]
        self.index = (self.index + 1) % len(packets)
        packet = av.Packet(data)
        packet.pts = int(self.count * self.interval * self.clock)
        packet.time_base = Fraction(1, self.clock)
        return packet


class SimulatedLine:
    def __init__(self, base_url, room_slug, role, token, index, fault_dir=None):
        self.base_url, self.room_slug, self.role, self.token, self.index = base_url, room_slug, role, token, index
        self.fault_dir = fault_dir  # where the demo's fault files are (None: no faults)
        rgb = line_colour(index, role)
        self.video_clips = {"normal": encode_clip(rgb), "black": encode_clip(rgb, black=True)}
        freq = 330 + 110 * index + (0 if role == "primary" else 55)
        self.audio_clips = {"normal": encode_tone(freq), "silence": encode_tone(freq, silent=True)}
        self.fault = "none"
        self.pc = None
        self.location = None
        self.connects = 0

    def _post(self, sdp):
        req = urllib.request.Request(
            f"{self.base_url}/whip/{self.room_slug}/{self.role}", data=sdp.encode(), method="POST",
            headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {self.token}"})
        try:
            with urllib.request.urlopen(req, timeout=15) as resp:
                return resp.status, resp.read().decode(), resp.headers.get("Location")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(), None

    def _delete(self):
        if not self.location:
            return
        req = urllib.request.Request(self.base_url + self.location, method="DELETE",
                                     headers={"Authorization": f"Bearer {self.token}"})
        try:
            # short: on a shared SIGTERM the server may already be gone, and 12 lines share a few threads
            urllib.request.urlopen(req, timeout=1).close()
        except (urllib.error.URLError, OSError):
            pass

    async def connect(self):
        loop = asyncio.get_running_loop()
        pc = ice.new_peer_connection()
        pc.addTransceiver(LoopTrack("video", self.video_clips, 1 / DEMO_FPS, 90000, self), direction="sendonly")
        pc.addTransceiver(LoopTrack("audio", self.audio_clips, 0.02, 48000, self), direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        try:
            status, body, location = await loop.run_in_executor(None, self._post, pc.localDescription.sdp)
        except (urllib.error.URLError, OSError) as exc:
            await pc.close()
            raise ConnectionError(str(exc)) from None
        if status != 201:
            await pc.close()
            error = ConnectionError(f"WHIP {self.room_slug}/{self.role} -> {status}: {body.strip()}")
            error.status = status
            raise error
        await pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))
        self.pc, self.location = pc, location
        self.connects += 1
        logger.info("%s/%s publishing (%s)", self.room_slug, self.role, location)

    async def run(self, stop):
        """Stay published: reconnect when the server drops us (restart_line) or is not up yet."""
        while not stop.is_set():
            self.fault = read_fault(self.fault_dir, self.room_slug, self.role)
            if self.pc is None or self.pc.connectionState in ("failed", "closed"):
                if self.pc is not None:
                    await self.pc.close()
                    self.pc = None
                    logger.warning("%s/%s dropped by the server; reconnecting", self.room_slug, self.role)
                try:
                    await self.connect()
                except ConnectionError as exc:
                    if getattr(exc, "status", None) == 409:  # the line takes RTMP now: an encoder feeds it
                        logger.info("%s; the simulator leaves this line alone (retrying in 30 s)", exc)
                        await _sleep_or_stop(stop, 30.0)
                        continue
                    logger.warning("%s", exc)
                    await _sleep_or_stop(stop, 2.0)
                    continue
            await _sleep_or_stop(stop, 0.5)
        if self.pc is not None:
            try:
                await asyncio.wait_for(asyncio.to_thread(self._delete), 1.5)
            except asyncio.TimeoutError:
                pass
            await self.pc.close()


async def _sleep_or_stop(stop, seconds):
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except asyncio.TimeoutError:
        pass
