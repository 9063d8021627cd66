"""The program output: encoded once (VP8 + Opus) and fanned out to every viewer track as the same
av.Packets; the slate; thumbnails."""

import asyncio
import logging
import time
from collections import deque
from fractions import Fraction

import av
import numpy as np
from av.video.reformatter import VideoReformatter
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from .common import (
    AUDIO_RATE,
    AUDIO_SAMPLES,
    AUDIO_TIME_BASE,
    KEYFRAME_MIN_INTERVAL_S,
    VIDEO_CLOCK,
    VIDEO_TIME_BASE,
    VIEWER_AUDIO_QUEUE,
    VIEWER_VIDEO_QUEUE,
)

logger = logging.getLogger(__name__)


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
