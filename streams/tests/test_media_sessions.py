"""Hostile or broken peers against the engine itself (no Django): cheap refusals before any parsing,
half-open sessions reaped and their slots freed, and a shutdown that does not wait on anyone."""

import asyncio
import time

import pytest
from aiortc import RTCSessionDescription

from streams.media import ice
from streams.media.engine import BadOffer, Hooks, MediaEngine, OutputConfig, OutputFull, validate_offer

from .media_support import ColourTrack, offer_for

ROOM = "sessions-room"


@pytest.fixture
async def engine():
    ice.configure(host_addresses=["127.0.0.1"])
    engine = MediaEngine(Hooks(), OutputConfig(width=160, height=120, fps=15, video_bitrate=200_000,
                                               max_viewers=2, handshake_timeout_s=1.5, thumbnail_every_s=0))
    yield engine
    await engine.shutdown()


async def viewer_offer():
    pc = ice.new_peer_connection()
    pc.addTransceiver("video", direction="recvonly")
    pc.addTransceiver("audio", direction="recvonly")
    return pc, await offer_for(pc)


async def wait_until(predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return predicate()


async def test_cheap_checks_refuse_before_parsing():
    pc, good = await viewer_offer()
    await pc.close()
    validate_offer(good, need_video=("vp8",))  # the real offer passes
    head, _, rest = good.partition("m=")
    huge = head + "".join("m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:%d\r\n" % i for i in range(5000)) + "m=" + rest
    started = time.perf_counter()
    with pytest.raises(BadOffer):
        validate_offer(huge, need_video=("vp8",))
    assert time.perf_counter() - started < 0.05  # thousands of m-lines: refused in milliseconds
    few = head + "".join("m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:%d\r\n" % i for i in range(5)) + "m=" + rest
    with pytest.raises(BadOffer, match="too many media sections"):
        validate_offer(few, need_video=("vp8",))
    no_ice = "\r\n".join(line for line in good.split("\r\n") if not line.startswith(("a=ice-ufrag", "a=ice-pwd")))
    with pytest.raises(BadOffer, match="ICE credentials"):
        validate_offer(no_ice, need_video=("vp8",))
    no_fingerprint = "\r\n".join(line for line in good.split("\r\n") if not line.startswith("a=fingerprint"))
    with pytest.raises(BadOffer, match="fingerprint"):
        validate_offer(no_fingerprint, need_video=("vp8",))
    started = time.perf_counter()
    with pytest.raises(BadOffer, match="too large"):
        validate_offer(good + "a=x-padding:" + "x" * 200_000 + "\r\n", need_video=("vp8",))
    assert time.perf_counter() - started < 0.05
    with pytest.raises(BadOffer, match="not an SDP offer"):
        validate_offer("hello", need_video=("vp8",))


async def test_half_open_viewers_are_reaped_and_their_slots_freed(engine):
    # two viewers post offers and vanish before ICE/DTLS: they hold both slots...
    for _ in range(2):
        pc, sdp = await viewer_offer()
        await engine.handle("whep", ROOM, sdp=sdp)
        await pc.close()
    assert engine.counts() == {"rooms": 1, "viewers_connected": 0, "viewers_pending": 2}
    # ...until the handshake timeout (1.5 s here) closes them
    assert await wait_until(lambda: engine.counts()["viewers_pending"] == 0, timeout=4.0)
    # a real viewer now gets a slot, connects, and is not reaped
    pc, sdp = await viewer_offer()
    answer = await engine.handle("whep", ROOM, sdp=sdp)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
    assert await wait_until(lambda: engine.counts()["viewers_connected"] == 1, timeout=10.0)
    await asyncio.sleep(2.0)
    assert engine.counts() == {"rooms": 1, "viewers_connected": 1, "viewers_pending": 0}
    await pc.close()


async def test_a_room_full_of_half_open_offers_still_lets_a_real_viewer_in(engine):
    for _ in range(2):  # the cap (2 here) is taken by offers that will never connect
        pc, sdp = await viewer_offer()
        await engine.handle("whep", ROOM, sdp=sdp)
        await pc.close()
    real, sdp = await viewer_offer()
    answer = await engine.handle("whep", ROOM, sdp=sdp)  # the oldest half-open one gives up its slot at once
    await real.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
    assert await wait_until(lambda: engine.counts()["viewers_connected"] == 1, timeout=10.0)
    second, sdp = await viewer_offer()
    answer = await engine.handle("whep", ROOM, sdp=sdp)
    await second.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
    assert await wait_until(lambda: engine.counts()["viewers_connected"] == 2, timeout=10.0)
    third, sdp = await viewer_offer()
    with pytest.raises(OutputFull):  # connected viewers are never pushed out
        await engine.handle("whep", ROOM, sdp=sdp)
    for pc in (real, second, third):
        await pc.close()


async def test_a_half_open_publisher_is_reaped(engine):
    pc = ice.new_peer_connection()
    pc.addTransceiver(ColourTrack("red"), direction="sendonly")
    sdp = await offer_for(pc)
    await engine.handle("whip", ROOM, role="primary", sdp=sdp)
    await pc.close()  # gone before ICE/DTLS
    line = engine.rooms[ROOM].lines["primary"]
    assert line.pc is not None
    assert await wait_until(lambda: line.pc is None, timeout=4.0)


async def test_shutdown_with_viewers_attached_is_fast(engine):
    publisher = ice.new_peer_connection()
    publisher.addTransceiver(ColourTrack("red"), direction="sendonly")
    answer = await engine.handle("whip", ROOM, role="primary", sdp=await offer_for(publisher))
    await publisher.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
    viewers = []
    for _ in range(2):
        pc, sdp = await viewer_offer()
        answer = await engine.handle("whep", ROOM, sdp=sdp)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
        viewers.append(pc)
    assert await wait_until(lambda: engine.counts()["viewers_connected"] == 2, timeout=10.0)
    started = time.monotonic()
    await engine.shutdown()
    took = time.monotonic() - started
    print(f"shutdown took {took:.2f} s")
    assert took < 2.0, f"shutdown took {took:.2f} s"
    assert engine.rooms == {} and engine.monitor.task is None
    for pc in (publisher, *viewers):
        await pc.close()
