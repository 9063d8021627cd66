"""Viewer page sockets: pinned apologies reach viewers, personal notices reach only their viewer,
presence is recorded in batches, viewer counts reach the wall, the host cue screen."""

import asyncio
import json
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.core import signing
from django.utils import timezone

from streams import fanout, selectors
from streams.models import ControlAction, Viewer, ViewerSession

from .wall_support import stop_hubs  # noqa: F401
from .wall_support import communicator, receive_frames, session_cookie

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("stop_hubs")]


async def viewer_socket(slug, device):
    comm = communicator(f"/ws/live/{slug}/", f"cr_device={device}")
    connected, _ = await comm.connect(timeout=10)
    assert connected
    await comm.receive_from(timeout=5)  # the current banner (resync on every connect)
    return comm


async def test_floor_assistant_pins_apology_and_viewers_and_feeds_see_it(room, floor_assistant):
    from streams.services import pin_announcement, unpin_announcement

    viewer = await viewer_socket(room.slug, "dev-a1b2c3d4")
    feed = communicator(f"/ws/rooms/{room.slug}/announcements/")
    assert (await feed.connect(timeout=10))[0]
    assert json.loads(await feed.receive_from(timeout=5)) == {"kind": "announcement", "pinned": None}

    await sync_to_async(pin_announcement)(room=room, actor=floor_assistant,
                                          text="家人们稍安勿躁,技术小哥正在全力抢修,预计5分钟恢复!")
    banner = await viewer.receive_from(timeout=2)
    assert 'id="banner"' in banner and "预计5分钟恢复" in banner
    data = json.loads(await feed.receive_from(timeout=2))
    assert data["pinned"]["text"].endswith("预计5分钟恢复!")

    await sync_to_async(unpin_announcement)(room=room, actor=floor_assistant)
    banner = await viewer.receive_from(timeout=2)
    assert "预计5分钟恢复" not in banner
    assert json.loads(await feed.receive_from(timeout=2))["pinned"] is None
    actions = await sync_to_async(list)(ControlAction.objects.filter(room=room).values_list("action", flat=True))
    assert sorted(actions) == ["pin_announcement", "unpin_announcement"]
    await viewer.disconnect()
    await feed.disconnect()


async def test_template_apology_fills_in_eta_and_replacing_keeps_one_pinned(room, floor_assistant):
    from streams.models import Announcement, AnnouncementTemplate
    from streams.services import pin_announcement

    template = await sync_to_async(AnnouncementTemplate.objects.create)(
        name="t", kind="apology", text="家人们稍安勿躁,技术小哥正在全力抢修,预计{eta}分钟恢复!")
    first = await sync_to_async(pin_announcement)(room=room, actor=floor_assistant, template=template, eta_minutes=8)
    assert first.text == "家人们稍安勿躁,技术小哥正在全力抢修,预计8分钟恢复!"
    await sync_to_async(pin_announcement)(room=room, actor=floor_assistant, text="已恢复,感谢等待")
    pinned = await sync_to_async(list)(Announcement.objects.filter(room=room, unpinned_at__isnull=True))
    assert [a.text for a in pinned] == ["已恢复,感谢等待"]


async def test_personal_notice_reaches_only_the_addressed_viewer(room):
    from streams.services import notify_viewers

    lucky = await viewer_socket(room.slug, "dev-lucky0001")
    other = await viewer_socket(room.slug, "dev-other0002")
    lucky_viewer = await sync_to_async(Viewer.objects.create)(device_id="dev-lucky0001")
    sent = await sync_to_async(notify_viewers)(room=room, viewer_ids=[lucky_viewer.pk], text="您获得了一张10元优惠券")
    assert sent == 1
    notice = await lucky.receive_from(timeout=2)
    assert "10元优惠券" in notice
    assert await other.receive_nothing(timeout=0.5)
    await lucky.disconnect()
    await other.disconnect()


async def test_presence_is_recorded_in_batches_and_compensation_can_select_the_outage_window(room):
    before = timezone.now()
    a = await viewer_socket(room.slug, "dev-presence01")
    b = await viewer_socket(room.slug, "dev-presence02")
    hub = fanout.get_hub()
    await hub.presence.flush()
    sessions = await sync_to_async(list)(ViewerSession.objects.filter(room=room, left_at__isnull=True))
    assert len(sessions) == 2
    await a.disconnect()
    await asyncio.sleep(0.05)
    await hub.presence.flush()
    assert await sync_to_async(ViewerSession.objects.filter(room=room, left_at__isnull=False).count)() == 1
    present = await sync_to_async(lambda: sorted(
        Viewer.objects.filter(pk__in=selectors.viewers_present(room, before, timezone.now()))
        .values_list("device_id", flat=True)))()
    assert present == ["dev-presence01", "dev-presence02"]
    later = timezone.now() + timedelta(seconds=1)
    still_there = await sync_to_async(lambda: list(Viewer.objects.filter(
        pk__in=selectors.viewers_present(room, later, later + timedelta(seconds=1))).values_list("device_id", flat=True)))()
    assert still_there == []  # b's heartbeat (last_seen_at) is now, not in the future
    beat = await sync_to_async(lambda: ViewerSession.objects.get(room=room, left_at__isnull=True).last_seen_at)()
    await asyncio.sleep(0.05)
    await hub.presence.flush()  # the batched heartbeat moves last_seen_at of open sessions forward
    assert await sync_to_async(
        lambda: ViewerSession.objects.get(room=room, left_at__isnull=True).last_seen_at)() > beat
    await b.disconnect()


async def test_viewer_count_flows_to_the_wall(room, operator):
    cookie = await sync_to_async(session_cookie)(operator)
    wall = communicator("/ws/wall/", cookie)
    assert (await wall.connect(timeout=10))[0]
    await wall.receive_from(timeout=5)
    viewers = [await viewer_socket(room.slug, f"dev-count{i:04d}") for i in range(3)]
    await fanout.get_hub().presence.flush()
    frames = await receive_frames(wall, 1.5)
    assert any('class="viewer-count">3<' in f for f in frames), [f[-400:] for f in frames]
    for v in viewers:
        await v.disconnect()
    await wall.disconnect()


async def test_viewer_socket_for_unknown_room_is_refused(room):
    comm = communicator("/ws/live/no-such-room/", "cr_device=dev-x1234567")
    connected, _ = await comm.connect(timeout=5)
    assert not connected


async def test_host_cue_screen_receives_cue_and_tap_acknowledges_it(room, floor_assistant, operator):
    from streams.services import send_host_cue

    key = signing.dumps(room.slug, salt="host-cue-screen")
    screen = communicator(f"/ws/cue/{room.slug}/?k={key}")
    assert (await screen.connect(timeout=10))[0]
    cookie = await sync_to_async(session_cookie)(operator)
    wall = communicator("/ws/wall/", cookie)
    assert (await wall.connect(timeout=10))[0]
    await wall.receive_from(timeout=5)

    cue = await sync_to_async(send_host_cue)(room=room, actor=floor_assistant, text="网络波动,已切备用线路")
    html = await screen.receive_from(timeout=2)
    assert "网络波动,已切备用线路" in html and "afterbegin:#cues" in html
    await screen.send_to(text_data=json.dumps({"ack": cue.pk}))
    acked = await screen.receive_from(timeout=2)
    assert f'id="cue-{cue.pk}"' in acked and "acked" in acked
    await sync_to_async(cue.refresh_from_db)()
    assert cue.acknowledged_at is not None
    assert await sync_to_async(ControlAction.objects.filter(action="ack_host_cue", actor_label="host").count)() == 1
    frames = await receive_frames(wall, 1.5)
    assert any("cue-state acked" in f for f in frames)  # the acknowledgement shows on the tile
    await screen.disconnect()
    await wall.disconnect()


async def test_cue_screen_without_key_or_role_is_refused(room):
    screen = communicator(f"/ws/cue/{room.slug}/?k=forged")
    assert not (await screen.connect(timeout=5))[0]
    other = signing.dumps("other-room", salt="host-cue-screen")
    screen = communicator(f"/ws/cue/{room.slug}/?k={other}")
    assert not (await screen.connect(timeout=5))[0]


async def test_viewers_resync_after_the_hub_loses_its_redis_subscription(room, floor_assistant):
    """Pub/sub is at-most-once: an announcement published while the subscription is down is not lost
    for the viewers, because the hub re-sends the current banner after it resubscribes."""
    import redis
    from django.conf import settings

    from streams.services import pin_announcement

    viewer = await viewer_socket(room.slug, "dev-resync001")
    hub = fanout.get_hub()
    assert hub.ready.is_set()  # the socket got its banner only once the hub was subscribed
    admin = redis.Redis.from_url(settings.REDIS_URL)
    ids = [c["id"] for c in admin.client_list() if c.get("name") == hub.client_name]
    assert len(ids) == 1
    admin.execute_command("CLIENT", "KILL", "ID", ids[0])  # only our hub's connection
    await asyncio.sleep(0.1)
    await sync_to_async(pin_announcement)(room=room, actor=floor_assistant, text="断线期间置顶的公告")
    banner = await viewer.receive_from(timeout=5)  # arrives through the resync, not the lost message
    assert "断线期间置顶的公告" in banner
    assert hub.resyncs == 1
    admin.close()
    await viewer.disconnect()


async def test_floor_assistant_posts_a_canned_reply_as_the_rooms_assistant(room, floor_assistant):
    from streams.models import CannedReply

    from .wall_support import action

    reply = await sync_to_async(CannedReply.objects.create)(title="福利不变", text="今晚所有福利照常发放!")
    viewer = await viewer_socket(room.slug, "dev-chat0001")
    cookie = await sync_to_async(session_cookie)(floor_assistant)
    wall = communicator("/ws/wall/", cookie)
    assert (await wall.connect(timeout=10))[0]
    await wall.receive_from(timeout=5)
    await wall.send_to(text_data=action("post_chat_reply", room.slug, canned=reply.pk))
    chat = await viewer.receive_from(timeout=3)
    assert "今晚所有福利照常发放" in chat and "assistant" in chat and "beforeend:#chat-list" in chat
    row = await sync_to_async(ControlAction.objects.get)(action="post_chat_reply")
    assert row.actor_id == floor_assistant.pk and row.reason == "今晚所有福利照常发放!"
    # A viewer's own comment reaches the room too (rate-limited per socket, not audited as a control action).
    await viewer.send_to(text_data=json.dumps({"chat": "主播加油"}))
    await viewer.send_to(text_data=json.dumps({"chat": "刷屏"}))  # within 1 s: dropped
    mine = await viewer.receive_from(timeout=3)
    assert "主播加油" in mine and "assistant" not in mine
    assert await viewer.receive_nothing(timeout=0.5)
    await viewer.disconnect()
    await wall.disconnect()
