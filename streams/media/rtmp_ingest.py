"""RTMP ingest: a line whose encoder (OBS, 直播伴侣, a hardware encoder) pushes RTMP to the ingest edge
(nginx-rtmp) is pulled back from the edge here and fed to its Line exactly like a WHIP publisher's decoded
frames: hot-standby decode, the same analysis, health and failover. No Django here.

One thread per pulled line opens the stream with PyAV (it waits for the publisher without holding the GIL;
timeouts through PyAV's interrupt callback), demuxes and decodes it, and hands the newest picture and the
audio (resampled to 20 ms s16 stereo at 48 kHz, as the WHIP path delivers it) to the event loop. Handing over
is bounded: one picture slot (a late loop sees the newest frame, never a backlog) and a short audio queue.
When the stream ends or stalls the line is marked lost and the thread reopens it until the line is detached
(the edge reports the publish done, or another publisher took the line).

`RtmpPull` stands in for the publisher's peer connection where `Line` uses one (`connectionState`,
`close()`, `getStats()`, `getReceivers()`), so the room treats both kinds of line alike.
"""

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from types import SimpleNamespace

import av

from .common import AUDIO_RATE, AUDIO_SAMPLES

logger = logging.getLogger(__name__)

OPEN_TIMEOUT_S = 10.0  # waiting for the publisher's first data on the edge
READ_TIMEOUT_S = 2.0  # no data for this long: the pull is dropped and reopened (the line already shows loss)
RETRY_S = 0.5  # between attempts while the line is still wanted
AUDIO_HANDOFF = 10  # decoded 20 ms audio frames waiting for the loop (200 ms); older ones are dropped
# Start fast: the edge sends the stream's headers and a keyframe first; no need to probe for seconds.
PULL_OPTIONS = {"fflags": "nobuffer", "analyzeduration": "300000", "probesize": "65536", "rtmp_live": "live"}


@dataclass(frozen=True)
class RtmpSource:
    """A line the worker must pull from the edge: `session` is the edge's client id of the publisher."""

    role: str
    url: str
    session: str


class RtmpPull:
    """Pulls one RTMP line from the edge on its own thread and feeds its Line on the event loop."""

    kind = "rtmp"

    def __init__(self, line, source, loop, open_timeout_s=OPEN_TIMEOUT_S, read_timeout_s=READ_TIMEOUT_S):
        self.line, self.source, self.loop = line, source, loop
        self.open_timeout_s, self.read_timeout_s = open_timeout_s, read_timeout_s
        self.connectionState = "connecting"
        self.stopping = threading.Event()
        self.bytes_received = 0
        self.opens = 0
        self.last_error = ""
        self._picture = None  # newest decoded picture not yet taken by the loop
        self._audio = deque(maxlen=AUDIO_HANDOFF)
        self._scheduled = False
        self._lock = threading.Lock()
        self.thread = None

    @property
    def session(self):
        return self.source.session

    def start(self):
        self.thread = threading.Thread(target=self._run, name=f"rtmp-pull {self.line.room.slug}/{self.line.role}",
                                       daemon=True)
        self.thread.start()
        return self

    # --- the peer-connection face Line uses ---
    async def close(self):
        """Stop pulling. The thread notices within a read timeout; nothing it decodes reaches the line after this."""
        self.stopping.set()
        self.connectionState = "closed"

    async def getStats(self):
        return {"transport": SimpleNamespace(type="transport", bytesReceived=self.bytes_received)}

    def getReceivers(self):
        return []

    # --- the thread ---
    def _run(self):
        while not self.stopping.is_set():
            container = None
            try:
                container = av.open(self.source.url, options=PULL_OPTIONS,
                                    timeout=(self.open_timeout_s, self.read_timeout_s))
                self.opens += 1
                self._pull(container)
                self.last_error = "the stream ended"
            except Exception as exc:  # noqa: BLE001 - any failure of the pull: reopen while the line is wanted
                self.last_error = str(exc)[:200] or type(exc).__name__
            finally:
                if container is not None:
                    try:
                        container.close()
                    except Exception:  # noqa: BLE001
                        pass
            if self.stopping.is_set():
                return
            try:
                self.loop.call_soon_threadsafe(self._lost)
            except RuntimeError:  # the loop is gone (the process is stopping)
                return
            self.stopping.wait(RETRY_S)

    def _pull(self, container):
        video = container.streams.video[0] if container.streams.video else None
        audio = container.streams.audio[0] if container.streams.audio else None
        if video is None:
            raise ValueError("the stream has no video")
        resampler = av.AudioResampler(format="s16", layout="stereo", rate=AUDIO_RATE, frame_size=AUDIO_SAMPLES)
        for packet in container.demux(*(s for s in (video, audio) if s is not None)):
            if self.stopping.is_set():
                return
            self.bytes_received += packet.size
            if packet.dts is None and packet.size == 0:
                continue  # the demuxer's flush packet
            for frame in packet.decode():
                if packet.stream is video:
                    self._hand_over(picture=frame)
                else:
                    for out in resampler.resample(frame):
                        self._hand_over(sound=out)

    def _hand_over(self, picture=None, sound=None):
        with self._lock:
            if picture is not None:
                self._picture = picture
            if sound is not None:
                self._audio.append(sound)
            if self._scheduled:
                return
            self._scheduled = True
        try:
            self.loop.call_soon_threadsafe(self._deliver)
        except RuntimeError:  # the loop is gone (the process is stopping)
            self.stopping.set()

    # --- on the event loop ---
    def _current(self):
        return self.line.pc is self and not self.stopping.is_set()

    def _deliver(self):
        with self._lock:
            picture, self._picture = self._picture, None
            sounds = list(self._audio)
            self._audio.clear()
            self._scheduled = False
        if not self._current():
            return
        now = time.monotonic()
        if self.connectionState != "connected":
            self.connectionState = "connected"
            self.line.connected = True
        if picture is not None:
            self.line.on_video_frame(picture, now)
            self.line.room.video_arrived(self.line.role)
        for sound in sounds:
            self.line.on_audio_frame(sound, now)

    def _lost(self):
        """The pull ended or stalled: the line has no input until the thread reopens it."""
        if self._current() and self.connectionState == "connected":
            self.connectionState = "connecting"
            self.line.connected = False
            logger.info("%s/%s: RTMP pull lost (%s); reopening", self.line.room.slug, self.line.role, self.last_error)
