"""Per-client limits on WHIP/WHEP, against real Redis (REDIS_URL) and the embedded media engine."""

import asyncio
import subprocess
import sys
import time

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient, RequestFactory

from conftest import ROOT
from streams import client_limits
from streams.mediaworker import client

from .media_fixtures import media, stop_media  # noqa: F401
from .test_signalling_abuse import viewer_offer

pytestmark = [pytest.mark.django_db(transaction=True)]


class AddressClient(AsyncClient):
    def __init__(self, address):
        super().__init__()
        self.address = address

    def _base_scope(self, **request):
        return {**super()._base_scope(**request), "client": [self.address, 40000]}


class Anon:
    """Requests from one client address (the ASGI scope's client, i.e. REMOTE_ADDR)."""

    def __init__(self, address):
        self.client = AddressClient(address)

    async def post(self, path, body, headers=None):
        return await self.client.post(path, data=body, content_type="application/sdp", headers=headers or {})

    async def delete(self, path, headers=None):
        return await self.client.delete(path, headers=headers or {})


@pytest.fixture
async def limits(media):
    assert not media.EMBEDDED, "these tests run against real Redis: set REDIS_URL"
    assert isinstance(client_limits.backend(), client_limits.RedisBackend)
    media.WHEP_SESSIONS_PER_CLIENT_ROOM, media.WHEP_SESSIONS_PER_CLIENT = 2, 3
    yield media
    await stop_media()


async def second_room():
    from streams.models import LiveRoom

    return await sync_to_async(LiveRoom.objects.create)(name="二号", slug="room-two", status=LiveRoom.Status.LIVE)


async def test_an_address_holds_a_few_sessions_per_room_and_in_all(limits, room):
    await second_room()
    offer = await viewer_offer()  # its peer is closed at once: these sessions never start ICE
    attacker, other = Anon("203.0.113.7"), Anon("198.51.100.20")
    held = []
    for _ in range(2):
        response = await attacker.post(f"/whep/{room.slug}", offer)
        assert response.status_code == 201
        held.append(response["Location"])
    refused = await attacker.post(f"/whep/{room.slug}", offer)
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert "in this room" in refused.content.decode()
    assert (await other.post(f"/whep/{room.slug}", offer)).status_code == 201  # another address is not affected
    assert (await attacker.post("/whep/room-two", offer)).status_code == 201  # third in all
    refused = await attacker.post("/whep/room-two", offer)
    assert refused.status_code == 429 and "in all" in refused.content.decode()
    # DELETE gives the seat back at once
    assert (await attacker.delete(held[0])).status_code == 200
    assert (await attacker.post(f"/whep/{room.slug}", offer)).status_code == 201


async def test_sessions_the_engine_dropped_stop_counting(limits, room):
    offer = await viewer_offer()
    attacker = Anon("203.0.113.8")
    sessions = []
    for _ in range(2):
        response = await attacker.post(f"/whep/{room.slug}", offer)
        assert response.status_code == 201
        sessions.append(response["Location"].rsplit("/", 1)[1])
    assert (await attacker.post(f"/whep/{room.slug}", offer)).status_code == 429
    # the engine ends one session by itself (what it does when ICE fails, the peer closes, or it reaps)
    assert (await client.call("whep_delete", room.slug, session=sessions[0]))["deleted"]
    assert (await attacker.post(f"/whep/{room.slug}", offer)).status_code == 201
    assert (await attacker.post(f"/whep/{room.slug}", offer)).status_code == 429


async def test_counted_sessions_expire_as_a_backstop(limits, room):
    backend = client_limits.backend()
    now = time.time()
    assert await backend.reserve("203.0.113.9", room.slug, "a", 1, 8, now + 0.3, now) == ""
    assert await backend.reserve("203.0.113.9", room.slug, "b", 1, 8, now + 0.3, now) == "room"
    await asyncio.sleep(0.4)
    now = time.time()
    assert await backend.reserve("203.0.113.9", room.slug, "b", 1, 8, now + 10, now) == ""
    ttl = await backend.client().ttl(backend._key("whep", "203.0.113.9"))
    assert 0 < ttl <= limits.WHEP_SESSION_COUNT_TTL_S


async def test_requests_beyond_the_rate_get_429_with_retry_after(limits, room):
    limits.SIGNALLING_BURST, limits.SIGNALLING_PER_MINUTE = 3, 60
    fast, calm = Anon("203.0.113.10"), Anon("198.51.100.21")
    statuses = [(await fast.post(f"/whep/{room.slug}", "not sdp")).status_code for _ in range(3)]
    assert statuses == [400, 400, 400]  # within the burst: the request is looked at (and refused on its merits)
    refused = await fast.post(f"/whep/{room.slug}", "not sdp")
    assert refused.status_code == 429 and refused["Retry-After"] == "1"
    assert (await fast.delete(f"/whep/{room.slug}/{'0' * 32}")).status_code == 429  # every method spends it
    assert (await calm.post(f"/whep/{room.slug}", "not sdp")).status_code == 400
    await asyncio.sleep(1.1)  # one token a second comes back
    assert (await fast.post(f"/whep/{room.slug}", "not sdp")).status_code == 400
    assert client.running_local_engine() is None


async def test_the_count_is_shared_between_processes(limits, room):
    """Another web process (here a plain Python child on the same Redis) sees and fills the same count."""
    offer = await viewer_offer()
    code = (
        "import asyncio, django; django.setup()\n"
        "from django.conf import settings\n"
        "settings.WHEP_SESSIONS_PER_CLIENT_ROOM = 2\n"
        "from streams import client_limits\n"
        "async def alive(room, session):\n"
        "    return True\n"
        "async def go():\n"
        "    for _ in range(2):\n"
        "        seat = await client_limits.hold_seat('203.0.113.11', 'test-room', alive)\n"
        "        await seat.confirm(seat.pending.replace('pending-', ''))\n"
        "    print(type(await client_limits.hold_seat('203.0.113.11', 'test-room', alive)).__name__)\n"
        "asyncio.run(go())\n"
    )
    import os

    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "controlroom.settings", "PYTHONPATH": str(ROOT)}
    out = await asyncio.get_running_loop().run_in_executor(None, lambda: subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60))
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == "Refusal"  # the child filled the address's seats
    held = await client_limits.backend().held("203.0.113.11", time.time())
    assert len(held) == 2 and {r for r, _ in held} == {room.slug}  # and this process sees them
    # At the limit this process asks its engine about them: it has never heard of the child's made-up
    # sessions, so they are released and the address gets its two seats here.
    assert (await Anon("203.0.113.11").post(f"/whep/{room.slug}", offer)).status_code == 201
    assert (await Anon("203.0.113.11").post(f"/whep/{room.slug}", offer)).status_code == 201
    assert (await Anon("203.0.113.11").post(f"/whep/{room.slug}", offer)).status_code == 429


async def test_on_duty_staff_are_not_limited(limits, room, operator):
    offer = await viewer_offer()
    staff = Anon("203.0.113.12")
    await staff.client.aforce_login(operator)
    statuses = [(await staff.post(f"/whep/{room.slug}", offer)).status_code for _ in range(3)]
    assert statuses == [201, 201, 201]
    assert (await Anon("203.0.113.12").post(f"/whep/{room.slug}", offer)).status_code == 429  # the same address, anonymous


async def test_whep_session_urls_are_unguessable_and_whip_sessions_need_the_token(limits, room):
    from .media_support import Http, Publisher

    offer = await viewer_offer()
    response = await Anon("203.0.113.13").post(f"/whep/{room.slug}", offer)
    session = response["Location"].rsplit("/", 1)[1]
    assert len(session) == 32 and int(session, 16) >= 0
    assert (await Anon("203.0.113.13").delete(f"/whep/{room.slug}/{session[:-1]}x")).status_code == 404
    assert (await Anon("203.0.113.13").delete(f"/whep/{room.slug}/../{session}")).status_code == 404

    http = Http()
    publisher = await Publisher(http, room.slug, "primary", room.tokens["primary"], "red").start()
    try:
        path = publisher.location
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {room.tokens['backup']}"}):
            got, _, response_headers = await http.request("DELETE", path, headers=headers)
            assert got == 401 and response_headers["WWW-Authenticate"].startswith("Bearer")
            got, _, _ = await http.request("PATCH", path, "a=mid:0\r\n", headers=headers,
                                           content_type="application/trickle-ice-sdpfrag")
            assert got == 401
        assert await publisher.delete() == 200  # with the token
    finally:
        await publisher.close()


def test_the_client_address_comes_from_a_trusted_proxy_only(settings):
    factory = RequestFactory()
    forwarded = {"REMOTE_ADDR": "10.0.0.5", "HTTP_X_FORWARDED_FOR": "1.2.3.4, 203.0.113.50, 10.0.0.4"}
    settings.TRUSTED_PROXIES = []
    assert client_limits.client_address(factory.get("/", **forwarded)) == "10.0.0.5"
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    # the rightmost hop our proxies did not add; what the client wrote to the left is not believed
    assert client_limits.client_address(factory.get("/", **forwarded)) == "203.0.113.50"
    assert client_limits.client_address(factory.get("/", REMOTE_ADDR="192.0.2.1",
                                                    HTTP_X_FORWARDED_FOR="1.2.3.4")) == "192.0.2.1"
    assert client_limits.client_address(factory.get("/", REMOTE_ADDR="10.0.0.5",
                                                    HTTP_X_FORWARDED_FOR="junk")) == "10.0.0.5"


async def test_the_embedded_default_counts_in_memory(settings):
    """No Redis: one process, the same rules."""
    settings.EMBEDDED = True
    settings.WHEP_SESSIONS_PER_CLIENT_ROOM, settings.WHEP_SESSIONS_PER_CLIENT = 2, 3
    settings.SIGNALLING_BURST, settings.SIGNALLING_PER_MINUTE = 2, 60
    assert isinstance(client_limits.backend(), client_limits.MemoryBackend)

    async def gone(room, session):
        return False

    async def alive(room, session):
        return True

    seats = [await client_limits.hold_seat("192.0.2.9", "r1", alive) for _ in range(2)]
    for i, seat in enumerate(seats):
        await seat.confirm(f"s{i}")
    assert isinstance(await client_limits.hold_seat("192.0.2.9", "r1", alive), client_limits.Refusal)
    assert isinstance(await client_limits.hold_seat("192.0.2.9", "r2", alive), client_limits.Seat)
    assert isinstance(await client_limits.hold_seat("192.0.2.9", "r3", alive), client_limits.Refusal)  # 3 in all
    assert await client_limits.release("s0")
    assert isinstance(await client_limits.hold_seat("192.0.2.9", "r1", alive), client_limits.Seat)  # (pending)
    assert isinstance(await client_limits.hold_seat("192.0.2.9", "r1", alive), client_limits.Refusal)
    # the engine no longer has s1: released at the limit; seats still waiting for the engine are not asked about
    assert isinstance(await client_limits.hold_seat("192.0.2.9", "r1", gone), client_limits.Seat)
    assert isinstance(await client_limits.hold_seat("192.0.2.9", "r1", gone), client_limits.Refusal)
    assert [await client_limits.take_request("192.0.2.9") for _ in range(3)][-1].retry_after == 1
    client_limits.reset()


async def test_an_unreachable_redis_limits_nobody_rather_than_everybody(settings, caplog):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    assert isinstance(client_limits.backend(), client_limits.RedisBackend)

    async def alive(room, session):
        return True

    assert await client_limits.take_request("192.0.2.10") is None
    seat = await client_limits.hold_seat("192.0.2.10", "r1", alive)
    assert isinstance(seat, client_limits.Seat)
    await seat.confirm("s1")
    assert await client_limits.release("s1") is False
    assert "client limits unavailable" in caplog.text
