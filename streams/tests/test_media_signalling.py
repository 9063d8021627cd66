"""WHIP/WHEP signalling: bad input gets a clear error, sessions end, publishers reconnect; health."""

import asyncio
import time

import pytest
from aiortc import RTCSessionDescription
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from streams.events import health_messages
from streams.media import ice
from streams.models import ControlAction, HealthSample, IngestLine

from .media_fixtures import media, stop_media  # noqa: F401
from .media_support import ColourTrack, Http, Publisher, Viewer, offer_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
async def http(media):
    yield Http()
    await stop_media()


async def a_publisher_offer():
    pc = ice.new_peer_connection()
    pc.addTransceiver(ColourTrack("red"), direction="sendonly")
    sdp = await offer_for(pc)
    await pc.close()
    return sdp


async def rows(**filters):
    return await sync_to_async(lambda: list(ControlAction.objects.filter(**filters).order_by("pk")))()


async def test_bad_whip_requests_get_clear_errors_and_change_nothing(http, room):
    offer = await a_publisher_offer()
    auth = {"Authorization": f"Bearer {room.tokens['primary']}"}
    cases = [
        ("wrong token", f"/whip/{room.slug}/primary", offer, {"Authorization": "Bearer nope"}, 401, "token"),
        ("backup token on primary", f"/whip/{room.slug}/primary", offer,
         {"Authorization": f"Bearer {room.tokens['backup']}"}, 401, "token"),
        ("no token", f"/whip/{room.slug}/primary", offer, {}, 401, "token"),
        ("unknown room", "/whip/no-such-room/primary", offer, auth, 404, "no room"),
        ("unknown line", f"/whip/{room.slug}/tertiary", offer, auth, 404, "unknown line"),
        ("not SDP", f"/whip/{room.slug}/primary", "hello", auth, 400, "not an SDP offer"),
        ("malformed SDP", f"/whip/{room.slug}/primary", "v=0\r\nm=video x\r\n", auth, 400, "SDP"),
        ("no usable codec", f"/whip/{room.slug}/primary",
         offer.replace("VP8/90000", "VP9/90000").replace("H264/90000", "AV1/90000"), auth, 400,
         "no usable video codec"),
        ("audio only", f"/whip/{room.slug}/primary",
         offer.split("m=video")[0], auth, 400, "no video"),
    ]
    for name, path, body, headers, status, words in cases:
        got, text, response_headers = await http.request("POST", path, body, headers)
        assert (got, words.lower() in text.lower()) == (status, True), (name, got, text)
        if status == 401:
            assert response_headers.get("WWW-Authenticate", "").startswith("Bearer")
    got, text, _ = await http.request("POST", f"/whip/{room.slug}/primary", offer, auth, content_type="text/plain")
    assert got == 415
    got, _, headers = await http.request("OPTIONS", f"/whip/{room.slug}/primary")
    assert got == 204 and "POST" in headers["Access-Control-Allow-Methods"]
    assert "Authorization" in headers["Access-Control-Allow-Headers"] and "Location" in headers["Access-Control-Expose-Headers"]
    assert await rows(action__startswith="publisher_") == []
    assert await sync_to_async(lambda: set(IngestLine.objects.values_list("state", flat=True)))() == {"idle"}


async def test_viewers_beyond_the_output_cap_are_told_to_come_back_later(media, room):
    media.MEDIA_MAX_VIEWERS_PER_ROOM = 1
    http = Http()
    first = await Viewer(http, room.slug).start()
    try:
        for _ in range(200):  # a viewer still handshaking would give its seat to the next one
            if first.pc.connectionState == "connected":
                break
            await asyncio.sleep(0.05)
        assert first.pc.connectionState == "connected"
        pc = ice.new_peer_connection()
        pc.addTransceiver("video", direction="recvonly")
        status, text, headers = await http.request("POST", f"/whep/{room.slug}", await offer_for(pc))
        await pc.close()
        assert status == 503 and "limit" in text and headers["Retry-After"] == "10"
        status, _, _ = await http.request("DELETE", first.location)
        assert status == 200
        second = await Viewer(http, room.slug).start()  # a seat is free again
        await second.close()
    finally:
        await first.close()
        await stop_media()


async def test_a_viewers_picture_loss_indication_reaches_the_shared_encoder(http, room):
    from streams.mediaworker import client

    publisher = await Publisher(http, room.slug, "primary", room.tokens["primary"], "red").start()
    viewer = await Viewer(http, room.slug).start()
    try:
        await viewer.wait_for("red", timeout=10)
        output = client.local_engine().rooms[room.slug].output
        output.keyframe_reasons.clear()
        receiver = next(r for r in viewer.pc.getReceivers() if r.track.kind == "video")
        ssrc = receiver.getSynchronizationSources()[0].source
        await receiver._send_rtcp_pli(ssrc)  # what a decoder does after losing a picture
        for _ in range(50):
            if "pli" in output.keyframe_reasons:
                break
            await asyncio.sleep(0.02)
        assert "pli" in output.keyframe_reasons
    finally:
        await viewer.close()
        await publisher.close()


async def test_bad_whep_requests(http, room):
    got, text, _ = await http.request("POST", "/whep/no-such-room", await a_publisher_offer())
    assert got == 404 and "no room" in text
    got, text, _ = await http.request("POST", f"/whep/{room.slug}", "garbage")
    assert got == 400
    got, text, _ = await http.request("DELETE", f"/whep/{room.slug}/deadbeef")
    assert got == 404


async def test_publisher_delete_ends_the_session_and_is_audited(http, room):
    publisher = await Publisher(http, room.slug, "primary", room.tokens["primary"], "red").start()
    viewer = await Viewer(http, room.slug).start()
    try:
        await viewer.wait_for("red", timeout=10)
        assert publisher.location.startswith(f"/whip/{room.slug}/primary/")
        assert await publisher.delete() == 200
        assert await publisher.delete() == 404  # already ended
        left = await rows(action="publisher_left")
        for _ in range(40):
            if left:
                break
            await asyncio.sleep(0.05)
            left = await rows(action="publisher_left")
        assert left[0].actor_label == "mediaworker" and left[0].target == "primary"
        assert left[0].detail["reason"] == "whip_delete"
        # the output never ends: the viewer keeps receiving (the last picture / slate filler)
        count = len(viewer.seen)
        await asyncio.sleep(0.5)
        assert len(viewer.seen) > count + 5
        assert await http.request("DELETE", viewer.location) and True
    finally:
        await viewer.close()
        await publisher.close()


async def test_second_publisher_replaces_the_first(http, room):
    first = await Publisher(http, room.slug, "primary", room.tokens["primary"], "red").start()
    viewer = await Viewer(http, room.slug).start()
    try:
        await viewer.wait_for("red", timeout=10)
        started = time.monotonic()
        second = await Publisher(http, room.slug, "primary", room.tokens["primary"], "blue").start()
        await viewer.wait_for("blue", since=started, timeout=5)
        await asyncio.sleep(0.3)
        actions = [a.action for a in await rows(target="primary")]
        assert actions == ["publisher_connected", "publisher_replaced"]
        replaced = (await rows(action="publisher_replaced"))[0]
        assert replaced.detail["replaced_session"] == first.location.rsplit("/", 1)[-1]
        assert first.pc.connectionState in ("closed", "failed", "connected")  # old one is dropped server-side
        assert await first.delete() == 404  # its session no longer exists
        await second.close()
    finally:
        await viewer.close()
        await first.close()


async def test_viewer_delete_and_reconnect_after_restart_line(http, room, tech_support):
    from streams import services

    publisher = await Publisher(http, room.slug, "primary", room.tokens["primary"], "red").start()
    viewer = await Viewer(http, room.slug).start()
    try:
        await viewer.wait_for("red", timeout=10)
        action = await sync_to_async(services.request_keyframe)(room=room, line_role="primary", actor=tech_support)
        assert action.action == "request_keyframe" and action.detail["pli_sent"] >= 1
        action = await sync_to_async(services.restart_line)(room=room, line_role="primary", actor=tech_support)
        assert action.action == "restart_line" and action.detail["had_publisher"] is True
        assert await publisher.delete() == 404
        # the publisher's encoder reconnects (a new WHIP session) and the picture returns
        await publisher.close()
        started = time.monotonic()
        again = await Publisher(http, room.slug, "primary", room.tokens["primary"], "blue").start()
        await viewer.wait_for("blue", since=started, timeout=5)
        await again.close()
        status, _, _ = await http.request("DELETE", viewer.location)
        assert status == 200
    finally:
        await viewer.close()
        await publisher.close()


async def test_roles_are_checked_server_side(http, room, floor_assistant):
    from django.core.exceptions import PermissionDenied

    from streams import services

    with pytest.raises(PermissionDenied):
        await sync_to_async(services.switch_source)(room=room, source="backup", actor=floor_assistant)
    with pytest.raises(PermissionDenied):
        await sync_to_async(services.restart_line)(room=room, line_role="primary", actor=floor_assistant)


async def test_command_without_running_worker_fails_cleanly_and_is_audited(media, room, operator):
    from streams import services

    await stop_media()
    with pytest.raises(services.MediaCommandError):
        await sync_to_async(services.switch_source)(room=room, source="backup", actor=operator)
    failed = (await rows(action="switch_source"))[0]
    assert failed.outcome == "failed" and failed.detail["error"]


async def test_health_is_published_every_second_and_sampled(http, room, settings):
    settings.MEDIA_HEALTH_SAMPLE_S = 2
    samples = asyncio.Queue()
    subscribed = asyncio.Event()

    async def listen():
        if settings.REDIS_URL:
            async for message in health_messages(ready=subscribed):
                samples.put_nowait(message)
        else:  # embedded default: samples go to the in-memory "wall" group
            layer = get_channel_layer()
            channel = await layer.new_channel()
            await layer.group_add("wall", channel)
            subscribed.set()
            while True:
                samples.put_nowait(await layer.receive(channel))

    listener = asyncio.ensure_future(listen())
    await asyncio.wait_for(subscribed.wait(), 10)
    publisher = await Publisher(http, room.slug, "primary", room.tokens["primary"], "red").start()
    viewer = await Viewer(http, room.slug).start()
    try:
        await viewer.wait_for("red", timeout=10)
        health = None
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            message = await asyncio.wait_for(samples.get(), 3)
            line = message["health"]["lines"]["primary"] if message["type"] == "room.health" else {}
            if line.get("fps", 0) > 20 and line.get("bitrate_kbps", 0) > 0:
                health = message["health"]
                break
        assert health is not None, "no healthy room.health message"
        primary, backup = health["lines"]["primary"], health["lines"]["backup"]
        assert primary["connected"] and primary["state"] == "ok" and primary["width"] == 160
        assert primary["bitrate_kbps"] > 10 and primary["last_frame_age_ms"] < 200
        assert primary["audio_dbfs"] > -40 and not primary["silent"] and not primary["black"]
        assert backup["state"] == "down" and not backup["connected"]
        assert health["program"]["source"] == "primary" and health["program"]["viewers"] == 1
        assert health["program"]["encode_fps"] > 10  # encoding (30 asked); its speed is a benchmark figure
        line = await sync_to_async(IngestLine.objects.get)(room=room, role="primary")
        assert line.state == "connected"
        publisher.set_fault("stall")
        deadline = time.monotonic() + 5
        state = None
        while time.monotonic() < deadline and state != "down":
            message = await asyncio.wait_for(samples.get(), 3)
            if message["type"] == "room.health":
                state = message["health"]["lines"]["primary"]["state"]
        assert state == "down"
        samples = await sync_to_async(lambda: list(HealthSample.objects.filter(room=room)))()
        assert {s.line_role for s in samples} >= {"primary", "backup", "program"}
        assert any(s.line_role == "primary" and s.connected and s.fps for s in samples)
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
        await viewer.close()
        await publisher.close()
