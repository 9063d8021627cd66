"""The pusher on its own (no Django): a platform that accepts the TCP connection and never answers is
abandoned after the connect timeout and retried, while the healthy destination keeps its one connection."""

import socket
import time

import av
import numpy as np
import pytest

from conftest import free_port
from streams.media.rtmp_push import ProgramPush, PushProfile, PushTarget, safe_url

from .rtmp_support import NginxRtmp, skip_without_tools

pytestmark = skip_without_tools()


def test_safe_url_hides_the_key():
    assert safe_url("rtmp://push.example.com/live/sk-123?auth=x") == "rtmp://push.example.com/live/****"
    assert safe_url("rtmps://h:443/app/key") == "rtmps://h:443/app/****"
    assert safe_url("garbage") == "****"


def test_a_platform_that_never_answers_is_retried_without_touching_the_healthy_one(tmp_path):
    nginx = NginxRtmp(tmp_path, free_port()).start()
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # the kernel completes the TCP handshake; nobody ever answers the RTMP handshake
    push = ProgramPush("unit", PushProfile(width=160, height=120, video_bitrate=300_000, connect_timeout_s=1.5,
                                           backoff_min_s=0.5, max_stuck_connections=2))
    try:
        push.apply([PushTarget(1, "douyin", nginx.url("good-key")),
                    PushTarget(2, "other", f"rtmp://127.0.0.1:{silent.getsockname()[1]}/live/hang-key")])
        picture = av.VideoFrame.from_ndarray(np.full((120, 160, 3), 90, np.uint8), format="rgb24")
        audio = av.AudioFrame.from_ndarray(np.zeros((1, 1920), np.int16), format="s16", layout="stereo")
        audio.sample_rate = 48000
        started = time.monotonic()
        while time.monotonic() - started < 9:
            push.offer_video(picture, "primary")
            push.offer_audio(audio)
            time.sleep(0.02)
        good, hung = push.health()
        assert good["state"] == "live" and good["reconnects"] == 0 and good["dropped_frames"] == 0
        assert good["fps"] >= 20
        assert nginx.publishes("good-key") == 1
        assert hung["state"] in ("retrying", "failed") and hung["last_error"] == "timed out connecting to the platform"
        assert hung["reconnects"] >= 2  # abandoned and started again, more than once
        stuck = push.destinations[PushTarget(2, "other", f"rtmp://127.0.0.1:{silent.getsockname()[1]}/live/hang-key")]
        assert sum(t.is_alive() for t in stuck.threads) <= 2  # bounded: max_stuck_connections
        assert "hang-key" not in str(hung)
    finally:
        push.stop(wait_s=0.5)
        silent.close()
        nginx.stop()


def test_each_platform_outage_is_retried_from_the_shortest_backoff(tmp_path):
    """A platform that drops the connection (restarted) is reconnected after the shortest backoff every
    time: a session that went live ends an outage, even when it ended with a write error."""
    nginx = NginxRtmp(tmp_path, free_port()).start()
    push = ProgramPush("unit", PushProfile(width=160, height=120, video_bitrate=300_000, backoff_min_s=0.5,
                                           backoff_max_s=30.0))
    picture = av.VideoFrame.from_ndarray(np.full((120, 160, 3), 90, np.uint8), format="rgb24")
    audio = av.AudioFrame.from_ndarray(np.zeros((1, 1920), np.int16), format="s16", layout="stereo")
    audio.sample_rate = 48000

    def feed_until(seconds, done=lambda: False):
        started = time.monotonic()
        while time.monotonic() - started < seconds and not done():
            push.offer_video(picture, "primary")
            push.offer_audio(audio)
            time.sleep(0.02)
        return time.monotonic() - started

    try:
        push.apply([PushTarget(1, "douyin", nginx.url("key"))])
        feed_until(10, lambda: push.health()[0]["state"] == "live")
        for outage in range(4):
            nginx.stop()
            feed_until(0.5)
            nginx.start()
            took = feed_until(15, lambda: nginx.publishes("key") == outage + 2)
            # generous for a loaded host; with doubling backoff the 4th outage alone waits 0.5 * 2**4 = 8 s
            assert nginx.publishes("key") == outage + 2 and took < 6, (outage, took)
    finally:
        push.stop(wait_s=0.5)
        nginx.stop()
