"""The suite's isolation from one test to the next (conftest.py): each test has its own channel layer.

The first test ends the way a test cut short in the middle of a receive can end: channels_redis's
per-channel clean-up lock still held and bound to that test's event loop. The second test, run after
it (file order), must still receive: with one layer per process every later test failed with
"Lock ... is bound to a different event loop". Each test passes on its own too.
"""

import asyncio

import pytest
from channels.layers import get_channel_layer


async def round_trip(layer):
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "ping"})
    return await asyncio.wait_for(layer.receive(channel), 5)


async def test_a_test_that_ends_holding_a_receive_lock(settings):
    if settings.EMBEDDED:
        pytest.skip("channels_redis only")
    layer = get_channel_layer()
    assert await round_trip(layer) == {"type": "ping"}
    locks = layer.receive_clean_locks
    key = layer.prefix + "specific." + layer.client_prefix + "!"
    await locks.acquire(key)
    waiter = asyncio.ensure_future(locks.acquire(key))  # a second receive waits: the lock is bound to this loop
    await asyncio.sleep(0.05)
    assert locks.locked(key) and not waiter.done()


async def test_the_next_test_receives_on_its_own_loop():
    assert await round_trip(get_channel_layer()) == {"type": "ping"}
