"""Operators cut the program between primary, backup and slate; real aiortc viewers see the change."""

import asyncio
import time

import av
import numpy as np
import pytest
from asgiref.sync import sync_to_async
from django.core.files.base import ContentFile

from streams import services
from streams.models import ControlAction, LiveRoom, SlateAsset

from .media_fixtures import media, stop_media  # noqa: F401
from .media_support import COLOURS, Http, Publisher, Viewer, slate_png

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def manual_room(room):
    """Automatic failover off: these stories are about the operator's own cuts (a CPU hiccup on the
    shared test machine must not trigger an automatic switch in between)."""
    room.auto_failover = False
    room.save()
    return room


@pytest.fixture
async def studio(media, manual_room):
    """The test room with a red primary and a green backup publishing, and one viewer."""
    room = manual_room
    http = Http()
    primary = await Publisher(http, room.slug, "primary", room.tokens["primary"], "red", 440).start()
    backup = await Publisher(http, room.slug, "backup", room.tokens["backup"], "green", 660).start()
    viewer = await Viewer(http, room.slug).start()
    await viewer.wait_for("red", timeout=10)
    yield room, http, primary, backup, viewer
    for peer in (viewer, primary, backup):
        await peer.close()
    await stop_media()


async def switch(room, source, actor):
    return await sync_to_async(services.switch_source)(room=room, source=source, actor=actor,
                                                                reason="host mic broken")


async def test_operator_switches_primary_to_backup_to_slate_and_back(studio, operator):
    room, http, primary, backup, viewer = studio
    started = time.monotonic()
    action = await switch(room, "backup", operator)
    await viewer.wait_for("green", since=started, timeout=3)
    assert action.action == "switch_source" and action.target == "backup" and action.outcome == "ok"
    assert action.actor == operator and action.reason == "manual: host mic broken"
    assert action.detail["from"] == "primary" and action.detail["first_frame_at"]
    assert 0 <= action.latency_ms < 1000

    started = time.monotonic()
    await switch(room, "slate", operator)
    await viewer.wait_for("other", since=started, timeout=3)  # the default slate picture
    fresh = await sync_to_async(LiveRoom.objects.get)(pk=room.pk)
    assert fresh.program_source == "slate" and fresh.source_before_slate == "backup"

    started = time.monotonic()
    action = await sync_to_async(services.end_slate)(room=room, actor=operator)
    await viewer.wait_for("green", since=started, timeout=3)
    assert action.action == "end_slate" and action.target == "backup"

    started = time.monotonic()
    await switch(room, "primary", operator)
    await viewer.wait_for("red", since=started, timeout=3)
    # no mixed frames: after the switch settles the viewer only sees red
    await asyncio.sleep(0.5)
    assert {c for t, c in viewer.seen if t > started + 0.3} == {"red"}
    fresh = await sync_to_async(LiveRoom.objects.get)(pk=room.pk)
    assert fresh.program_source == "primary"


async def test_slate_shows_the_rooms_slate_image(media, manual_room, operator):
    room = manual_room
    slate = SlateAsset(name="yellow", kind="image")
    await sync_to_async(slate.file.save)("yellow.png", ContentFile(slate_png("yellow")), save=True)
    room.slate = slate
    await sync_to_async(room.save)()
    http = Http()
    primary = await Publisher(http, room.slug, "primary", room.tokens["primary"], "red").start()
    viewer = await Viewer(http, room.slug).start()
    try:
        await viewer.wait_for("red", timeout=10)
        started = time.monotonic()
        await switch(room, "slate", operator)
        await viewer.wait_for("yellow", since=started, timeout=3)
    finally:
        await viewer.close()
        await primary.close()
        await stop_media()


async def test_slate_video_loops_the_rooms_clip(media, manual_room, operator, tmp_path):
    room = manual_room
    clip = tmp_path / "intro.webm"
    with av.open(str(clip), "w") as container:
        stream = container.add_stream("libvpx", rate=15)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        for i in range(15):
            img = np.empty((120, 160, 3), np.uint8)
            img[:] = COLOURS["blue"]
            img[5:15, i * 8:i * 8 + 10] = 255
            for pkt in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(pkt)
        for pkt in stream.encode(None):
            container.mux(pkt)
    slate = SlateAsset(name="intro", kind="video")
    await sync_to_async(slate.file.save)("intro.webm", ContentFile(clip.read_bytes()), save=True)
    room.slate = slate
    await sync_to_async(room.save)()
    http = Http()
    primary = await Publisher(http, room.slug, "primary", room.tokens["primary"], "red").start()
    viewer = await Viewer(http, room.slug).start()
    try:
        await viewer.wait_for("red", timeout=10)
        started = time.monotonic()
        await switch(room, "slate", operator)
        await viewer.wait_for("blue", since=started, timeout=3)
        await asyncio.sleep(2.5)  # longer than the 1 s clip: it loops, the picture keeps moving
        recent = [i for i, (t, c) in enumerate(viewer.seen) if t > time.monotonic() - 1.0]
        assert {viewer.seen[i][1] for i in recent} == {"blue"}
        assert len({viewer.positions[i] for i in recent}) > 3
    finally:
        await viewer.close()
        await primary.close()
        await stop_media()


async def test_switching_to_a_line_without_publisher_is_refused_and_audited(media, manual_room, operator):
    room = manual_room
    http = Http()
    primary = await Publisher(http, room.slug, "primary", room.tokens["primary"], "red").start()
    viewer = await Viewer(http, room.slug).start()
    try:
        await viewer.wait_for("red", timeout=10)
        with pytest.raises(services.MediaCommandError, match="no picture"):
            await switch(room, "backup", operator)
        row = await sync_to_async(ControlAction.objects.filter(action="switch_source").first)()
        assert row.outcome == "refused" and "no picture" in row.detail["error"]
        assert (await sync_to_async(LiveRoom.objects.get)(pk=room.pk)).program_source == "primary"
        assert viewer.colour == "red"
    finally:
        await viewer.close()
        await primary.close()
        await stop_media()


async def test_two_viewers_see_the_same_source(studio, operator):
    room, http, primary, backup, viewer = studio
    started = time.monotonic()
    second = await Viewer(http, room.slug).start()
    try:
        # a keyframe is forced on join: the viewer need not wait for the 2 s periodic one
        assert await second.wait_for("red", timeout=5) - started < 1.5
        started = time.monotonic()
        await switch(room, "backup", operator)
        t1 = await viewer.wait_for("green", since=started, timeout=3)
        t2 = await second.wait_for("green", since=started, timeout=3)
        assert abs(t1 - t2) < 0.5
    finally:
        await second.close()
