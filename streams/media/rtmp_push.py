"""RTMP push: the room's program encoded ONCE (H.264 + AAC) and sent as FLV to every enabled destination
(the platforms' RTMP ingest). No Django here.

Threads, not the event loop: one encoder thread per room ticks at the output frame rate on its own clock,
so the pushed stream keeps a constant frame rate (the newest program picture, repeated when the source
stalls) and continuous audio (silence fills what the program did not deliver), with timestamps counted in
frames and samples, never read from a clock: they cannot jump or go back. Each destination has its own
thread and a bounded queue: a slow or dead platform drops its own packets (to the next keyframe) and
reconnects with backoff; it never slows the encoder, the other destinations or the program.

Stream keys are secrets: a destination's URL (which holds the key) is never logged or put in health;
`safe_url` masks it and errors are reported without it.
"""

import io
import logging
import os
import socket
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
from av.video.reformatter import VideoReformatter
from urllib.parse import urlsplit

from .common import AUDIO_RATE

logger = logging.getLogger(__name__)

CONNECTING, LIVE, RETRYING, FAILED = "connecting", "live", "retrying", "failed"
AUDIO_BUFFER_S = 0.3  # program audio waiting for the encoder; older samples are dropped (clock drift)
LATE_RESYNC_FRAMES = 3  # the encoder thread was this late (a stalled process): skip ahead, never burst


@dataclass(frozen=True)
class PushTarget:
    """One enabled destination as the engine sees it. `url` holds the stream key: never log it."""

    id: int
    label: str
    url: str


@dataclass
class PushProfile:
    width: int = 1280
    height: int = 720
    fps: int = 30
    video_bitrate: int = 2_500_000
    audio_bitrate: int = 128_000
    keyframe_interval_s: float = 2.0
    queue_s: float = 2.0  # per destination; past it the destination drops to the next keyframe
    backoff_min_s: float = 1.0
    backoff_max_s: float = 30.0
    failed_after: int = 3  # consecutive failed connection attempts before the state says "failed"
    # PyAV cannot time out an RTMP connect or write (no interrupt callback reaches them): a connection that
    # hangs this long is abandoned to its (daemon) thread and a fresh one is started, at most
    # max_stuck_connections stuck ones per destination at a time.
    connect_timeout_s: float = 10.0
    stall_timeout_s: float = 5.0
    max_stuck_connections: int = 3


def safe_url(url):
    """The URL without its stream key (the last path segment) and query: rtmp://host/app/****."""
    base = url.split("?", 1)[0]
    head, sep, _key = base.rpartition("/")
    return f"{head}/****" if sep and "//" in head and head.count("/") >= 3 else "****"


def error_text(exc, url):
    """An error message fit for logs and the UI: never the URL (it carries the key)."""
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return str(text).replace(url, safe_url(url))[:200]


def probe_rtmp(url, timeout):
    """TCP connect + the RTMP handshake (C0/C1 → S0/S1, C2 → S2) in Python, with a timeout.

    PyAV opens the RTMP connection while holding the GIL: a platform that accepts the TCP connection but
    never answers would freeze the whole worker. Probing first, with a socket timeout, keeps that risk to
    a platform that stops answering in the moment between this probe and PyAV's own handshake."""
    parts = urlsplit(url)
    secure = parts.scheme == "rtmps"
    port = parts.port or (443 if secure else 1935)
    with socket.create_connection((parts.hostname, port), timeout=timeout) as raw:
        raw.settimeout(timeout)
        conn = ssl.create_default_context().wrap_socket(raw, server_hostname=parts.hostname) if secure else raw
        c1 = bytes(8) + os.urandom(1528)
        conn.sendall(b"\x03" + c1)
        s0s1 = _read_exactly(conn, 1 + 1536)
        conn.sendall(s0s1[1:])  # C2 echoes S1
        _read_exactly(conn, 1536)  # S2


def _read_exactly(conn, size):
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the platform closed the connection during the RTMP handshake")
        data += chunk
    return data


@dataclass
class Item:
    """One encoded packet, as plain data (av.Packets are not shared between threads/containers)."""

    kind: str  # "video" | "audio"
    data: bytes
    pts: int
    dts: int
    key: bool


class Destination:
    """One RTMP connection on its own thread, fed through a bounded queue."""

    def __init__(self, target, push):
        self.target = target
        self.push = push
        self.cond = threading.Condition()
        self.queue = deque()
        self.max_items = int(push.profile.queue_s * (push.profile.fps + AUDIO_RATE / 1024)) + 1
        self.waiting_key = True
        self.stopping = threading.Event()  # the current connection thread's: a new one per (re)start
        self.stopped = False
        self.threads = []
        self.phase, self.progress_at = "waiting", time.monotonic()  # connecting | sending | waiting
        self.state = CONNECTING
        self.since = time.time()
        self.reconnects = 0
        self.connects = 0
        self.failures = 0  # consecutive failed attempts
        self.dropped_frames = 0
        self.last_error = ""
        self.sent_bytes = 0
        self.sent_frames = 0
        self._sample = (time.monotonic(), 0, 0)

    def start(self, delay=0.0):
        self.stopping = threading.Event()
        self.phase, self.progress_at = "waiting", time.monotonic()
        thread = threading.Thread(target=self._run, args=(self.stopping, delay),
                                  name=f"rtmp-{self.push.slug}-{self.target.id}", daemon=True)
        self.threads = [t for t in self.threads if t.is_alive()] + [thread]
        thread.start()

    def stop(self):
        self.stopped = True
        self.stopping.set()
        with self.cond:
            self.cond.notify_all()

    def join(self, wait_s):
        for thread in self.threads:
            thread.join(wait_s)

    def check(self, now):
        """From the encoder thread, once a second: abandon a connection that hangs (see PushProfile)."""
        if self.stopped:
            return
        profile = self.push.profile
        if self.phase == "blocked":  # too many stuck connections: start again once one of them ends
            if sum(t.is_alive() for t in self.threads) < profile.max_stuck_connections:
                self.start()
            return
        if self.phase == "connecting" and now - self.progress_at > profile.connect_timeout_s:
            error = "timed out connecting to the platform"
        elif self.phase == "sending" and now - self.progress_at > profile.stall_timeout_s:
            error = "the platform stopped reading"
        else:
            return
        self.stopping.set()  # the stuck thread exits by itself if its call ever returns
        self.last_error = error
        self.failures += 1
        self.reconnects += 1
        self._set_state(FAILED if self.failures >= profile.failed_after else RETRYING)
        logger.warning("%s: push to %s (%s): %s", self.push.slug, self.target.label, safe_url(self.target.url), error)
        if sum(t.is_alive() for t in self.threads) >= profile.max_stuck_connections:
            self.phase = "blocked"
        else:
            self.start(delay=profile.backoff_min_s)

    def _set_state(self, state):
        if state != self.state:
            self.state, self.since = state, time.time()

    def put(self, item):
        """From the encoder thread: never blocks. Behind by more than the queue: drop to the next keyframe."""
        with self.cond:
            if self.waiting_key:
                if not (item.kind == "video" and item.key):
                    self.dropped_frames += item.kind == "video"
                    return
                self.waiting_key = False
            elif len(self.queue) >= self.max_items:
                self.dropped_frames += sum(1 for i in self.queue if i.kind == "video") + (item.kind == "video")
                self.queue.clear()
                self.waiting_key = True
                self.push.want_keyframe()
                return
            self.queue.append(item)
            self.cond.notify()

    def _take(self, timeout):
        with self.cond:
            if not self.queue:
                self.cond.wait(timeout)
            return self.queue.popleft() if self.queue else None

    def _run(self, stop, delay):
        """One connection thread; `stop` is set when it is stopped or abandoned (then it must not touch
        the destination's state: a newer thread owns it)."""
        backoff = self.push.profile.backoff_min_s
        if delay:
            stop.wait(delay)
        while not stop.is_set():
            self._set_state(CONNECTING if self.failures < self.push.profile.failed_after else FAILED)
            connects = self.connects
            try:
                self._session(stop)
            except Exception as exc:
                if stop.is_set():
                    break
                self.last_error = error_text(exc, self.target.url)
                logger.warning("%s: push to %s (%s) failed: %s", self.push.slug, self.target.label,
                               safe_url(self.target.url), self.last_error)
            if self.connects != connects:
                # the session went live: whatever ended it (the platform closing it, a write error), this is
                # a new outage and starts from the shortest backoff, not where the last outage left off
                backoff = self.push.profile.backoff_min_s
            if stop.is_set():
                break
            self.failures += 1
            self.reconnects += 1
            self._set_state(FAILED if self.failures >= self.push.profile.failed_after else RETRYING)
            self.phase, self.progress_at = "waiting", time.monotonic()
            stop.wait(backoff)
            backoff = min(backoff * 2, self.push.profile.backoff_max_s)

    def _session(self, stop):
        self.phase, self.progress_at = "connecting", time.monotonic()
        with self.cond:  # start clean, on a keyframe (asked for now rather than in up to 2 s)
            self.queue.clear()
            self.waiting_key = True
        self.push.want_keyframe()
        try:
            probe_rtmp(self.target.url, self.push.profile.connect_timeout_s)
        except socket.timeout:
            raise ConnectionError("timed out connecting to the platform") from None
        if stop.is_set():
            return
        out = av.open(self.target.url, "w", format="flv")
        try:
            video = out.add_stream_from_template(self.push.video_stream)
            audio = out.add_stream_from_template(self.push.audio_stream)
            out.start_encoding()
            if stop.is_set():
                return
            self.phase, self.progress_at = "sending", time.monotonic()
            self.connects += 1
            self.failures = 0
            self._set_state(LIVE)
            streams = {"video": video, "audio": audio}
            base = None
            while not stop.is_set():
                self.progress_at = time.monotonic()
                item = self._take(0.5)
                if item is None:
                    continue
                if base is None:
                    base = item.dts  # each connection's timestamps start at 0
                packet = av.Packet(item.data)
                packet.stream = streams[item.kind]
                packet.time_base = self.push.time_base[item.kind]
                packet.pts, packet.dts = item.pts - base, item.dts - base
                packet.is_keyframe = item.key
                out.mux(packet)
                self.sent_bytes += len(item.data)
                self.sent_frames += item.kind == "video"
        finally:
            try:
                out.close()
            except Exception:
                pass

    def health(self, now):
        t0, bytes0, frames0 = self._sample
        elapsed = max(now - t0, 1e-3)
        self._sample = (now, self.sent_bytes, self.sent_frames)
        live = self.state == LIVE
        return {
            "id": self.target.id,
            "label": self.target.label,
            "url": safe_url(self.target.url),
            "state": self.state,
            "since": self.since,
            "bitrate_kbps": round((self.sent_bytes - bytes0) * 8 / elapsed / 1000) if live else 0,
            "fps": round((self.sent_frames - frames0) / elapsed, 1) if live else 0.0,
            "dropped_frames": self.dropped_frames,
            "reconnects": self.reconnects,
            "last_error": self.last_error,
        }


class ProgramPush:
    """The room's program, encoded once for every destination (only while there is at least one)."""

    def __init__(self, slug, profile):
        self.slug = slug
        self.profile = profile
        self.destinations = {}  # PushTarget -> Destination
        self.latest = None
        self.latest_origin = None
        self.audio = deque()
        self.audio_samples = 0
        self.lock = threading.Lock()
        self.key_wanted = threading.Event()
        self.stopping = threading.Event()
        self.thread = None
        self.frames = 0  # encoded, for health
        self.late_resyncs = 0
        self.video_stream = self.audio_stream = None
        self.time_base = {}

    # --- from the event loop (cheap: a reference and a deque append) ---
    def offer_video(self, frame, origin):
        source = origin.partition(":")[0]
        if self.latest_origin is not None and source != self.latest_origin:
            self.key_wanted.set()  # an IDR at every switch: the platform's viewers join the new source cleanly
        self.latest, self.latest_origin = frame, source

    def offer_audio(self, frame):
        if self.thread is None:
            return
        samples = frame.to_ndarray().reshape(-1, 2)  # s16 stereo, interleaved
        with self.lock:
            self.audio.append(samples)
            self.audio_samples += len(samples)
            while self.audio_samples > AUDIO_BUFFER_S * AUDIO_RATE and len(self.audio) > 1:
                self.audio_samples -= len(self.audio.popleft())

    def want_keyframe(self):
        self.key_wanted.set()

    # --- destinations ---
    def apply(self, targets):
        """Start/stop destinations to match `targets` (a changed URL or label is a new destination)."""
        targets = set(targets)
        for target in list(self.destinations):
            if target not in targets:
                self.destinations.pop(target).stop()
        if targets and self.thread is None:
            self._open_encoders()
            self.stopping.clear()
            self.thread = threading.Thread(target=self._run, name=f"rtmp-encode-{self.slug}", daemon=True)
            self.thread.start()
        for target in targets:
            if target not in self.destinations:
                dest = self.destinations[target] = Destination(target, self)
                dest.start()
        if not targets and self.thread is not None:
            self._stop_encoder()

    def stop(self, wait_s=1.0):
        for dest in self.destinations.values():
            dest.stop()
        self._stop_encoder(wait_s)
        for dest in self.destinations.values():
            dest.join(wait_s)  # a connection stuck in a blocking write is a daemon thread: left behind
        self.destinations.clear()

    def _stop_encoder(self, wait_s=1.0):
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(wait_s)
            self.thread = None

    def health(self):
        now = time.monotonic()
        return [dest.health(now) for dest in sorted(self.destinations.values(), key=lambda d: d.target.id)]

    # --- the encoder thread ---
    def _open_encoders(self):
        """libx264 + AAC inside an in-memory FLV container: its streams (with the codec headers, extradata)
        are the templates every destination's connection copies."""
        p = self.profile
        self.template = av.open(io.BytesIO(), "w", format="flv")
        video = self.template.add_stream("libx264", rate=p.fps)
        ctx = video.codec_context
        ctx.width, ctx.height, ctx.pix_fmt = p.width, p.height, "yuv420p"
        ctx.bit_rate = p.video_bitrate
        ctx.time_base = Fraction(1, p.fps)
        ctx.gop_size = int(p.keyframe_interval_s * p.fps)
        ctx.max_b_frames = 0
        ctx.options = {
            "preset": "veryfast", "tune": "zerolatency", "forced-idr": "1", "sc_threshold": "0",
            "keyint_min": str(int(p.keyframe_interval_s * p.fps)),
            # steady bitrate: the platform's ingest expects a constant-ish rate, not bursts on cuts
            "maxrate": str(p.video_bitrate), "bufsize": str(p.video_bitrate), "nal-hrd": "cbr",
        }
        audio = self.template.add_stream("aac", rate=AUDIO_RATE)
        audio.codec_context.layout = "stereo"
        audio.codec_context.bit_rate = p.audio_bitrate
        self.template.start_encoding()  # opens the encoders and fills the stream headers
        self.video_stream, self.audio_stream = video, audio
        self.time_base = {"video": video.time_base, "audio": audio.time_base}
        self.resampler = av.AudioResampler(format="fltp", layout="stereo", rate=AUDIO_RATE, frame_size=1024)
        self.reformatter = VideoReformatter()  # its own: the program frame is scaled elsewhere too
        self.black = av.VideoFrame.from_ndarray(np.zeros((p.height, p.width, 3), np.uint8), format="rgb24")

    def _run(self):
        p = self.profile
        interval = 1.0 / p.fps
        n = 0  # frames encoded: the video timestamp
        sent_samples = 0  # audio samples encoded: the audio timestamp
        next_at = time.monotonic()
        while not self.stopping.is_set():
            delay = next_at - time.monotonic()
            if delay > 0:
                self.stopping.wait(delay)
            elif delay < -LATE_RESYNC_FRAMES * interval:
                next_at = time.monotonic()  # the process stalled: timestamps stay contiguous, no burst
                self.late_resyncs += 1
            next_at += interval
            try:
                packets = self._encode_video(n)
                due = (n + 1) * AUDIO_RATE // p.fps - sent_samples
                packets += self._encode_audio(self._take_audio(due), sent_samples)
                sent_samples += due
                n += 1
                self.frames = n
                for item in packets:
                    for dest in list(self.destinations.values()):
                        dest.put(item)
                if n % p.fps == 0:
                    now = time.monotonic()
                    for dest in list(self.destinations.values()):
                        dest.check(now)
            except Exception:
                logger.exception("%s: RTMP encoding failed", self.slug)
                self.stopping.wait(0.1)

    def _encode_video(self, n):
        frame = self.latest if self.latest is not None else self.black
        p = self.profile
        picture = self.reformatter.reformat(frame, width=p.width, height=p.height, format="yuv420p")
        picture.pts = n
        picture.time_base = Fraction(1, p.fps)
        if self.key_wanted.is_set():
            self.key_wanted.clear()
            picture.pict_type = av.video.frame.PictureType.I
        else:
            picture.pict_type = av.video.frame.PictureType.NONE
        return [self._item("video", pk) for pk in self.video_stream.encode(picture)]

    def _item(self, kind, pk):
        """The packet as plain data, its timestamps in its stream's time base (the FLV millisecond)."""
        tb = self.time_base[kind]
        return Item(kind, bytes(pk), int(pk.pts * pk.time_base / tb), int(pk.dts * pk.time_base / tb),
                    kind == "audio" or pk.is_keyframe)

    def _take_audio(self, count):
        """`count` samples of program audio; silence fills what is missing (never a hole)."""
        out = np.zeros((count, 2), np.int16)
        filled = 0
        with self.lock:
            while filled < count and self.audio:
                chunk = self.audio[0]
                take = min(count - filled, len(chunk))
                out[filled:filled + take] = chunk[:take]
                filled += take
                self.audio_samples -= take
                if take == len(chunk):
                    self.audio.popleft()
                else:
                    self.audio[0] = chunk[take:]
        return out

    def _encode_audio(self, samples, start):
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="stereo")
        frame.sample_rate = AUDIO_RATE
        frame.pts = start
        frame.time_base = Fraction(1, AUDIO_RATE)
        items = []
        for chunk in self.resampler.resample(frame):
            for pk in self.audio_stream.encode(chunk):
                items.append(self._item("audio", pk))
        return items
