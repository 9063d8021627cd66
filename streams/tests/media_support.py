"""Real aiortc publishers and viewers for the media tests and the benchmark (loopback only).

Publishers send a solid colour (plus a small moving block, so the picture is never "frozen") and a
tone; faults (stall, black, frozen, silence) can be switched on and off. Viewers decode every frame
and classify the centre colour, so tests check *which source* a real viewer is seeing.
"""

import asyncio
import fractions
import math
import time

import av
import numpy as np
from aiortc import MediaStreamTrack, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from streams.media import ice

COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 200, 60),
    "yellow": (230, 220, 20),
    "blue": (30, 60, 220),
    "black": (0, 0, 0),
}


def classify(rgb):
    """Name of the palette colour nearest to an (r, g, b) mean, or 'other'."""
    best, dist = "other", 1e9
    for name, ref in COLOURS.items():
        d = sum((a - b) ** 2 for a, b in zip(rgb, ref)) ** 0.5
        if d < dist:
            best, dist = name, d
    return best if dist < 60 else "other"


class ColourTrack(MediaStreamTrack):
    kind = "video"

    def __init__(self, colour, width=160, height=120, fps=30):
        super().__init__()
        self.width, self.height, self.fps = width, height, fps
        self.fault = None
        self.frames = self._render(colour)
        self.black = self._render("black")
        self.index = 0
        self.start = None
        self.count = 0

    def _render(self, colour):
        frames = []
        rgb = COLOURS[colour]
        for i in range(16):
            img = np.empty((self.height, self.width, 3), np.uint8)
            img[:] = rgb
            x = (i * self.width // 16) % max(1, self.width - 12)
            img[2:12, x:x + 10] = 255  # moving block: a live picture is never frozen
            frames.append(av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p"))
        return frames

    def set_colour(self, colour):
        self.frames = self._render(colour)

    async def recv(self):
        if self.readyState != "live":
            raise MediaStreamError
        if self.start is None:
            self.start = time.monotonic()
        while True:
            self.count += 1
            target = self.start + self.count / self.fps
            delay = target - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if self.fault != "stall":
                break
        if self.fault == "frozen":
            frame = self.frames[self.index % 16]
        else:
            self.index += 1
            frame = (self.black if self.fault == "black" else self.frames)[self.index % 16]
        frame.pts = int(self.count * 90000 / self.fps)
        frame.time_base = fractions.Fraction(1, 90000)
        return frame


class ToneTrack(MediaStreamTrack):
    kind = "audio"

    def __init__(self, freq=440.0):
        super().__init__()
        self.freq = freq
        self.fault = None
        t = np.arange(960) / 48000.0
        # 50 cycles of 20 ms: whole periods for 50 Hz multiples; good enough for a test tone
        self.tone = (np.sin(2 * math.pi * freq * t) * 8000).astype(np.int16)
        self.quiet = np.zeros(960, np.int16)
        self.start = None
        self.count = 0

    async def recv(self):
        if self.readyState != "live":
            raise MediaStreamError
        if self.start is None:
            self.start = time.monotonic()
        self.count += 1
        delay = self.start + self.count * 0.02 - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        samples = self.quiet if self.fault in ("silence", "stall") else self.tone
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 48000
        frame.pts = self.count * 960
        frame.time_base = fractions.Fraction(1, 48000)
        return frame


async def offer_for(pc):
    await pc.setLocalDescription(await pc.createOffer())
    return pc.localDescription.sdp


class Http:
    """Minimal HTTP for WHIP/WHEP: Django's AsyncClient in-process, or urllib against a server."""

    def __init__(self, base_url=None):
        self.base_url = base_url
        if base_url is None:
            from django.test import AsyncClient

            self.client = AsyncClient()

    async def request(self, method, path, body=b"", headers=None, content_type="application/sdp"):
        headers = dict(headers or {})
        if self.base_url is None:
            kwargs = {"headers": headers}
            if method in ("POST", "PATCH"):
                response = await getattr(self.client, method.lower())(path, data=body, content_type=content_type, **kwargs)
            else:
                response = await getattr(self.client, method.lower())(path, **kwargs)
            return response.status_code, response.content.decode(), dict(response.headers)
        import urllib.error
        import urllib.request

        def go():
            data = body.encode() if isinstance(body, str) else body
            req = urllib.request.Request(self.base_url + path, data=data if method != "DELETE" else None,
                                         method=method, headers={**headers, "Content-Type": content_type})
            try:
                with urllib.request.urlopen(req, timeout=20) as resp:
                    return resp.status, resp.read().decode(), dict(resp.headers)
            except urllib.error.HTTPError as exc:
                return exc.code, exc.read().decode(), dict(exc.headers)

        return await asyncio.get_running_loop().run_in_executor(None, go)


class Publisher:
    def __init__(self, http, room_slug, role, token, colour, freq=440.0, width=160, height=120, fps=30,
                 audio=True, video_codec=None):
        self.http, self.room_slug, self.role, self.token = http, room_slug, role, token
        self.video = ColourTrack(colour, width, height, fps)
        self.audio = ToneTrack(freq) if audio else None
        self.video_codec = video_codec
        self.pc = None
        self.location = None

    def set_fault(self, fault):
        self.video.fault = fault if fault in ("stall", "black", "frozen") else None
        if self.audio is not None:
            self.audio.fault = fault if fault in ("silence", "stall") else None

    async def start(self):
        self.pc = ice.new_peer_connection()
        vt = self.pc.addTransceiver(self.video, direction="sendonly")
        if self.video_codec:
            from aiortc import RTCRtpSender

            vt.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("video").codecs
                                    if c.mimeType.lower() in (f"video/{self.video_codec.lower()}", "video/rtx")])
        if self.audio is not None:
            self.pc.addTransceiver(self.audio, direction="sendonly")
        sdp = await offer_for(self.pc)
        status, body, headers = await self.http.request(
            "POST", f"/whip/{self.room_slug}/{self.role}", sdp, {"Authorization": f"Bearer {self.token}"})
        if status != 201:
            await self.pc.close()
            raise AssertionError(f"WHIP POST -> {status}: {body}")
        self.location = headers.get("Location")
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))
        return self

    async def delete(self):
        status, body, _ = await self.http.request("DELETE", self.location, headers={"Authorization": f"Bearer {self.token}"})
        return status

    async def close(self):
        if self.pc is not None:
            await self.pc.close()


class Viewer:
    """A WHEP viewer that decodes every frame and records (time, colour name)."""

    def __init__(self, http, room_slug):
        self.http, self.room_slug = http, room_slug
        self.pc = None
        self.location = None
        self.seen = []  # (monotonic, colour)
        self.positions = []  # column of the moving block in each seen frame
        self.audio_frames = 0
        self.tasks = []
        self.first_frame = asyncio.Event()

    async def start(self):
        self.pc = ice.new_peer_connection()
        self.pc.addTransceiver("video", direction="recvonly")
        self.pc.addTransceiver("audio", direction="recvonly")

        @self.pc.on("track")
        def on_track(track):
            self.tasks.append(asyncio.ensure_future(self._consume(track)))

        sdp = await offer_for(self.pc)
        status, body, headers = await self.http.request("POST", f"/whep/{self.room_slug}", sdp)
        if status != 201:
            await self.pc.close()
            raise AssertionError(f"WHEP POST -> {status}: {body}")
        self.location = headers.get("Location")
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))
        return self

    async def _consume(self, track):
        try:
            while True:
                frame = await track.recv()
                if track.kind == "audio":
                    self.audio_frames += 1
                    continue
                img = frame.to_ndarray(format="rgb24")
                h, w = img.shape[:2]
                centre = img[h // 3: 2 * h // 3, w // 3: 2 * w // 3].reshape(-1, 3).mean(axis=0)
                # where the moving white block is: tells a fresh picture from a repeated one
                self.positions.append(int(img.mean(axis=2).mean(axis=0).argmax()))
                self.seen.append((time.monotonic(), classify(tuple(centre))))
                self.first_frame.set()
        except MediaStreamError:
            pass

    def last_fresh_before(self, colour, before):
        """Time of the last frame of `colour` before `before` whose picture moved (not a repeat)."""
        last = None
        for i in range(1, len(self.seen)):
            t, c = self.seen[i]
            if t >= before:
                break
            if c == colour and self.positions[i] != self.positions[i - 1]:
                last = t
        return last

    @property
    def colour(self):
        return self.seen[-1][1] if self.seen else None

    async def wait_for(self, colour, timeout=5.0, since=None):
        """Wait until the viewer decodes `colour`; returns the monotonic time of that frame."""
        deadline = time.monotonic() + timeout
        index = 0
        while time.monotonic() < deadline:
            while index < len(self.seen):
                t, c = self.seen[index]
                index += 1
                if c == colour and (since is None or t >= since):
                    return t
            await asyncio.sleep(0.005)
        raise AssertionError(f"viewer never saw {colour} within {timeout}s; last seen: {self.seen[-5:]}")

    async def close(self):
        for task in self.tasks:
            task.cancel()
        if self.pc is not None:
            await self.pc.close()


def slate_png(colour, width=160, height=120):
    img = np.empty((height, width, 3), np.uint8)
    img[:] = COLOURS[colour]
    codec = av.CodecContext.create("png", "w")
    codec.width, codec.height, codec.pix_fmt = width, height, "rgb24"
    frame = av.VideoFrame.from_ndarray(img, format="rgb24")
    return b"".join(bytes(p) for p in codec.encode(frame)) + b"".join(bytes(p) for p in codec.encode(None))
