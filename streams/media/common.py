"""What every part of the media engine shares: clocks, limits, errors, configuration, the hooks."""

from dataclasses import dataclass
from fractions import Fraction

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
    # Lateness of the process itself (not the line's fault): an event loop late by this much within the last
    # second, or this many frames waiting to be decoded, holds lateness-like failover triggers (input loss,
    # frozen) for at most overload_max_hold_s, so a line that really died is still switched in bounded time.
    # A WHEP viewer or WHIP publisher whose ICE+DTLS has not completed by then is closed (slot freed).
    handshake_timeout_s: float = 5.0
    loop_late_ms: int = 60
    backlog_frames: int = 4
    overload_max_hold_s: float = 2.0
    # RTMP push to the platforms (streams/media/rtmp_push.py): its own profile, encoded once per room
    # and only while the room has an enabled destination; frame rate and keyframe interval as above.
    push_width: int = 1280
    push_height: int = 720
    push_video_bitrate: int = 2_500_000
    push_audio_bitrate: int = 128_000


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
    # Health (not failover): a line is "degraded" below this share of the frame rate it had while healthy,
    # above these loss/jitter figures, or when its bitrate drops by this share of its healthy bitrate.
    degraded_fps_pct: int = 60
    degraded_loss_pct: float = 5.0
    degraded_jitter_ms: int = 50
    degraded_bitrate_drop_pct: int = 50
    slate_path: str = ""
    slate_kind: str = "image"
    slate_has_audio: bool = False
    # enabled RTMP push destinations (rtmp_push.PushTarget: id, label, url with the stream key)
    destinations: tuple = ()
    # lines whose encoder publishes RTMP to the ingest edge right now (rtmp_ingest.RtmpSource: role, url, session)
    rtmp_pulls: tuple = ()


class Hooks:
    """What the engine tells the outside world. bridge.DjangoHooks writes audit rows and publishes."""

    async def load_settings(self, room):
        return RoomSettings()

    async def publisher_event(self, room, role, action, detail):
        pass

    async def auto_switch(self, room, ack, trigger):
        pass

    async def failover_hold(self, room, trigger, detail):
        """The anti-flap hold began (once per hold)."""

    async def failover_hold_report(self, room, trigger, detail):
        """An anti-flap hold's refused switches: detail["phase"] "ongoing" (at most every 30 s) or "ended"."""

    async def worker_overloaded(self, room, trigger, detail):
        """The process ran late and failover was held rather than blame the line: detail["phase"] is "started"
        (once per episode), "ongoing" (at most every 30 s, with the refused count) or "ended" (with the count)."""

    async def health(self, room, health, sample):
        pass

    async def snapshot(self, room, jpeg):
        pass
