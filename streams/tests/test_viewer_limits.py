"""Viewer sockets and chat are limited per client address and per viewer identity, not per socket."""

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async

from streams import viewer_limits
from streams.models import ChatMessage

from .wall_support import stop_hubs  # noqa: F401
from .wall_support import communicator

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("stop_hubs")]


@pytest.fixture(autouse=True)
def fresh_limits():
    viewer_limits.reset()
    yield
    viewer_limits.reset()


async def socket_from(slug, address, device):
    comm = communicator(f"/ws/live/{slug}/", f"cr_device={device}")
    comm.scope["client"] = (address, 40000)
    connected, code = await comm.connect(timeout=10)
    if connected:
        await comm.receive_from(timeout=5)  # the banner
    return comm, connected, code


async def test_one_address_holds_a_bounded_number_of_viewer_sockets(room, settings):
    settings.VIEWER_SOCKETS_PER_ADDRESS = 5
    held = []
    for i in range(5):
        comm, connected, _code = await socket_from(room.slug, "203.0.113.7", f"farm{i:04d}")
        assert connected
        held.append(comm)
    comm, connected, code = await socket_from(room.slug, "203.0.113.7", "farm9999")
    assert not connected and code == 4429
    # Another address is not affected; a closed socket frees its seat.
    other, connected, _code = await socket_from(room.slug, "198.51.100.3", "someone")
    assert connected
    await held.pop().disconnect()
    again, connected, _code = await socket_from(room.slug, "203.0.113.7", "farm8888")
    assert connected
    for c in held + [other, again]:
        await c.disconnect()


async def test_chat_budget_is_per_address_and_per_identity_not_per_socket(room, settings):
    settings.VIEWER_CHAT_ADDRESS_BURST = 5
    settings.VIEWER_CHAT_PER_ADDRESS_PER_MINUTE = 6
    sockets = [(await socket_from(room.slug, "203.0.113.8", f"chat{i:04d}"))[0] for i in range(10)]
    for round_ in range(2):
        for i, comm in enumerate(sockets):
            await comm.send_to(text_data=json.dumps({"chat": f"刷屏 {round_}-{i}"}))
    # Let the posts land (each goes through a worker thread), then count.
    count = sync_to_async(ChatMessage.objects.filter(room=room).count)
    for _ in range(50):
        if await count() >= 5:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)
    posted = await count()
    assert posted <= 6, posted  # 5 at once + at most one refill, whatever the number of sockets
    assert posted >= 5
    for comm in sockets:
        await comm.disconnect()


async def test_one_identity_posts_at_most_once_a_second_from_any_number_of_sockets(settings):
    settings.VIEWER_CHAT_INTERVAL_S = 1
    assert await viewer_limits.allow_chat("d:one", "203.0.113.9", now=100.0)
    assert not await viewer_limits.allow_chat("d:one", "198.51.100.1", now=100.5)  # another address, same viewer
    assert await viewer_limits.allow_chat("d:one", "203.0.113.9", now=101.1)


async def test_web_processes_share_one_socket_count_per_address(settings):
    """Each web process has its own backend object; with Redis they enforce one limit between them."""
    from streams import client_limits

    if settings.EMBEDDED:
        pytest.skip("one process on the embedded default")
    settings.VIEWER_SOCKETS_PER_ADDRESS = 3
    prefix = f"{settings.CHANNEL_LAYER_PREFIX}:limits:"
    first, second = (client_limits.RedisBackend(settings.REDIS_URL, prefix) for _ in range(2))
    held = []
    for i, process in enumerate((first, second, first)):
        client_limits._backend.update({"it": process, "key": (settings.EMBEDDED, settings.REDIS_URL)})
        held.append(await viewer_limits.open_socket("203.0.113.50"))
    assert all(held)
    client_limits._backend.update({"it": second})
    assert await viewer_limits.open_socket("203.0.113.50") is None
    await viewer_limits.close_socket("203.0.113.50", held[0])  # closed in the other process
    assert await viewer_limits.open_socket("203.0.113.50")
    client_limits._backend.update({"it": None, "key": None})
