"""The wall websocket on the real Redis channel layer: snapshot, coalescing, sequence numbers,
role checks on every action, nonce / age refusal, refused handshakes."""

import asyncio
import json
import time
import uuid

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from streams.events import WALL_GROUP
from streams.models import Announcement, ControlAction, HostCue

from .wall_support import stop_hubs  # noqa: F401
from .wall_support import action, communicator, health, receive_frames, seq_of, session_cookie

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("stop_hubs")]


async def connect(user):
    cookie = await sync_to_async(session_cookie)(user)
    comm = communicator("/ws/wall/", cookie)
    connected, _ = await comm.connect(timeout=10)
    assert connected
    return comm


async def test_operator_gets_a_full_snapshot_of_live_rooms_on_connect(room, operator):
    comm = await connect(operator)
    snapshot = await comm.receive_from(timeout=5)
    assert seq_of(snapshot) == 1
    assert 'id="tile-test-room-live"' in snapshot
    assert 'data-rooms="test-room"' in snapshot
    await comm.disconnect()


async def test_health_samples_are_coalesced_into_one_frame_with_the_latest_state(room, operator):
    comm = await connect(operator)
    await comm.receive_from(timeout=5)  # snapshot
    layer = get_channel_layer()
    for kbps in range(1001, 1021):  # 20 samples in a burst: only the last may be shown
        await layer.group_send(WALL_GROUP, {"type": "room.health", "room": room.slug,
                                            "health": health(primary_kbps=float(kbps))})
    frames = await receive_frames(comm, 1.0)
    assert 1 <= len(frames) <= 2, [f[:80] for f in frames]
    assert ">1020<" in frames[-1]
    assert not any(">1005<" in f for f in frames)  # superseded samples are dropped, not queued
    await comm.disconnect()


async def test_frames_carry_consecutive_sequence_numbers_and_respect_the_250ms_tick(room, operator):
    comm = await connect(operator)
    seqs = [seq_of(await comm.receive_from(timeout=5))]
    layer = get_channel_layer()
    arrivals = []
    for i in range(4):
        await layer.group_send(WALL_GROUP, {"type": "room.health", "room": room.slug,
                                            "health": health(primary_kbps=2000.0 + i)})
        frame = await comm.receive_from(timeout=3)
        arrivals.append(time.monotonic())
        seqs.append(seq_of(frame))
        assert f">{2000 + i}<" in frame
    assert seqs == [1, 2, 3, 4, 5]
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
    assert min(gaps) >= 0.2, gaps  # at most one frame per dashboard per 250 ms (small timer slack)
    await comm.disconnect()


async def test_a_line_going_down_turns_the_tile_red_and_a_silent_room_says_no_data(room, operator):
    comm = await connect(operator)
    await comm.receive_from(timeout=5)
    layer = get_channel_layer()
    await layer.group_send(WALL_GROUP, {"type": "room.health", "room": room.slug,
                                        "health": health(primary_state="down")})
    frame = await comm.receive_from(timeout=3)
    assert 'data-status="down"' in frame and 'data-line="primary" data-state="down"' in frame
    stale = await comm.receive_from(timeout=6)  # no further samples: the wall must not keep showing numbers
    assert "stale" in stale and 'data-status="unknown"' in stale
    await comm.disconnect()


@pytest.mark.parametrize("name", ["switch_source", "request_keyframe", "pin_announcement"])
async def test_actions_outside_the_role_are_refused_and_audited(room, outsider, floor_assistant, operator, name):
    # floor control may not switch, ops may not request keyframes, ops may not pin announcements.
    user = {"switch_source": floor_assistant, "request_keyframe": operator, "pin_announcement": operator}[name]
    comm = await connect(user)
    await comm.receive_from(timeout=5)
    await comm.send_to(text_data=action(name, room.slug, source="backup", line="primary"))
    reply = await comm.receive_from(timeout=5)
    assert 'data-outcome="refused"' in reply
    refused = await sync_to_async(list)(ControlAction.objects.filter(action=name, outcome="refused"))
    assert len(refused) == 1 and refused[0].actor_id == user.pk
    assert await sync_to_async(Announcement.objects.count)() == 0
    await comm.disconnect()


async def test_floor_assistant_pins_once_even_if_the_message_is_replayed(room, floor_assistant):
    comm = await connect(floor_assistant)
    await comm.receive_from(timeout=5)
    message = action("pin_announcement", room.slug, text="家人们稍等,马上回来")
    await comm.send_to(text_data=message)
    frames = await receive_frames(comm, 1.5)
    assert any('data-outcome="ok"' in f for f in frames)
    await comm.send_to(text_data=message)  # same nonce: a replay
    frames = await receive_frames(comm, 1.5)
    assert any('data-outcome="refused"' in f and "重复" in f for f in frames)
    assert await sync_to_async(Announcement.objects.count)() == 1
    assert await sync_to_async(ControlAction.objects.filter(action="pin_announcement", outcome="ok").count)() == 1
    await comm.disconnect()


async def test_an_action_older_than_three_seconds_is_refused_not_executed(room, floor_assistant):
    comm = await connect(floor_assistant)
    await comm.receive_from(timeout=5)
    stale = json.dumps({"action": "send_host_cue", "room": room.slug, "text": "请稍等30秒",
                        "nonce": uuid.uuid4().hex, "issued_at": time.time() * 1000 - 4000})
    await comm.send_to(text_data=stale)
    reply = await comm.receive_from(timeout=5)
    assert 'data-outcome="refused"' in reply and "3" in reply
    assert await sync_to_async(HostCue.objects.count)() == 0
    await comm.disconnect()


async def test_a_switch_shows_who_switched_on_the_tile(room, operator, tech_support):
    comm = await connect(operator)
    await comm.receive_from(timeout=5)
    from streams.services import record_action

    await sync_to_async(record_action)(actor=tech_support, action="switch_source", room=room, target="backup",
                                       reason="manual: test", detail={"from": "primary", "to": "backup"})
    room.program_source = "backup"
    await sync_to_async(room.save)(update_fields=["program_source"])
    await sync_to_async(record_action)(actor=None, actor_label="auto", action="set_room_status", room=room)
    frames = await receive_frames(comm, 1.5)
    assert any('data-source="backup"' in f and "tom_tech" in f for f in frames)
    await comm.disconnect()


async def test_anonymous_handshake_is_refused(room):
    comm = communicator("/ws/wall/")
    connected, _ = await comm.connect(timeout=5)
    assert not connected


async def test_outsider_without_a_role_is_refused(room, outsider):
    comm = await sync_to_async(session_cookie)(outsider)
    comm = communicator("/ws/wall/", comm)
    connected, _ = await comm.connect(timeout=5)
    assert not connected


async def test_foreign_origin_handshake_is_refused_even_with_a_valid_session(room, operator):
    cookie = await sync_to_async(session_cookie)(operator)
    comm = communicator("/ws/wall/", cookie, origin=(b"origin", b"http://evil.example"))
    connected, _ = await comm.connect(timeout=5)
    assert not connected


async def test_alert_lands_in_the_feed_and_acknowledgement_records_who(room, operator):
    from streams.models import Alert
    from streams.services import raise_alert

    comm = await connect(operator)
    await comm.receive_from(timeout=5)
    alert = await sync_to_async(raise_alert)(room=room, kind=Alert.Kind.LINE_DOWN, message="主线路中断",
                                             severity=Alert.Severity.CRITICAL, line_role="primary")
    frames = await receive_frames(comm, 1.5)
    joined = "".join(frames)
    assert f'id="alert-{alert.pk}"' in joined and "afterbegin:#alert-list" in joined and "fresh" in joined
    await comm.send_to(text_data=action("acknowledge_alert", room.slug, alert=alert.pk))
    frames = await receive_frames(comm, 1.5)
    joined = "".join(frames)
    assert 'data-outcome="ok"' in joined and "olivia_ops" in joined
    await sync_to_async(alert.refresh_from_db)()
    assert alert.acknowledged_by_id == operator.pk and alert.acknowledged_at is not None
    await comm.disconnect()


async def test_resolved_follow_up_replaces_the_apology(room, floor_assistant):
    from streams.models import AnnouncementTemplate

    await sync_to_async(AnnouncementTemplate.objects.get_or_create)(kind="resolved", defaults={
        "name": "恢复", "text": "直播已恢复,感谢等待!"})
    resolved = await sync_to_async(lambda: AnnouncementTemplate.objects.filter(kind="resolved").first().text)()
    comm = await connect(floor_assistant)
    await comm.receive_from(timeout=5)
    await comm.send_to(text_data=action("pin_announcement", room.slug, eta=3))
    await comm.send_to(text_data=action("pin_announcement", room.slug, kind="resolved"))
    frames = await receive_frames(comm, 2.0)
    assert sum('data-outcome="ok"' in f for f in frames) == 2
    pinned = await sync_to_async(list)(Announcement.objects.filter(room=room, unpinned_at__isnull=True))
    assert [a.text for a in pinned] == [resolved]
    await comm.disconnect()


async def test_dashboards_get_fragments_in_their_own_language(room, operator, tech_support):
    from streams import wall

    zh = await connect(operator)
    await zh.receive_from(timeout=5)
    cookie = await sync_to_async(session_cookie)(tech_support)
    en = communicator("/ws/wall/", cookie + "; django_language=en")
    assert (await en.connect(timeout=10))[0]
    await en.receive_from(timeout=5)
    hub = next(h for h in wall._hubs.values() if not h.loop.is_closed() and h.dashboards)
    assert {d.language for d in hub.dashboards} == {"zh-hans", "en"}
    assert set(hub.tiles) == {"zh-hans", "en"}  # rendered once per language, not per socket
    layer = get_channel_layer()
    await layer.group_send(WALL_GROUP, {"type": "room.health", "room": room.slug, "health": health(primary_kbps=777.0)})
    assert ">777<" in await zh.receive_from(timeout=3)
    assert ">777<" in await en.receive_from(timeout=3)
    await zh.disconnect()
    await en.disconnect()


async def test_a_room_going_live_is_announced_to_open_dashboards(room, operator, manager):
    from streams.models import LiveRoom
    from streams.services import set_room_status

    comm = await connect(operator)
    await comm.receive_from(timeout=5)
    new = await sync_to_async(LiveRoom.objects.create)(name="新直播间", slug="new-room", merchant="新商家")
    await sync_to_async(set_room_status)(room=new, status=LiveRoom.Status.LIVE, actor=manager)
    frames = await receive_frames(comm, 4)
    joined = "".join(frames)
    assert 'id="tile-new-room-head"' in joined and 'id="wall-rooms"' in joined
    assert "new-room" in joined.split('id="wall-rooms"')[1].split(">")[0]
    await sync_to_async(set_room_status)(room=new, status=LiveRoom.Status.ENDED, actor=manager)
    frames = await receive_frames(comm, 4)
    marker = "".join(frames).split('id="wall-rooms"')[1].split(">")[0]
    assert "new-room" not in marker and "test-room" in marker
    await comm.disconnect()


async def test_a_dashboard_that_stops_confirming_frames_is_held_back_then_gets_a_fresh_snapshot(
        room, operator, settings):
    settings.WALL_MAX_UNSEEN_FRAMES = 3
    comm = await connect(operator)
    assert seq_of(await comm.receive_from(timeout=5)) == 1  # the snapshot; this tab never confirms it
    layer = get_channel_layer()
    for i in range(8):  # about eight frames' worth of changes
        await layer.group_send(WALL_GROUP, {"type": "room.health", "room": room.slug,
                                            "health": health(primary_kbps=3000.0 + i)})
        await asyncio.sleep(0.3)
    frames = await receive_frames(comm, 0.6)
    assert [seq_of(f) for f in frames] == [2, 3]  # three unconfirmed frames in flight, no more

    # The tab catches up: one frame with the whole wall as it is now, and the alert feed.
    await comm.send_to(text_data=json.dumps({"seen": 3}))
    resync = await comm.receive_from(timeout=3)
    assert seq_of(resync) == 4
    assert ">3007<" in resync and 'data-rooms="test-room"' in resync and 'id="alert-list"' in resync

    await comm.send_to(text_data=json.dumps({"seen": 4}))
    await layer.group_send(WALL_GROUP, {"type": "room.health", "room": room.slug,
                                        "health": health(primary_kbps=4000.0)})
    frame = await comm.receive_from(timeout=3)
    assert seq_of(frame) == 5 and ">4000<" in frame  # flowing again
    await comm.disconnect()


async def test_a_dashboard_that_stays_behind_is_disconnected_to_reconnect_fresh(room, operator, settings):
    settings.WALL_MAX_UNSEEN_FRAMES = 2
    settings.WALL_SLOW_CLOSE_S = 1
    comm = await connect(operator)
    await comm.receive_from(timeout=5)
    layer = get_channel_layer()
    outputs = []
    for i in range(12):
        await layer.group_send(WALL_GROUP, {"type": "room.health", "room": room.slug,
                                            "health": health(primary_kbps=5000.0 + i)})
        await asyncio.sleep(0.3)
        while not await comm.receive_nothing(timeout=0.01):
            outputs.append(await comm.receive_output(timeout=1))
        if outputs and outputs[-1]["type"] == "websocket.close":
            break
    assert outputs[-1] == {"type": "websocket.close", "code": 4008}
    assert sum(1 for o in outputs if o["type"] == "websocket.send") == 1  # seq 2, then nothing until the close
