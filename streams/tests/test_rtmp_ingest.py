"""RTMP ingest with independent tools on every side: Debian's ffmpeg encoders publish RTMP (distinct colours
and tones) to the product's ingest edge (nginx-rtmp, config from `manage.py rtmp_edge_config`), whose
on_publish / on_publish_done callbacks reach a real Daphne; a `mediaworker` process pulls the lines from the
edge and pushes the program to the edge's stand-in platform, where another ffmpeg plays what an audience
would receive. Source identity by colour across cuts, the slate and a killed primary encoder; the push
connection never drops and its timestamps stay continuous."""

import asyncio
import time

import pytest
from asgiref.sync import sync_to_async

from conftest import free_port, running_daphne
from streams import services
from streams.mediaworker import client
from streams.models import ControlAction, IngestLine, PushDestination

from .rtmp_support import Edge, FfmpegEncoder, PlatformReader, skip_without_tools
from .test_media_process import clean_heartbeats, start_worker, stop, wait_lease  # noqa: F401 (fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, skip_without_tools()]

FPS = 30
RED, GREEN = "DC1E1E", "1EC83C"  # media_support.COLOURS red and green


@pytest.fixture
def rtmp_room(room):
    IngestLine.objects.filter(room=room).update(kind=IngestLine.Kind.RTMP)
    return room


@pytest.fixture
def stack(tmp_path, subprocess_env, rtmp_room, clean_heartbeats):  # noqa: F811
    """Web (Daphne), the edge calling it, and a media worker pulling from the edge."""
    ingest_port, platform_port = free_port(), free_port()
    env = {**subprocess_env, "RTMP_EDGE_PULL_URL": f"rtmp://127.0.0.1:{ingest_port}/ingest",
           "MEDIA_PUSH_WIDTH": "320", "MEDIA_PUSH_HEIGHT": "240", "MEDIA_PUSH_BITRATE": "400000"}
    with running_daphne(env, "daphne-rtmp-ingest.log") as web:
        edge = Edge(tmp_path / "edge", web, ingest_port, platform_port).start()
        worker = start_worker(env, "test-rtmp")
        try:
            yield edge
        finally:
            edge.stop()
            stop(worker)


def key(room, role):
    return f"{room.slug}.{role}.{room.tokens[role]}"


async def line_health(slug, role, want, timeout):
    deadline = time.monotonic() + timeout
    health = {}
    while time.monotonic() < deadline:
        try:
            health = await client.call("health", slug, timeout=5)
        except Exception:  # noqa: BLE001 - the worker may still be taking the room
            health = {}
        line = health.get("lines", {}).get(role, {})
        if want(line):
            return line
        await asyncio.sleep(0.25)
    raise AssertionError(f"{role} never reached the wanted state: {health.get('lines', {}).get(role)}")


def connected_with_picture(line):
    return line.get("connected") and line.get("state") != "down" and line.get("last_frame_age_ms") is not None


async def actions(room, action, outcome="ok", target=None):
    qs = ControlAction.objects.filter(room=room, action=action, outcome=outcome)
    if target:
        qs = qs.filter(target=target)
    return await sync_to_async(qs.count)()


async def test_encoders_over_rtmp_reach_the_platform_across_cuts_and_a_killed_primary(stack, rtmp_room, operator):
    edge, room = stack, rtmp_room
    await wait_lease(room.slug, "test-rtmp")
    await sync_to_async(PushDestination.objects.create)(
        room=room, platform="douyin", url=edge.platform_base(), stream_key=room.slug)
    primary = FfmpegEncoder(edge.ingest_url(key(room, "primary")), RED, 440).start()
    backup = FfmpegEncoder(edge.ingest_url(key(room, "backup")), GREEN, 660).start()
    reader = None
    try:
        assert (await line_health(room.slug, "primary", connected_with_picture, 30))["kind"] == "rtmp"
        await line_health(room.slug, "backup", connected_with_picture, 30)
        assert await actions(room, "rtmp_publish", target="primary") == 1
        assert "rtmp://" not in str(await sync_to_async(list)(ControlAction.objects.values_list("detail", flat=True)))
        reader = PlatformReader(f"{edge.platform_base()}/{room.slug}").start()
        await reader.wait_for("red", since=0, timeout=20)

        for source, colour in (("backup", "green"), ("slate", "other"), ("primary", "red")):
            started = time.monotonic()
            await sync_to_async(services.switch_source)(room=room, source=source, actor=operator, reason="rtmp test")
            await reader.wait_for(colour, since=started, timeout=8)
            await asyncio.sleep(1.0)

        # the primary encoder dies: the edge reports the publish done, the line is lost, the backup goes on air
        started = time.monotonic()
        primary.kill()
        await reader.wait_for("green", since=started, timeout=10)
        await line_health(room.slug, "primary", lambda line: line.get("state") == "down", 15)
        deadline = time.monotonic() + 15
        while await actions(room, "rtmp_publish_done", target="primary") < 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.3)
        assert await actions(room, "rtmp_publish_done", target="primary") == 1
        await asyncio.sleep(1.0)

        # the encoder comes back (a new connection): the worker pulls it again, and it can go on air
        primary = FfmpegEncoder(edge.ingest_url(key(room, "primary")), RED, 440).start()
        await line_health(room.slug, "primary", connected_with_picture, 30)
        started = time.monotonic()
        await sync_to_async(services.switch_source)(room=room, source="primary", actor=operator, reason="rtmp test")
        await reader.wait_for("red", since=started, timeout=8)
        await asyncio.sleep(1.0)

        assert reader.running(), "the platform's player lost the stream"
        assert edge.publishes(room.slug) == 1, "the push connection to the platform was re-established"
        ts = reader.video_ts
        assert ts[-1] - ts[0] > 6.0, f"only {ts[-1] - ts[0]:.1f} s of video ({len(ts)} frames)"
        steps = [b - a for a, b in zip(ts, ts[1:])]
        assert min(steps) > 0 and max(steps) <= 2 / FPS + 0.002, (min(steps), max(steps))
        audio = reader.audio
        assert len(audio) > 100
        holes = [b[0] - (a[0] + a[1] / 48000) for a, b in zip(audio, audio[1:])]
        assert max(abs(h) for h in holes) <= 0.002, max(holes, key=abs)
        assert await actions(room, "rtmp_publish", target="primary") == 2
    finally:
        if reader is not None:
            reader.stop()
        for encoder in (primary, backup):
            encoder.stop()


async def test_the_edge_refuses_a_wrong_stream_key_and_a_whip_line(stack, rtmp_room):
    edge, room = stack, rtmp_room
    wrong = FfmpegEncoder(edge.ingest_url(f"{room.slug}.primary.not-the-token"), RED).start()
    assert wrong.wait(20) not in (None, 0), "ffmpeg kept publishing with a wrong stream key"
    garbage = FfmpegEncoder(edge.ingest_url("no-such-key"), RED).start()
    assert garbage.wait(20) not in (None, 0)
    await sync_to_async(IngestLine.objects.filter(room=room, role="backup").update)(kind=IngestLine.Kind.WHIP)
    whip_line = FfmpegEncoder(edge.ingest_url(key(room, "backup")), GREEN).start()
    assert whip_line.wait(20) not in (None, 0), "an RTMP publish was accepted for a WHIP line"
    assert await actions(room, "rtmp_publish") == 0
    assert await actions(room, "rtmp_publish", outcome="refused", target="primary") == 1
    assert await actions(room, "rtmp_publish", outcome="refused", target="backup") == 1
    lines = await sync_to_async(list)(IngestLine.objects.filter(room=room).values_list("rtmp_client", flat=True))
    assert lines == ["", ""]
    details = await sync_to_async(list)(ControlAction.objects.filter(room=room).values_list("detail", "reason"))
    assert room.tokens["backup"] not in str(details)
