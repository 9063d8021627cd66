"""A room page's socket (/ws/wall/<slug>/) on the real Redis channel layer: its room's tile and alerts only,
actions on its room only."""

import re

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from streams.events import WALL_GROUP
from streams.models import Alert, ControlAction, LiveRoom

from .wall_support import stop_hubs  # noqa: F401
from .wall_support import action, communicator, health, receive_frames, seq_of, session_cookie

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("stop_hubs")]


async def connect(user, path):
    comm = communicator(path, await sync_to_async(session_cookie)(user))
    connected, _ = await comm.connect(timeout=10)
    assert connected
    return comm


def without_triage(frame):
    """A frame without its wall-seq marker and the alert sidebar's summary (every room's, on every page)."""
    frame = re.sub(r'<div id="wall-seq"[^>]*></div>', "", frame)
    return re.sub(r'<section id="alert-triage".*?</section>', "", frame, flags=re.S).strip()


async def result_of(comm):
    """The next action-result frame (tile frames may come first)."""
    for _ in range(20):
        frame = await comm.receive_from(timeout=5)
        if 'id="ack-' in frame:
            return frame
    raise AssertionError("no action result")


async def test_a_room_page_hears_its_room_only_and_acts_on_it_only(room, operator):
    from streams.services import raise_alert

    other = await sync_to_async(LiveRoom.objects.create)(name="别的", slug="other-room", status=LiveRoom.Status.LIVE)
    page = await connect(operator, f"/ws/wall/{room.slug}/")
    wall = await connect(operator, "/ws/wall/")
    snapshot = await page.receive_from(timeout=5)
    assert seq_of(snapshot) == 1 and 'id="tile-test-room-live"' in snapshot
    assert "tile-other-room" not in snapshot and "wall-rooms" not in snapshot
    assert "tile-other-room" in await wall.receive_from(timeout=5)

    layer = get_channel_layer()
    await layer.group_send(WALL_GROUP, {"type": "room.health", "room": other.slug, "health": health(primary_kbps=777.0)})
    await sync_to_async(raise_alert)(room=other, kind=Alert.Kind.LINE_DEGRADED, message="别的直播间卡了")
    assert any(">777<" in f for f in await receive_frames(wall, 1.5))  # the wall hears it ...
    # ... the room page does not: only the alert sidebar's summary, which is of every room on every page
    quiet = await receive_frames(page, 0.5)
    assert [without_triage(f) for f in quiet] in ([], [""])

    await layer.group_send(WALL_GROUP, {"type": "room.health", "room": room.slug, "health": health(primary_kbps=888.0)})
    await sync_to_async(raise_alert)(room=room, kind=Alert.Kind.LINE_DEGRADED, message="本直播间卡了")
    frames = await receive_frames(page, 1.5)
    assert any(">888<" in f for f in frames) and any("本直播间卡了" in f for f in frames)
    assert not any("other-room" in without_triage(f) for f in frames)
    first = 2 + len(quiet)
    assert [seq_of(f) for f in frames] == list(range(first, first + len(frames)))  # no gaps

    await page.send_to(text_data=action("send_host_cue", other.slug, text="串台了"))
    refused = await result_of(page)
    assert "refused" in refused and "此页面只能操作本直播间" in refused
    await page.send_to(text_data=action("send_host_cue", room.slug, text="本间提词"))
    assert 'class="ack ok"' in await result_of(page)
    rows = await sync_to_async(lambda: list(ControlAction.objects.filter(action="send_host_cue")
                                            .values_list("room__slug", "reason")))()
    assert rows == [(room.slug, "本间提词")]
    await page.disconnect()
    await wall.disconnect()
