"""Line health from every signal: rate against the line's own healthy rate, loss, jitter, bitrate drop;
the reasons say why; frame age on one monotonic clock, never negative."""

import av
import numpy as np

from streams.media.common import OutputConfig, RoomSettings
from streams.media.engine import Hooks, Line, RoomEngine


def frame(i):
    img = np.full((48, 64, 3), (i * 37) % 256, np.uint8)  # every frame differs: not frozen
    img[..., 1] = 128
    return av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")


def line_on_air(**settings):
    room = RoomEngine("unit-room", RoomSettings(**settings), OutputConfig(), Hooks())
    line = Line(room, "primary")
    line.connected = True
    line.prev_stats = (0, 0, 0)  # stats have a previous second to compare with
    line.stats = {"bitrate_kbps": 900.0, "loss_pct": 0.0, "jitter_ms": 3.0}
    return line


def feed(line, start, seconds, fps):
    """Frames at `fps` from `start`, with a health tick at each whole second; returns the last health."""
    health, n = None, 0
    for second in range(seconds):
        for k in range(fps):
            line.on_video_frame(frame(n), start + second + k / fps)
            n += 1
        health = line.health(start + second + 1 - 0.001)
    return health


def reasons(health):
    return {r["reason"]: r for r in health["reasons"]}


def test_a_line_at_its_healthy_rate_is_ok_and_says_no_reason():
    line = line_on_air()
    health = feed(line, 100.0, 5, 30)
    assert health["state"] == "ok" and health["reasons"] == [] and health["fps"] == 30.0


def test_a_line_below_sixty_percent_of_its_healthy_rate_is_degraded_with_the_figures():
    line = line_on_air()
    feed(line, 100.0, 5, 30)
    health = feed(line, 105.0, 2, 15)
    assert health["state"] == "degraded"
    low = reasons(health)["low_fps"]
    assert low["value"] == 15.0 and low["limit"] == 18.0
    # 20 fps is 67 % of 30: not degraded at the default 60 %, degraded at a room threshold of 70 %
    line = line_on_air()
    feed(line, 100.0, 5, 30)
    assert feed(line, 105.0, 2, 20)["state"] == "ok"
    line = line_on_air(degraded_fps_pct=70)
    feed(line, 100.0, 5, 30)
    assert reasons(feed(line, 105.0, 2, 20))["low_fps"]["limit"] == 21.0


def test_loss_jitter_and_bitrate_drop_are_reasons():
    line = line_on_air()
    feed(line, 100.0, 5, 30)
    line.stats = {"bitrate_kbps": 300.0, "loss_pct": 8.5, "jitter_ms": 75.0}
    health = feed(line, 105.0, 1, 30)
    assert health["state"] == "degraded"
    why = reasons(health)
    assert why["loss"]["value"] == 8.5 and why["loss"]["limit"] == 5.0
    assert why["jitter"]["value"] == 75.0 and why["jitter"]["limit"] == 50
    assert why["bitrate_drop"]["value"] == 300.0 and why["bitrate_drop"]["limit"] == 450.0
    # per-room thresholds
    line = line_on_air(degraded_loss_pct=10, degraded_jitter_ms=100, degraded_bitrate_drop_pct=80)
    feed(line, 100.0, 5, 30)
    line.stats = {"bitrate_kbps": 300.0, "loss_pct": 8.5, "jitter_ms": 75.0}
    assert feed(line, 105.0, 1, 30)["reasons"] == []


def test_no_input_is_down_and_says_so():
    line = line_on_air()
    feed(line, 100.0, 3, 30)
    health = line.health(104.0)  # a second without frames
    assert health["state"] == "down" and reasons(health)["input_loss"]["value"] == 1033  # since the last frame (102.967 s)
    line.connected = False
    health = line.health(104.5)
    assert health["state"] == "down" and [r["reason"] for r in health["reasons"]] == ["no_publisher"]


def test_frame_age_is_never_negative():
    line = line_on_air()
    line.on_video_frame(frame(0), 200.0)
    assert line.health(199.9)["last_frame_age_ms"] == 0  # a frame stamped after the tick began: clamped
    assert line.health(200.25)["last_frame_age_ms"] == 250
    assert line_on_air().health(10.0)["last_frame_age_ms"] is None
