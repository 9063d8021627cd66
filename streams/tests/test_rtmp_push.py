"""The program reaches a (stand-in) platform over RTMP: a private nginx-rtmp receives the push and
Debian's ffmpeg plays it for the whole story, checking which source is on air by colour across a cut to
backup, the slate, back, and a killed primary, with one publish connection and continuous timestamps.
A second destination that is down (closed port) never stops the first."""

import asyncio
import time

import pytest
from asgiref.sync import sync_to_async

from conftest import free_port
from streams import services
from streams.mediaworker import client
from streams.models import Alert, PushDestination

from .media_fixtures import media, stop_media  # noqa: F401 (media: a fixture used below)
from .media_support import Http, Publisher
from .rtmp_support import NginxRtmp, PlatformReader, skip_without_tools

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, skip_without_tools()]

FPS = 30
KEY = "room-key-0123456789"


@pytest.fixture
def platform(tmp_path):
    nginx = NginxRtmp(tmp_path, free_port()).start()
    yield nginx
    nginx.stop()


@pytest.fixture
def push_media(media):
    media.MEDIA_PUSH_WIDTH, media.MEDIA_PUSH_HEIGHT, media.MEDIA_PUSH_BITRATE = 320, 240, 400_000
    return media


async def destination_health(slug, timeout, want):
    """Wait until the worker's health reports the destinations in the wanted states."""
    deadline = time.monotonic() + timeout
    health = {}
    while time.monotonic() < deadline:
        health = await client.call("health", slug)
        states = {d["id"]: d["state"] for d in health.get("destinations", [])}
        if all(states.get(i) in ok for i, ok in want.items()):
            return {d["id"]: d for d in health["destinations"]}
        await asyncio.sleep(0.2)
    raise AssertionError(f"destinations never reached {want}: {health.get('destinations')}")


async def test_the_platform_sees_every_cut_on_one_connection_with_continuous_timestamps(
        push_media, room, platform, operator):
    live = await sync_to_async(PushDestination.objects.create)(
        room=room, platform="douyin", url=platform.url("").rstrip("/"), stream_key=KEY)
    down = await sync_to_async(PushDestination.objects.create)(
        room=room, platform="kuaishou", url=f"rtmp://127.0.0.1:{free_port()}/live", stream_key="nobody-listens")
    http = Http()
    primary = await Publisher(http, room.slug, "primary", room.tokens["primary"], "red", 440).start()
    backup = await Publisher(http, room.slug, "backup", room.tokens["backup"], "green", 660).start()
    reader = None
    try:
        await destination_health(room.slug, 15, {live.pk: {"live"}})
        reader = PlatformReader(platform.url(KEY)).start()
        await reader.wait_for("red", since=0, timeout=15)

        for source, colour in (("backup", "green"), ("slate", "other"), ("primary", "red")):
            started = time.monotonic()
            await sync_to_async(services.switch_source)(room=room, source=source, actor=operator,
                                                                reason="rtmp test")
            await reader.wait_for(colour, since=started, timeout=5)
            await asyncio.sleep(1.0)

        started = time.monotonic()
        primary.set_fault("stall")  # the primary encoder stops sending: automatic failover to the backup
        # generous: the failover's own timing is asserted in test_media_failover (a loaded host holds it)
        await reader.wait_for("green", since=started, timeout=8)
        await asyncio.sleep(1.0)

        health = await destination_health(room.slug, 10, {live.pk: {"live"}, down.pk: {"retrying", "failed"}})
        assert reader.running(), "the platform's player lost the stream"
        assert health[live.pk]["reconnects"] == 0 and health[live.pk]["dropped_frames"] == 0
        assert health[down.pk]["last_error"] and "nobody-listens" not in str(health[down.pk])
        assert platform.publishes(KEY) == 1, "the push connection to the platform was re-established"

        # timestamps: monotonic, no gap longer than two frame durations (FLV has millisecond timestamps)
        ts = reader.video_ts
        # the player read the whole story (three cuts and a failover, ≥ 1 s each): how long it lasted depends on
        # the host's speed, so the span is checked, and the steps below say nothing is missing inside it
        assert ts[-1] - ts[0] > 4.0, f"only {ts[-1] - ts[0]:.1f} s of video ({len(ts)} frames)"
        steps = [b - a for a, b in zip(ts, ts[1:])]
        assert min(steps) > 0 and max(steps) <= 2 / FPS + 0.002, (min(steps), max(steps))
        # audio: every frame follows the previous one exactly (silence rather than holes)
        audio = reader.audio
        assert len(audio) > 100
        holes = [b[0] - (a[0] + a[1] / 48000) for a, b in zip(audio, audio[1:])]
        assert max(abs(h) for h in holes) <= 0.002, max(holes, key=abs)
    finally:
        if reader is not None:
            reader.stop()
        for peer in (primary, backup):
            await peer.close()
        await stop_media()


async def test_a_destination_that_cannot_connect_raises_a_push_failed_alert(push_media, room):
    await sync_to_async(PushDestination.objects.create)(
        room=room, platform="taobao", url=f"rtmp://127.0.0.1:{free_port()}/live", stream_key="nobody-listens")
    http = Http()
    primary = await Publisher(http, room.slug, "primary", room.tokens["primary"], "red", 440).start()
    try:
        deadline = time.monotonic() + 20  # backoff 1 + 2 + 4 s before "failed", then the health beat
        alert = None
        while time.monotonic() < deadline and alert is None:
            await asyncio.sleep(0.5)
            alert = await sync_to_async(Alert.objects.filter(room=room, kind=Alert.Kind.PUSH_FAILED).first)()
        assert alert is not None, "no push_failed alert"
        assert "淘宝直播" in alert.text and "nobody-listens" not in alert.text + str(alert.detail)
    finally:
        await primary.close()
        await stop_media()
