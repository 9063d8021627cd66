"""The media engine: per room, two hot-standby ingest lines, one program output encoded once and
fanned out to every viewer as the same av.Packets. No Django here (see bridge.py for the hooks).

Timing model ("follow"): the program emits a frame as soon as the selected source delivers one
(capped at the output frame rate) and repeats the last frame when the source is late, so a switch to
a decoded hot standby shows the new picture on the very next output frame.
"""

import asyncio
import logging
import math
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from fractions import Fraction

import av
from av.video.reformatter import VideoReformatter
import numpy as np
from aiortc import MediaStreamTrack, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from aiortc.sdp import candidate_from_sdp

from .. import cadence
from . import ice

logger = logging.getLogger(__name__)

VIDEO_CLOCK = 90000
VIDEO_TIME_BASE = Fraction(1, VIDEO_CLOCK)
AUDIO_RATE = 48000
AUDIO_TIME_BASE = Fraction(1, AUDIO_RATE)
AUDIO_SAMPLES = 960  # 20 ms Opus frames
LINE_ROLES = ("primary", "backup")
SOURCES = ("primary", "backup", "slate")
KEYFRAME_MIN_INTERVAL_S = 0.5  # forced keyframes (viewer join, PLI, overflow) are coalesced to this
VIEWER_VIDEO_QUEUE = 60  # packets (~2 s at 30 fps); overflow drops to the next keyframe
VIEWER_AUDIO_QUEUE = 50  # packets (1 s)
LINE_AUDIO_BUFFER = 5  # 100 ms of decoded audio per line; older frames are dropped
RECEIVE_QUEUE_KEEP = 2  # decoded frames left in aiortc's (unbounded) receive queue


class CommandError(Exception):
    """A command the engine refuses (e.g. switching to a line with no signal)."""


class OutputFull(CommandError):
    """The program output already serves its maximum number of viewers (one event loop tops out near
    one core: past the cap, every viewer of the room would suffer)."""


class BadOffer(Exception):
    """An SDP offer the worker cannot use; the message is shown to the publisher/viewer."""


@dataclass
class OutputConfig:
    width: int = 640
    height: int = 360
    fps: int = 30
    video_bitrate: int = 900_000
    audio_bitrate: int = 64_000
    keyframe_interval_s: float = 2.0
    # "packets": encode once, every viewer gets the same av.Packets (the product).
    # "stock": every viewer's RTCRtpSender encodes the program frames itself (aiortc's default) — only
    # for the benchmark's same-run baseline.
    fanout: str = "packets"
    max_viewers: int = 75  # per room output in one process (measured ~75 comfortable on this machine class)
    # A small JPEG of the program every few seconds, for walls with more rooms than live previews (0: off).
    thumbnail_every_s: float = 3.0
    thumbnail_width: int = 320
    thumbnail_height: int = 180


@dataclass
class RoomSettings:
    """Failover settings and program state loaded from the LiveRoom row."""

    program_source: str = "primary"
    source_before_slate: str = "primary"
    auto_failover: bool = True
    input_loss_ms: int = 300
    frozen_ms: int = 2000
    black_ms: int = 1000
    black_luma_threshold: int = 24
    silence_ms: int = 1000
    silence_dbfs: int = -50
    revert_mode: str = "primary_preferred"
    revert_after_s: int = 10
    max_auto_switches: int = 2
    auto_switch_window_s: int = 60
    slate_path: str = ""
    slate_kind: str = "image"
    slate_has_audio: bool = False


class Hooks:
    """What the engine tells the outside world. bridge.DjangoHooks writes audit rows and publishes."""

    async def load_settings(self, room):
        return RoomSettings()

    async def publisher_event(self, room, role, action, detail):
        pass

    async def auto_switch(self, room, ack, trigger):
        pass

    async def failover_hold(self, room, trigger, detail):
        pass

    async def health(self, room, health, sample):
        pass

    async def snapshot(self, room, jpeg):
        pass


# --- video analysis ---------------------------------------------------------------------------

def luma_sample(frame):
    """Mean luma and a coarse (every 8th pixel) luma grid used to detect frozen pictures."""
    if frame.format.name not in ("yuv420p", "yuvj420p", "nv12", "yuv422p", "yuv444p"):
        frame = frame.reformat(format="yuv420p")
    plane = frame.planes[0]
    arr = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[: frame.height, : frame.width]
    grid = arr[::8, ::8]
    return float(grid.mean()), grid.astype(np.int16)


def encode_thumbnail(frame, width, height):
    """A small JPEG of a picture (for the wall's thumbnails); runs in a thread, about 1-2 ms."""
    codec = av.CodecContext.create("mjpeg", "w")
    codec.width, codec.height, codec.pix_fmt = width, height, "yuvj420p"
    codec.time_base = Fraction(1, 25)
    # Its own reformatter: frame.reformat() caches one swscale context on the frame, and this frame is
    # being scaled for the program encoder in another thread at the same time (a data race that
    # corrupted the program picture).
    picture = VideoReformatter().reformat(frame, width=width, height=height, format="yuvj420p")
    return b"".join(bytes(packet) for packet in [*codec.encode(picture), *codec.encode(None)])


def audio_dbfs(frame):
    samples = frame.to_ndarray().astype(np.float32)
    if samples.size == 0:
        return -120.0
    rms = math.sqrt(float(np.mean(samples * samples)))
    return max(-120.0, 20 * math.log10(rms / 32768.0 + 1e-12))


def silence_frame():
    frame = av.AudioFrame.from_ndarray(np.zeros((1, AUDIO_SAMPLES * 2), np.int16), format="s16", layout="stereo")
    frame.sample_rate = AUDIO_RATE
    return frame


def default_slate_frame(width, height):
    """Neutral holding picture when the room has no slate asset."""
    y, x = np.mgrid[0:height, 0:width]
    img = np.zeros((height, width, 3), np.uint8)
    img[..., 0] = 40 + (x * 60 // max(width, 1))
    img[..., 1] = 40
    img[..., 2] = 70 + (y * 60 // max(height, 1))
    img[height // 2 - height // 12: height // 2 + height // 12, width // 6: width - width // 6] = (200, 200, 210)
    return av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")


class SlateSource:
    """The room's slate: a still image, or a short video looped (with its own audio if it has any)."""

    def __init__(self, path, kind, width, height, with_audio):
        self.path, self.kind, self.width, self.height = path, kind, width, height
        self.with_audio = with_audio
        self.still = None
        self.container = None
        self.frames = None
        self.audio = deque(maxlen=50)
        self.resampler = None
        if not path:
            self.still = default_slate_frame(width, height)
        elif kind == "image":
            try:
                with av.open(path) as container:
                    frame = next(container.decode(video=0))
                self.still = frame.reformat(width=width, height=height, format="yuv420p")
            except Exception:
                logger.exception("slate image %s unreadable; using the default slate", path)
                self.still = default_slate_frame(width, height)

    def _open_video(self):
        self.close()
        self.container = av.open(self.path)
        streams = [s for s in self.container.streams if s.type in ("video", "audio")]
        has_audio = any(s.type == "audio" for s in streams)
        if not self.with_audio or not has_audio:
            streams = [s for s in streams if s.type == "video"]
        self.resampler = av.AudioResampler(format="s16", layout="stereo", rate=AUDIO_RATE, frame_size=AUDIO_SAMPLES)
        self.frames = self.container.decode(*streams)

    def video_frame(self):
        if self.still is not None:
            return self.still
        for _attempt in range(2):
            try:
                if self.frames is None:
                    self._open_video()
                for frame in self.frames:
                    if isinstance(frame, av.AudioFrame):
                        for out in self.resampler.resample(frame):
                            self.audio.append(out)
                        continue
                    return frame.reformat(width=self.width, height=self.height, format="yuv420p")
                self.frames = None  # end of file: loop
            except Exception:
                logger.exception("slate video %s unreadable; using the default slate", self.path)
                self.still = default_slate_frame(self.width, self.height)
                return self.still
        self.still = default_slate_frame(self.width, self.height)
        return self.still

    def audio_frame(self):
        return self.audio.popleft() if self.audio else None

    def close(self):
        if self.container is not None:
            self.container.close()
            self.container = None
        self.frames = None


# --- ingest -----------------------------------------------------------------------------------

class Line:
    """One ingest line (primary or backup): the current publisher, its decoded frames and health."""

    def __init__(self, room, role):
        self.room, self.role = room, role
        self.pc = None
        self.session_id = None
        self.connected = False
        self.tasks = set()
        self.reset_media()
        self.ever_had_frame = False
        self.healthy_since = None
        self.prev_stats = None
        self.stats = {"bitrate_kbps": 0.0, "loss_pct": 0.0, "jitter_ms": 0.0}

    def reset_media(self):
        self.latest = None
        self.seq = 0
        self.last_frame_at = None
        self.frame_times = deque(maxlen=240)
        self.width = self.height = None
        self.luma = None
        self.prev_grid = None
        self.still_since = None
        self.black_since = None
        self.audio = deque(maxlen=LINE_AUDIO_BUFFER)
        self.dbfs = None
        self.quiet_since = None
        self.has_audio = False
        self.last_audio_at = None

    # analysis of each decoded frame (runs on the loop; cheap: a 1/64 luma grid)
    def on_video_frame(self, frame, now):
        luma, grid = luma_sample(frame)
        settings = self.room.settings
        if self.prev_grid is not None and self.prev_grid.shape == grid.shape:
            changed = float(np.abs(grid - self.prev_grid).mean()) >= 0.35
        else:
            changed = True
        self.prev_grid = grid
        self.still_since = None if changed else (self.still_since or now)
        self.black_since = (self.black_since or now) if luma < settings.black_luma_threshold else None
        self.luma = luma
        self.latest = frame
        self.seq += 1
        self.last_frame_at = now
        self.frame_times.append(now)
        self.width, self.height = frame.width, frame.height
        self.ever_had_frame = True

    def on_audio_frame(self, frame, now):
        self.has_audio = True
        self.last_audio_at = now
        self.dbfs = audio_dbfs(frame)
        quiet = self.dbfs < self.room.settings.silence_dbfs
        self.quiet_since = (self.quiet_since or now) if quiet else None
        self.audio.append(frame)

    @property
    def has_picture(self):
        return self.connected and self.latest is not None

    def fps(self, now, window=1.0):
        return float(sum(1 for t in self.frame_times if now - t <= window)) / window

    def trigger(self, now):
        """The failover trigger this line currently meets, or None when healthy."""
        s = self.room.settings
        if not self.connected or self.last_frame_at is None or (now - self.last_frame_at) * 1000 >= s.input_loss_ms:
            return "input_loss"
        if self.still_since is not None and (now - self.still_since) * 1000 >= s.frozen_ms:
            return "frozen"
        if self.black_since is not None and (now - self.black_since) * 1000 >= s.black_ms:
            return "black"
        # Silence is a cause of its own only while the picture still flows: when both stop, the line has
        # lost its input, and saying "silence" first (silence_ms may be shorter) would misname the incident.
        picture_flowing = (now - self.last_frame_at) * 1000 < s.input_loss_ms / 2
        if self.has_audio and picture_flowing:
            if self.quiet_since is not None and (now - self.quiet_since) * 1000 >= s.silence_ms:
                return "silence"
            if self.last_audio_at is not None and (now - self.last_audio_at) * 1000 >= s.silence_ms:
                return "silence"
        return None

    def health(self, now):
        s = self.room.settings
        age = None if self.last_frame_at is None else round((now - self.last_frame_at) * 1000)
        frozen = self.still_since is not None and (now - self.still_since) * 1000 >= min(s.frozen_ms, 1000)
        black = self.black_since is not None and (now - self.black_since) * 1000 >= min(s.black_ms, 1000)
        silent = self.has_audio and (
            (self.quiet_since is not None and (now - self.quiet_since) * 1000 >= min(s.silence_ms, 1000))
            or (self.last_audio_at is not None and now - self.last_audio_at >= 1.0)
        )
        trigger = self.trigger(now)
        if trigger == "input_loss":
            state = "down"
        elif trigger or frozen or black or silent or self.stats["loss_pct"] > 5:
            state = "degraded"
        else:
            state = "ok"
        return {
            "connected": self.connected,
            "bitrate_kbps": round(self.stats["bitrate_kbps"], 1),
            "fps": round(self.fps(now), 1),
            "width": self.width,
            "height": self.height,
            "loss_pct": round(self.stats["loss_pct"], 2),
            "jitter_ms": round(self.stats["jitter_ms"], 1),
            "last_frame_age_ms": age,
            "frozen": frozen,
            "black": black,
            "silent": bool(silent),
            "audio_dbfs": None if self.dbfs is None else round(self.dbfs, 1),
            "luma": None if self.luma is None else round(self.luma, 1),
            "state": state,
            "trigger": trigger,
        }

    async def update_stats(self, elapsed_s):
        """Bitrate, loss and jitter from aiortc's inbound-rtp stats (jitter is in RTP clock units)."""
        if self.pc is None or not self.connected:
            self.stats = {"bitrate_kbps": 0.0, "loss_pct": 0.0, "jitter_ms": 0.0}
            self.prev_stats = None
            return
        try:
            report = await self.pc.getStats()
        except Exception:
            return
        total_bytes = received = lost = 0
        jitter_ms = 0.0
        for stat in report.values():
            kind = getattr(stat, "type", "")
            if kind == "transport":
                total_bytes += getattr(stat, "bytesReceived", 0) or 0
            if kind != "inbound-rtp":
                continue
            received += stat.packetsReceived or 0
            lost += max(0, stat.packetsLost or 0)
            clock_rate = VIDEO_CLOCK if stat.kind == "video" else AUDIO_RATE
            if stat.kind == "video" or not jitter_ms:
                jitter_ms = max(jitter_ms, (stat.jitter or 0) * 1000.0 / clock_rate)
        if self.prev_stats is not None and elapsed_s > 0:
            pb, pr, pl = self.prev_stats
            d_bytes, d_recv, d_lost = total_bytes - pb, received - pr, lost - pl
            self.stats["bitrate_kbps"] = max(0.0, d_bytes * 8 / 1000.0 / elapsed_s)
            denominator = d_recv + d_lost
            self.stats["loss_pct"] = 100.0 * d_lost / denominator if denominator > 0 and d_lost > 0 else 0.0
        self.stats["jitter_ms"] = jitter_ms
        self.prev_stats = (total_bytes, received, lost)

    async def attach(self, pc, session_id):
        """A publisher connected: drain its tracks continuously (hot standby)."""
        replaced = self.pc
        self.pc, self.session_id = pc, session_id
        self.prev_stats = None
        if replaced is not None:
            await self._close_pc(replaced)
        return replaced is not None

    async def _close_pc(self, pc):
        try:
            await pc.close()
        except Exception:
            logger.exception("closing a publisher connection failed")

    async def detach(self, reason):
        pc, self.pc, self.session_id = self.pc, None, None
        self.connected = False
        if pc is not None:
            await self._close_pc(pc)

    def start_drain(self, pc, track):
        task = asyncio.ensure_future(self._drain(pc, track))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _drain(self, pc, track):
        """Read every decoded frame as it arrives, keeping aiortc's receive queue short."""
        resampler = None
        if track.kind == "audio":
            resampler = av.AudioResampler(format="s16", layout="stereo", rate=AUDIO_RATE, frame_size=AUDIO_SAMPLES)
        queue = getattr(track, "_queue", None)
        try:
            while True:
                frame = await track.recv()
                # bounded: if we fell behind, skip to the newest decoded frames
                if track.kind == "video" and queue is not None:
                    while queue.qsize() > RECEIVE_QUEUE_KEEP:
                        newer = queue.get_nowait()
                        if newer is None:
                            raise MediaStreamError
                        frame = newer
                if pc is not self.pc:
                    return  # replaced publisher: stop reading its frames
                now = time.monotonic()
                if track.kind == "video":
                    self.on_video_frame(frame, now)
                    self.room.video_arrived(self.role)
                else:
                    for out in resampler.resample(frame):
                        self.on_audio_frame(out, now)
        except MediaStreamError:
            pass
        except Exception:
            logger.exception("%s/%s: %s drain failed", self.room.slug, self.role, track.kind)


# --- program output and fan-out ----------------------------------------------------------------

class ViewerTrack(MediaStreamTrack):
    """One viewer's outgoing track: a bounded queue of the shared encoded packets (no re-encoding)."""

    def __init__(self, output, kind):
        super().__init__()
        self.kind = kind
        self.output = output
        self.queue = deque()
        self.wakeup = asyncio.Event()
        self.subscribed = False
        self.need_keyframe = kind == "video"
        self.dropped = 0

    async def recv(self):
        if self.readyState != "live":
            raise MediaStreamError
        if not self.subscribed:
            # subscribe on the first recv (after ICE/DTLS), so the queue starts at a keyframe
            self.subscribed = True
            self.output.subscribe(self)
        while not self.queue:
            self.wakeup.clear()
            await self.wakeup.wait()
            if self.readyState != "live":
                raise MediaStreamError
        return self.queue.popleft()

    def offer(self, packet, is_key):
        if self.kind == "video":
            if len(self.queue) >= VIEWER_VIDEO_QUEUE:
                # never drop a single video frame: drop to the next keyframe and ask for one
                self.dropped += len(self.queue)
                self.queue.clear()
                self.need_keyframe = True
                self.output.request_keyframe("viewer_overflow")
            if self.need_keyframe:
                if not is_key:
                    return
                self.need_keyframe = False
        elif len(self.queue) >= VIEWER_AUDIO_QUEUE:
            self.queue.popleft()
            self.dropped += 1
        self.queue.append(packet)
        self.wakeup.set()

    def stop(self):
        self.output.unsubscribe(self)
        super().stop()
        self.wakeup.set()


class StockViewerTrack(MediaStreamTrack):
    """Benchmark baseline: hands decoded program frames to the viewer's sender, which encodes them itself."""

    kind = "video"

    def __init__(self, output):
        super().__init__()
        self.output = output
        self.queue = deque(maxlen=2)
        self.wakeup = asyncio.Event()
        self.subscribed = False

    async def recv(self):
        if not self.subscribed:
            self.subscribed = True
            self.output.raw_subs.add(self)
        while not self.queue:
            self.wakeup.clear()
            await self.wakeup.wait()
            if self.readyState != "live":
                raise MediaStreamError
        return self.queue.popleft()

    def offer_frame(self, frame):
        self.queue.append(frame)
        self.wakeup.set()

    def stop(self):
        self.output.unsubscribe(self)
        super().stop()
        self.wakeup.set()


class ProgramOutput:
    """Encodes the program once (VP8 + Opus) and hands the same packets to every viewer track."""

    def __init__(self, room, config):
        self.room, self.config = room, config
        self.video_subs = set()
        self.audio_subs = set()
        self.raw_subs = set()  # stock baseline only
        self.vcodec = None
        self.acodec = None
        self.audio_pts = 0
        self.last_video_pts = -1
        self.key_wanted = True
        self.last_key_at = -1e9
        self.keyframe_reasons = deque(maxlen=50)
        self.bytes_window = deque()  # (t, bytes)
        self.emit_times = deque(maxlen=240)
        self.packets_out = 0
        self.clock_origin = time.monotonic()

    # subscriptions
    def subscribe(self, track):
        (self.video_subs if track.kind == "video" else self.audio_subs).add(track)
        if track.kind == "video":
            self.request_keyframe("viewer_join")

    def unsubscribe(self, track):
        self.raw_subs.discard(track)
        self.video_subs.discard(track)
        self.audio_subs.discard(track)

    def request_keyframe(self, reason):
        self.key_wanted = True
        self.keyframe_reasons.append(reason)

    def _want_keyframe(self, now):
        if now - self.last_key_at >= self.config.keyframe_interval_s:
            return True
        return self.key_wanted and now - self.last_key_at >= KEYFRAME_MIN_INTERVAL_S

    # video
    def _video_encoder(self):
        if self.vcodec is None:
            c = av.CodecContext.create("libvpx", "w")
            c.width, c.height, c.pix_fmt = self.config.width, self.config.height, "yuv420p"
            c.time_base = VIDEO_TIME_BASE
            c.framerate = Fraction(self.config.fps, 1)
            c.bit_rate = self.config.video_bitrate
            c.gop_size = 100000  # keyframes are forced by us (periodic, join, PLI)
            c.qmin, c.qmax = 2, 56
            c.thread_count = 1
            c.options = {
                "bufsize": str(self.config.video_bitrate),
                "cpu-used": "8",
                "deadline": "realtime",
                "lag-in-frames": "0",
                "minrate": str(self.config.video_bitrate),
                "maxrate": str(self.config.video_bitrate),
                "overshoot-pct": "15",
                "undershoot-pct": "100",
                "static-thresh": "1",
                "partitions": "0",
                "error-resilient": "1",
            }
            self.vcodec = c
        return self.vcodec

    def encode_video(self, frame, pts, force_key):
        """Runs in a thread: scale/convert, encode; returns the packets."""
        codec = self._video_encoder()
        out = frame.reformat(width=self.config.width, height=self.config.height, format="yuv420p")
        out.pts, out.time_base = pts, VIDEO_TIME_BASE
        out.pict_type = av.video.frame.PictureType.I if force_key else av.video.frame.PictureType.NONE
        try:
            return list(codec.encode(out)), out
        finally:
            # a forced picture type sticks on a shared decoded frame: reset it
            out.pict_type = av.video.frame.PictureType.NONE

    def next_video_pts(self):
        pts = int((time.monotonic() - self.clock_origin) * VIDEO_CLOCK)  # 90 kHz capture clock
        if pts <= self.last_video_pts:
            pts = self.last_video_pts + 1
        self.last_video_pts = pts
        return pts

    def publish_video(self, packets, pts, now):
        for packet in packets:
            packet.pts, packet.dts, packet.time_base = pts, pts, VIDEO_TIME_BASE
            is_key = bool(packet.is_keyframe)
            if is_key:
                self.last_key_at = now
            size = packet.size
            self.bytes_window.append((now, size))
            self.packets_out += 1
            for track in list(self.video_subs):
                track.offer(packet, is_key)
        self.emit_times.append(now)

    # audio
    def encode_audio(self, frame):
        if self.acodec is None:
            c = av.CodecContext.create("libopus", "w")
            c.sample_rate = AUDIO_RATE
            c.layout = "stereo"
            c.format = "s16"
            c.bit_rate = self.config.audio_bitrate
            c.time_base = AUDIO_TIME_BASE
            self.acodec = c
        frame.pts = None
        packets = self.acodec.encode(frame)
        for packet in packets:
            # libopus starts at a negative pts (pre-skip): use our own contiguous clock
            packet.pts = packet.dts = self.audio_pts
            packet.time_base = AUDIO_TIME_BASE
            self.audio_pts += AUDIO_SAMPLES
            self.bytes_window.append((time.monotonic(), packet.size))
            for track in list(self.audio_subs):
                track.offer(packet, True)

    def health(self, now, source):
        while self.bytes_window and now - self.bytes_window[0][0] > 1.0:
            self.bytes_window.popleft()
        return {
            "source": source,
            "viewers": len(self.video_subs),
            "encode_fps": float(sum(1 for t in self.emit_times if now - t <= 1.0)),
            "bitrate_kbps": round(sum(b for _, b in self.bytes_window) * 8 / 1000.0, 1),
        }


@dataclass
class PendingAck:
    target: str
    started: float
    future: asyncio.Future
    extra: dict = field(default_factory=dict)


class RoomEngine:
    """One room: lines, program source, program output, failover, health."""

    def __init__(self, slug, settings, config, hooks):
        self.slug = slug
        self.settings = settings
        self.config = config
        self.hooks = hooks
        self.lines = {role: Line(self, role) for role in LINE_ROLES}
        self.source = settings.program_source if settings.program_source in SOURCES else "primary"
        self.source_before_slate = settings.source_before_slate
        self.selected_by = "initial"
        self.auto_slate = False
        self.output = ProgramOutput(self, config)
        self.viewers = {}  # session id -> (pc, tracks)
        self.pending = []
        self.frame_arrived = asyncio.Event()
        self.auto_switch_times = deque()
        self.holding = False
        self.slate = self._load_slate()
        self.last_origin = None
        self.last_frame = None
        self.tasks = []
        self.running = False
        self.health_snapshot = None
        self.thumbnail_at = -1e9
        self.samples = deque(maxlen=10)
        self.background = set()

    def _load_slate(self):
        s = self.settings
        return SlateSource(s.slate_path, s.slate_kind, self.config.width, self.config.height, s.slate_has_audio)

    def start(self):
        self.running = True
        loop = asyncio.get_running_loop()
        loops = (self._video_pump(), self._audio_pump(), self._monitor(), self._health_beat())
        self.tasks = [loop.create_task(c) for c in loops]

    async def stop(self):
        self.running = False
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        for pc, tracks in list(self.viewers.values()):
            for t in tracks:
                t.stop()
            await pc.close()
        self.viewers.clear()
        for line in self.lines.values():
            await line.detach("room stopped")
            for task in list(line.tasks):
                task.cancel()
        for ack in self.pending:
            if not ack.future.done():
                ack.future.set_exception(CommandError("room stopped"))
        self.slate.close()
        # let audit/health writes already under way finish (bounded)
        if self.background:
            await asyncio.wait(list(self.background), timeout=5)

    def spawn(self, coro):
        task = asyncio.ensure_future(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)
        return task

    def video_arrived(self, role):
        if role == self.source:
            self.frame_arrived.set()

    # --- the program pumps ---
    async def _video_pump(self):
        loop = asyncio.get_running_loop()
        interval = 1.0 / self.config.fps
        repeat_after = max(0.05, 1.5 / self.config.fps)
        last_emit = 0.0
        last_seq = {role: -1 for role in LINE_ROLES}
        while self.running:
            try:
                source = self.source
                line = self.lines.get(source)
                frame, origin = None, source
                if line is not None and line.latest is not None:
                    if line.seq == last_seq[source]:
                        self.frame_arrived.clear()
                        wait = max(0.0, last_emit + repeat_after - time.monotonic())
                        try:
                            await asyncio.wait_for(self.frame_arrived.wait(), wait)
                        except asyncio.TimeoutError:
                            pass
                        if self.source != source:
                            continue
                    # cap at the output frame rate (keep taking the newest frame); a pending switch goes at once
                    gap = last_emit + interval * 0.9 - time.monotonic()
                    if gap > 0 and not self._switch_pending(source):
                        await asyncio.sleep(gap)
                        if self.source != source:
                            continue
                    frame = line.latest
                    if line.seq == last_seq[source]:
                        origin = source + ":repeat"
                    last_seq[source] = line.seq
                else:
                    gap = last_emit + interval - time.monotonic()
                    if gap > 0 and not self._switch_pending(source):
                        await asyncio.sleep(gap)
                        if self.source != source:
                            continue
                    if source != "slate":
                        origin = "filler"  # selected line has no picture yet: show the slate, keep the source
                    frame = self.slate.video_frame()
                now = time.monotonic()
                if self.output.video_subs or self.output.raw_subs:
                    pts = self.output.next_video_pts()
                    force = self.output._want_keyframe(now)
                    if force:
                        self.output.key_wanted = False
                        self.output.last_key_at = now
                    packets, encoded = await loop.run_in_executor(None, self.output.encode_video, frame, pts, force)
                    now = time.monotonic()
                    self.output.publish_video(packets, pts, now)
                    for track in list(self.output.raw_subs):
                        track.offer_frame(encoded)
                # else: nobody is watching: the frame is on program, but encoding it would only burn CPU
                last_emit = now
                self.last_origin = origin
                self._resolve_acks(origin, now)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("%s: video pump iteration failed", self.slug)
                await asyncio.sleep(0.1)

    def _switch_pending(self, source):
        return any(ack.target == source and not ack.future.done() for ack in self.pending)

    def _resolve_acks(self, origin, now):
        if not self.pending:
            return
        remaining = []
        source, _, repeat = origin.partition(":")
        for ack in self.pending:
            if ack.target == source and not ack.future.done():
                ack.future.set_result({
                    "first_frame_at": time.time(),
                    "latency_ms": round((now - ack.started) * 1000.0, 1),
                    # the new source's newest picture was already shown before (the line is stalled)
                    **({"stale_picture": True} if repeat else {}),
                    **ack.extra,
                })
            elif not ack.future.done():
                remaining.append(ack)
        self.pending = remaining

    async def _audio_pump(self):
        silence = silence_frame()
        next_t = time.monotonic()
        while self.running:
            try:
                next_t += AUDIO_SAMPLES / AUDIO_RATE
                delay = next_t - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                elif delay < -0.2:
                    next_t = time.monotonic()  # we fell far behind: resync rather than burst
                source = self.source
                frame = None
                line = self.lines.get(source)
                if line is not None:
                    while len(line.audio) > 3:  # bound latency: keep the newest 60 ms
                        line.audio.popleft()
                    if line.audio:
                        frame = line.audio.popleft()
                elif source == "slate":
                    frame = self.slate.audio_frame()
                if self.output.audio_subs:  # like video: no listener, no encoding
                    self.output.encode_audio(frame if frame is not None else silence)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("%s: audio pump iteration failed", self.slug)
                await asyncio.sleep(0.1)

    # --- monitor: failover every 25 ms; health once a second, on the wall's beat ---
    async def _monitor(self):
        while self.running:
            try:
                await asyncio.sleep(0.025)
                self._evaluate_failover(time.monotonic())
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("%s: monitor iteration failed", self.slug)

    async def _health_beat(self):
        # Sampled just before one of the wall's frame slots (streams/cadence.py), so the sample is
        # on the dashboards within tens of milliseconds instead of waiting up to a frame interval.
        last = time.monotonic()
        while self.running:
            try:
                await asyncio.sleep(max(0.0, cadence.next_sample_at(self.slug) - time.time()))
                now = time.monotonic()
                elapsed, last = now - last, now
                await self._publish_health(now, elapsed)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("%s: health sample failed", self.slug)

    async def _publish_health(self, now, elapsed):
        await asyncio.gather(*(line.update_stats(elapsed) for line in self.lines.values()))
        program = self.output.health(now, self.source)
        program["viewers"] = len(self.viewers)
        program["selected_by"] = self.selected_by
        program["holding"] = self.holding
        health = {
            "at": time.time(),
            "program": program,
            "lines": {role: line.health(now) for role, line in self.lines.items()},
        }
        self.health_snapshot = health
        self.spawn(self.hooks.health(self.slug, health, None))
        if self.config.thumbnail_every_s and now - self.thumbnail_at >= self.config.thumbnail_every_s:
            self.thumbnail_at = now
            line = self.lines.get(self.source)
            picture = line.latest if line is not None and line.latest is not None else self.slate.video_frame()
            jpeg = await asyncio.get_running_loop().run_in_executor(
                None, encode_thumbnail, picture, self.config.thumbnail_width, self.config.thumbnail_height)
            self.spawn(self.hooks.snapshot(self.slug, jpeg))

    def _evaluate_failover(self, now):
        s = self.settings
        for line in self.lines.values():
            if line.trigger(now) is None:
                line.healthy_since = line.healthy_since or now
            else:
                line.healthy_since = None
        if not s.auto_failover:
            return
        source = self.source
        if source in LINE_ROLES:
            line = self.lines[source]
            if not line.ever_had_frame:
                return  # armed only once this line has been on air
            trigger = line.trigger(now)
            if trigger:
                other = self.lines["backup" if source == "primary" else "primary"]
                target = other.role if other.latest is not None and other.trigger(now) is None else "slate"
                detail = {"line": source}
                if trigger == "input_loss" and line.last_frame_at is not None:
                    detail["input_gap_ms"] = round((now - line.last_frame_at) * 1000)  # how long no picture came
                self._auto_switch(target, trigger, now, detail)
                return
            self.holding = False  # the program line is healthy again: a later fault may switch
            if source == "backup" and self.selected_by == "auto" and s.revert_mode == "primary_preferred":
                primary = self.lines["primary"]
                if primary.healthy_since is not None and now - primary.healthy_since >= s.revert_after_s:
                    self._auto_switch("primary", "revert", now, {})
        elif source == "slate" and self.auto_slate:
            for role in LINE_ROLES:
                line = self.lines[role]
                if line.healthy_since is not None and now - line.healthy_since >= 1.0:
                    self._auto_switch(role, "recovered", now, {})
                    return

    def _auto_switch(self, target, trigger, now, detail):
        s = self.settings
        while self.auto_switch_times and now - self.auto_switch_times[0] > s.auto_switch_window_s:
            self.auto_switch_times.popleft()
        if len(self.auto_switch_times) >= s.max_auto_switches:
            if not self.holding:
                self.holding = True
                self.spawn(self.hooks.failover_hold(self.slug, trigger, {
                    "source": self.source, "wanted": target, "switches_in_window": len(self.auto_switch_times),
                    "window_s": s.auto_switch_window_s, **detail}))
            return
        self.auto_switch_times.append(now)
        self.holding = False
        previous = self.source
        future = self._select(target, "auto", now)
        self.spawn(self._report_auto_switch(previous, target, trigger, future, detail))

    async def _report_auto_switch(self, previous, target, trigger, future, detail):
        try:
            ack = await asyncio.wait_for(future, 3.0)
        except Exception:
            ack = {"first_frame_at": None, "latency_ms": None}
        ack = {"from": previous, "to": target, **ack, **detail}
        await self.hooks.auto_switch(self.slug, ack, trigger)

    def _select(self, target, by, now):
        for ack in self.pending:  # a switch not yet on air is superseded by this one
            if ack.target != target and not ack.future.done():
                ack.future.set_exception(CommandError(f"superseded by a switch to {target} before its first frame"))
        self.pending = [ack for ack in self.pending if not ack.future.done()]
        if target == "slate" and self.source != "slate":
            self.source_before_slate = self.source
        self.source = target
        self.selected_by = by
        self.auto_slate = by == "auto" and target == "slate"
        future = asyncio.get_running_loop().create_future()
        self.pending.append(PendingAck(target, now, future))
        self.frame_arrived.set()
        return future

    # --- commands ---
    async def switch_source(self, target, timeout=3.0):
        if target not in SOURCES:
            raise CommandError(f"unknown source {target!r}; use primary, backup or slate")
        previous = self.source
        if target in LINE_ROLES and not self.lines[target].has_picture:
            raise CommandError(f"the {target} line has no picture (no publisher connected)")
        now = time.monotonic()
        if target == previous:
            self.selected_by = "manual"
            self.auto_slate = False
            return {"from": previous, "to": target, "first_frame_at": time.time(), "latency_ms": 0.0,
                    "unchanged": True, "source_before_slate": self.source_before_slate}
        future = self._select(target, "manual", now)
        try:
            ack = await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            raise CommandError(f"no frame of {target} reached the output within {timeout:.0f} s") from None
        return {"from": previous, "to": target, **ack, "source_before_slate": self.source_before_slate}

    async def end_slate(self):
        if self.source != "slate":
            raise CommandError("the program is not on the slate")
        target = self.source_before_slate if self.source_before_slate in LINE_ROLES else "primary"
        if not self.lines[target].has_picture:
            other = "backup" if target == "primary" else "primary"
            if not self.lines[other].has_picture:
                raise CommandError("neither line has a picture: staying on the slate")
            target = other
        return await self.switch_source(target)

    async def request_keyframe(self, role):
        started = time.monotonic()
        if role == "program":
            self.output.request_keyframe("operator")
            self.output.last_key_at = -1e9
            return {"first_frame_at": time.time(), "latency_ms": round((time.monotonic() - started) * 1000, 1)}
        line = self.lines.get(role)
        if line is None:
            raise CommandError(f"unknown line {role!r}")
        if line.pc is None or not line.connected:
            raise CommandError(f"the {role} line has no publisher connected")
        sent = 0
        for receiver in line.pc.getReceivers():
            if receiver.track is not None and receiver.track.kind == "video":
                for source in receiver.getSynchronizationSources():
                    await receiver._send_rtcp_pli(source.source)
                    sent += 1
        if not sent:
            raise CommandError(f"the {role} line has not sent video yet")
        seq = line.seq
        # acknowledge with the first decoded frame after the request (the keyframe, usually)
        for _ in range(100):
            if line.seq != seq:
                break
            await asyncio.sleep(0.01)
        return {"first_frame_at": time.time(), "latency_ms": round((time.monotonic() - started) * 1000, 1),
                "pli_sent": sent}

    async def restart_line(self, role):
        line = self.lines.get(role)
        if line is None:
            raise CommandError(f"unknown line {role!r}")
        had_publisher = line.pc is not None
        session = line.session_id
        await line.detach("restart_line")
        if had_publisher:
            self.spawn(self.hooks.publisher_event(self.slug, role, "publisher_left",
                                                  {"session": session, "reason": "restart_line"}))
        return {"first_frame_at": None, "latency_ms": 0.0, "had_publisher": had_publisher}

    def apply_settings(self, settings):
        slate_changed = (settings.slate_path, settings.slate_kind, settings.slate_has_audio) != (
            self.settings.slate_path, self.settings.slate_kind, self.settings.slate_has_audio)
        self.settings = settings
        if slate_changed:
            self.slate.close()
            self.slate = self._load_slate()

    # --- WHIP: publishers ---
    async def publish(self, role, sdp):
        if role not in LINE_ROLES:
            raise BadOffer(f"unknown line {role!r}")
        validate_offer(sdp, need_video=("vp8", "h264"))
        line = self.lines[role]
        pc = ice.new_peer_connection()
        session_id = uuid.uuid4().hex

        @pc.on("track")
        def on_track(track):
            line.start_drain(pc, track)

        @pc.on("connectionstatechange")
        async def on_state():
            if pc is not line.pc:
                return
            if pc.connectionState == "connected":
                line.connected = True
            elif pc.connectionState in ("failed", "closed"):
                line.connected = False
                line.pc, line.session_id = None, None
                await pc.close()
                self.spawn(self.hooks.publisher_event(self.slug, role, "publisher_left",
                                                      {"session": session_id, "reason": pc.connectionState}))

        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            for transceiver in pc.getTransceivers():
                transceiver.direction = "recvonly"
            ice.answer_as_dtls_server(pc)
            answer = await pc.createAnswer()
            await pc.setLocalDescription(answer)
        except Exception as exc:
            await pc.close()
            raise BadOffer(f"the offer could not be used: {exc}") from None
        replaced_session = line.session_id
        replaced = await line.attach(pc, session_id)
        self.spawn(self.hooks.publisher_event(
            self.slug, role, "publisher_replaced" if replaced else "publisher_connected",
            {"session": session_id, "replaced_session": replaced_session}))
        return session_id, pc.localDescription.sdp

    async def unpublish(self, role, session_id):
        line = self.lines.get(role)
        if line is None or line.session_id != session_id:
            return False
        await line.detach("delete")
        self.spawn(self.hooks.publisher_event(self.slug, role, "publisher_left",
                                              {"session": session_id, "reason": "whip_delete"}))
        return True

    # --- WHEP: viewers ---
    async def play(self, sdp):
        parsed = validate_offer(sdp, need_video=("vp8",))
        if len(self.viewers) >= self.config.max_viewers:
            raise OutputFull(f"this room's output already serves {len(self.viewers)} viewers (the limit); try again later")
        pc = ice.new_peer_connection()
        session_id = uuid.uuid4().hex
        stock = self.config.fanout == "stock"
        video = StockViewerTrack(self.output) if stock else ViewerTrack(self.output, "video")
        vt = pc.addTransceiver(video, direction="sendonly")
        vt.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("video").codecs
                                if c.mimeType.lower() in ("video/vp8", "video/rtx")])
        audio = None
        if any(m.kind == "audio" for m in parsed.media):  # a transceiver without an m-line breaks the answer
            audio = ViewerTrack(self.output, "audio")
            at = pc.addTransceiver(audio, direction="sendonly")
            at.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("audio").codecs
                                    if c.mimeType.lower() == "audio/opus"])
        if not stock:
            # the packet path ignores PLI/FIR: route them to the shared encoder (coalesced)
            vt.sender._send_keyframe = lambda: self.output.request_keyframe("pli")
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            ice.answer_as_dtls_server(pc)
            answer = await pc.createAnswer()
            await pc.setLocalDescription(answer)
        except Exception as exc:
            video.stop()
            if audio is not None:
                audio.stop()
            await pc.close()
            raise BadOffer(f"the offer could not be used: {exc}") from None
        self.viewers[session_id] = (pc, tuple(t for t in (video, audio) if t is not None))

        @pc.on("connectionstatechange")
        async def on_state():
            if pc.connectionState in ("failed", "closed"):
                await self.stop_viewer(session_id)

        return session_id, pc.localDescription.sdp

    async def stop_viewer(self, session_id):
        entry = self.viewers.pop(session_id, None)
        if entry is None:
            return False
        pc, tracks = entry
        for t in tracks:
            t.stop()
        await pc.close()
        return True

    async def add_candidates(self, kind, session_id, sdpfrag, role=None):
        """Trickle ICE (RFC 9725 PATCH with an SDP fragment)."""
        if kind == "whip":
            line = self.lines.get(role)
            pc = line.pc if line is not None and line.session_id == session_id else None
        else:
            pc = self.viewers.get(session_id, (None,))[0]
        if pc is None:
            return False
        mid = None
        transceivers = pc.getTransceivers()
        for raw in sdpfrag.splitlines():
            raw = raw.strip()
            if raw.startswith("a=mid:"):
                mid = raw[6:]
            elif raw.startswith("a=candidate:"):
                candidate = candidate_from_sdp(raw[len("a=candidate:"):])
                candidate.sdpMid = mid or (transceivers[0].mid if transceivers else "0")
                await pc.addIceCandidate(candidate)
        return True


def validate_offer(sdp, need_video):
    """Parse an SDP offer; raise BadOffer with a clear message if it is unusable."""
    from aiortc.sdp import SessionDescription

    if not isinstance(sdp, str) or not sdp.strip().startswith("v=0"):
        raise BadOffer("the body is not an SDP offer (it must start with 'v=0')")
    try:
        parsed = SessionDescription.parse(sdp)
    except Exception as exc:
        raise BadOffer(f"malformed SDP: {exc}") from None
    videos = [m for m in parsed.media if m.kind == "video"]
    if not videos:
        raise BadOffer("the offer has no video section")
    codecs = {c.mimeType.split("/")[-1].lower() for m in videos for c in m.rtp.codecs}
    if not codecs & set(need_video):
        wanted = " or ".join(c.upper() for c in need_video)
        raise BadOffer(f"the offer has no usable video codec: need {wanted}, got {', '.join(sorted(codecs)) or 'none'}")
    if not any(m.ice and m.ice.usernameFragment for m in parsed.media) and not (parsed.ice and parsed.ice.usernameFragment):
        raise BadOffer("the offer has no ICE credentials (a=ice-ufrag / a=ice-pwd)")
    if not any(m.dtls and m.dtls.fingerprints for m in parsed.media) and not (parsed.dtls and parsed.dtls.fingerprints):
        raise BadOffer("the offer has no DTLS fingerprint")
    return parsed


class MediaEngine:
    """All rooms served by this process (runs in one asyncio loop)."""

    def __init__(self, hooks=None, config=None):
        self.hooks = hooks or Hooks()
        self.config = config or OutputConfig()
        self.rooms = {}
        self._starting = {}
        self.loop = None
        self._refresher = None
        self.closing = False

    async def room(self, slug):
        if self.closing:
            raise CommandError("the media worker is shutting down")
        if self.loop is None:
            self.loop = asyncio.get_running_loop()
        if self._refresher is None:
            self._refresher = self.loop.create_task(self._refresh_settings())
        engine = self.rooms.get(slug)
        if engine is not None:
            return engine
        if slug not in self._starting:
            self._starting[slug] = asyncio.ensure_future(self._start_room(slug))
        task = self._starting[slug]
        try:
            return await asyncio.shield(task)
        finally:
            if task.done():  # started, or failed (e.g. no such room): the next call starts afresh
                self._starting.pop(slug, None)

    async def _start_room(self, slug):
        settings = await self.hooks.load_settings(slug)
        engine = RoomEngine(slug, settings, self.config, self.hooks)
        engine.start()
        self.rooms[slug] = engine
        return engine

    async def _refresh_settings(self):
        """Pick up changed failover settings / slate every few seconds."""
        while True:
            await asyncio.sleep(3.0)
            for slug, engine in list(self.rooms.items()):
                try:
                    engine.apply_settings(await self.hooks.load_settings(slug))
                except Exception:
                    logger.exception("%s: reloading settings failed", slug)

    async def stop_room(self, slug):
        engine = self.rooms.pop(slug, None)
        if engine is not None:
            await engine.stop()

    async def shutdown(self):
        self.closing = True
        if self._refresher is not None:
            self._refresher.cancel()
        for slug in list(self.rooms):
            await self.stop_room(slug)

    async def handle(self, op, slug, **kw):
        """One entry point for every request (local calls and channel-layer messages alike)."""
        engine = await self.room(slug)
        if op == "whip":
            session, answer = await engine.publish(kw["role"], kw["sdp"])
            return {"session": session, "sdp": answer}
        if op == "whip_delete":
            return {"deleted": await engine.unpublish(kw["role"], kw["session"])}
        if op == "whep":
            session, answer = await engine.play(kw["sdp"])
            return {"session": session, "sdp": answer}
        if op == "whep_delete":
            return {"deleted": await engine.stop_viewer(kw["session"])}
        if op == "patch":
            return {"ok": await engine.add_candidates(kw["kind"], kw["session"], kw["sdpfrag"], kw.get("role"))}
        if op == "switch_source":
            return await engine.switch_source(kw["source"])
        if op == "end_slate":
            return await engine.end_slate()
        if op == "request_keyframe":
            return await engine.request_keyframe(kw["line_role"])
        if op == "restart_line":
            return await engine.restart_line(kw["line_role"])
        if op == "health":
            return engine.health_snapshot or {}
        if op == "reload":
            engine.apply_settings(await self.hooks.load_settings(slug))
            return {"ok": True}
        raise CommandError(f"unknown operation {op!r}")
