"""Ingest: one Line per role (primary, backup) drains its publisher's decoded frames continuously
(hot standby), keeps the newest picture and analyses it (luma, freeze, black, silence, rate)."""

import asyncio
import logging
import math
import time
from collections import deque

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError

from . import audio_level
from .common import AUDIO_RATE, AUDIO_SAMPLES, LINE_AUDIO_BUFFER, RECEIVE_QUEUE_KEEP, VIDEO_CLOCK

logger = logging.getLogger(__name__)


def luma_sample(frame):
    """Mean luma and a coarse (every 8th pixel) luma grid used to detect frozen pictures."""
    if frame.format.name not in ("yuv420p", "yuvj420p", "nv12", "yuv422p", "yuv444p"):
        frame = frame.reformat(format="yuv420p")
    plane = frame.planes[0]
    arr = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[: frame.height, : frame.width]
    grid = arr[::8, ::8]
    return float(grid.mean()), grid.astype(np.int16)

def audio_dbfs(frame):
    samples = frame.to_ndarray().astype(np.float32)
    if samples.size == 0:
        return -120.0
    rms = math.sqrt(float(np.mean(samples * samples)))
    return max(-120.0, 20 * math.log10(rms / 32768.0 + 1e-12))

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
        self.receivers = []  # (RTCRtpReceiver, track) of the current publisher, for the decode backlog
        self.healthy_samples = deque(maxlen=30)  # {"fps", "bitrate_kbps"} of recent healthy seconds
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
        audio_level.measure(self, frame, now)
        quiet = self.dbfs < self.room.settings.silence_dbfs
        self.quiet_since = (self.quiet_since or now) if quiet else None
        self.audio.append(frame)

    @property
    def has_picture(self):
        return self.connected and self.latest is not None

    def fps(self, now, window=1.0):
        return float(sum(1 for t in self.frame_times if now - t <= window)) / window

    def observed_ms(self, since, now):
        """Milliseconds since `since` that the process was able to observe (its own lateness left out)."""
        return self.room.monitor.observed(since, now) * 1000

    def frame_age_ms(self, now):
        """Wall age of the newest picture on the monotonic clock, never negative; None before the first."""
        return None if self.last_frame_at is None else max(0.0, (now - self.last_frame_at) * 1000)

    def decode_backlog(self):
        """Frames of this line waiting for us: encoded in aiortc's decoder queue, decoded in the receive queue."""
        waiting = 0
        for receiver, track in self.receivers:
            decoder_queue = getattr(receiver, "_RTCRtpReceiver__decoder_queue", None)
            if decoder_queue is not None:
                waiting += decoder_queue.qsize()
            queue = getattr(track, "_queue", None)
            if queue is not None:
                waiting += max(0, queue.qsize() - RECEIVE_QUEUE_KEEP)
        return waiting

    @property
    def publisher_gone(self):
        return self.pc is None or self.pc.connectionState in ("failed", "closed")

    def trigger(self, now, excuse_lateness=True):
        """The failover trigger this line currently meets, or None when healthy. Gaps count only the time
        this process was able to observe: a loop that ran late saw no frames through no fault of the line.
        With excuse_lateness=False, wall time (the strict measure, for recovery)."""
        s = self.room.settings
        span = self.observed_ms if excuse_lateness else (lambda since, t: (t - since) * 1000)
        if not self.connected or self.last_frame_at is None or span(self.last_frame_at, now) >= s.input_loss_ms:
            return "input_loss"
        if self.still_since is not None and span(self.still_since, now) >= s.frozen_ms:
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

    def reasons(self, now):
        """Why the line is not "ok": [{"reason", "value", "limit"}], worst first. Rate and bitrate are judged
        against what this line delivered while healthy (the median of its recent healthy seconds)."""
        s = self.room.settings
        out = []
        if not self.connected:
            return [{"reason": "no_publisher", "value": None, "limit": None}]
        age = self.frame_age_ms(now)
        if age is None or self.observed_ms(self.last_frame_at, now) >= s.input_loss_ms:
            return [{"reason": "input_loss", "value": None if age is None else round(age), "limit": s.input_loss_ms}]
        if self.still_since is not None and (now - self.still_since) * 1000 >= min(s.frozen_ms, 1000):
            out.append({"reason": "frozen", "value": round((now - self.still_since) * 1000), "limit": s.frozen_ms})
        if self.black_since is not None and (now - self.black_since) * 1000 >= min(s.black_ms, 1000):
            out.append({"reason": "black", "value": None if self.luma is None else round(self.luma, 1),
                        "limit": s.black_luma_threshold})
        if self.has_audio and (
            (self.quiet_since is not None and (now - self.quiet_since) * 1000 >= min(s.silence_ms, 1000))
            or (self.last_audio_at is not None and now - self.last_audio_at >= 1.0)
        ):
            out.append({"reason": "silent", "value": None if self.dbfs is None else round(self.dbfs, 1),
                        "limit": s.silence_dbfs})
        fps = self.fps(now)
        nominal_fps = self.nominal("fps")
        if nominal_fps and fps < nominal_fps * s.degraded_fps_pct / 100:
            out.append({"reason": "low_fps", "value": round(fps, 1),
                        "limit": round(nominal_fps * s.degraded_fps_pct / 100, 1)})
        if self.stats["loss_pct"] > s.degraded_loss_pct:
            out.append({"reason": "loss", "value": round(self.stats["loss_pct"], 2), "limit": s.degraded_loss_pct})
        if self.stats["jitter_ms"] > s.degraded_jitter_ms:
            out.append({"reason": "jitter", "value": round(self.stats["jitter_ms"], 1), "limit": s.degraded_jitter_ms})
        nominal_kbps = self.nominal("bitrate_kbps")
        floor = nominal_kbps * (100 - s.degraded_bitrate_drop_pct) / 100 if nominal_kbps else 0
        if self.prev_stats is not None and floor and self.stats["bitrate_kbps"] < floor:
            out.append({"reason": "bitrate_drop", "value": round(self.stats["bitrate_kbps"], 1), "limit": round(floor, 1)})
        return out

    def nominal(self, key):
        """Median of the line's recent healthy seconds (None until it has had a few)."""
        values = sorted(sample[key] for sample in self.healthy_samples)
        return values[len(values) // 2] if len(values) >= 3 else None

    def health(self, now):
        """Once a second: the line's figures, its state and the reasons for it."""
        reasons = self.reasons(now)
        names = {r["reason"] for r in reasons}
        trigger = self.trigger(now)
        if names & {"no_publisher", "input_loss"}:
            state = "down"
        elif reasons or trigger:
            state = "degraded"
        else:
            state = "ok"
        fps = self.fps(now)
        if state == "ok" and self.prev_stats is not None:
            self.healthy_samples.append({"fps": fps, "bitrate_kbps": self.stats["bitrate_kbps"]})
        age = self.frame_age_ms(now)
        return {
            "connected": self.connected,
            "kind": getattr(self.pc, "kind", "whip"),  # rtmp: pulled from the ingest edge (rtmp_ingest.RtmpPull)
            "bitrate_kbps": round(self.stats["bitrate_kbps"], 1),
            "fps": round(fps, 1),
            "width": self.width,
            "height": self.height,
            "loss_pct": round(self.stats["loss_pct"], 2),
            "jitter_ms": round(self.stats["jitter_ms"], 1),
            "last_frame_age_ms": None if age is None else round(age),
            "frozen": "frozen" in names,
            "black": "black" in names,
            "silent": "silent" in names,
            "audio_dbfs": None if self.dbfs is None else round(self.dbfs, 1),
            "audio_level": audio_level.read(self, now),
            "luma": None if self.luma is None else round(self.luma, 1),
            "state": state,
            "trigger": trigger,
            "reasons": reasons,
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
        self.healthy_samples.clear()  # a new publisher may send another rate: learn it afresh
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
        self.receivers = []
        if pc is not None:
            await self._close_pc(pc)

    def start_drain(self, pc, track):
        receiver = next((r for r in pc.getReceivers() if r.track is track), None)
        if receiver is not None:
            self.receivers = [(r, t) for r, t in self.receivers if r in pc.getReceivers()] + [(receiver, track)]
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
