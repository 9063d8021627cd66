"""Push events to channel-layer groups, after the transaction that caused them commits; and the
media worker's health samples to the wall."""

import asyncio
import atexit
import json
import logging
import os
import threading

from asgiref.sync import async_to_sync
from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import InMemoryChannelLayer, channel_layers, get_channel_layer
from django.conf import settings
from django.db import transaction

WALL_GROUP = "wall"  # every control-room dashboard


def room_group(slug):
    return f"room-{slug}"


_sender = {"pid": None, "loop": None, "queue": None, "layer": None, "made_for": None}
_sender_lock = threading.Lock()
logger = logging.getLogger(__name__)


def _sender_for(layer):
    """This process's private event loop, queue and layer instance for channel-layer sends from sync code.

    async_to_sync would run each send on the process's main loop. In the web process that loop is busy
    sending wall frames, and each of a click's broadcasts waited for it (bench/wall_bench.py). The private
    layer instance keeps its Redis connections to itself: `flush()` on the shared one closes only its own."""
    with _sender_lock:
        if _sender["pid"] != os.getpid():  # first use, or a forked Celery child: start its own thread
            loop = asyncio.new_event_loop()
            queue = asyncio.Queue()  # created before the loop runs; used only on it
            threading.Thread(target=loop.run_forever, name="channel-layer-sender", daemon=True).start()
            asyncio.run_coroutine_threadsafe(_send_queued(queue), loop)
            _sender.update(pid=os.getpid(), loop=loop, queue=queue, layer=None, made_for=None)
        if _sender["made_for"] is not layer:  # the configured layer changed (settings override in tests)
            _sender.update(layer=channel_layers.make_backend(DEFAULT_CHANNEL_LAYER), made_for=layer)
        return _sender["loop"], _sender["queue"], _sender["layer"]


async def _send_queued(queue):
    # One sender, in queue order: two events about one room arrive in the order they were committed.
    while True:
        layer, group, message = await queue.get()
        try:
            await layer.group_send(group, message)
        except Exception:  # noqa: BLE001 - the action is committed; its push is lost, the next snapshot has it
            logger.exception("could not send %s to group %s", message.get("type"), group)
        finally:
            queue.task_done()


def send_to_group(group, message):
    """Queue a message for a group and return at once; this process's sender thread sends queued messages in
    order. Safe from sync code (a click's on-commit broadcasts do not wait for Redis); from async code use
    `channel_layer.group_send`."""
    layer = get_channel_layer()
    if layer is None:
        return
    if isinstance(layer, InMemoryChannelLayer):
        async_to_sync(layer.group_send)(group, message)  # its queues belong to the loop that reads them
        return
    loop, queue, private = _sender_for(layer)
    loop.call_soon_threadsafe(queue.put_nowait, (private, group, message))


def flush_sends(timeout=5.0):
    """Wait until every message queued by send_to_group in this process has been sent (or failed)."""
    if _sender["pid"] != os.getpid():
        return True
    try:
        asyncio.run_coroutine_threadsafe(_sender["queue"].join(), _sender["loop"]).result(timeout)
        return True
    except TimeoutError:  # concurrent.futures.TimeoutError is this class since Python 3.11
        return False


atexit.register(flush_sends, 2.0)  # a management command's last pushes are not lost with its sender thread


def send_on_commit(group, message):
    transaction.on_commit(lambda: send_to_group(group, message))


# --- health samples ---------------------------------------------------------------------------
# 200 rooms sample once a second each. Through the channel layer every sample costs the wall hub a
# channels_redis receive (≈ 2 ms of one core; a burst of 50 samples before a frame slot then drains
# too late for it). Plain Redis pub/sub delivers the same messages pipelined on one subscription for
# a fraction of that. At-most-once is right for samples: a lost one is superseded a second later.
# Events that must not be lost (actions, alerts) stay on the channel layer's "wall" group.

def health_channel():
    return f"{settings.PUBSUB_PREFIX}:wall-health"


_publishers = {}  # event loop -> redis.asyncio client (connections belong to one loop)


async def publish_health(room, health):
    message = {"type": "room.health", "room": room, "health": health}
    if not settings.REDIS_URL:
        layer = get_channel_layer()
        if layer is not None:
            await layer.group_send(WALL_GROUP, message)  # embedded default: in-memory layer, same process
        return
    loop = asyncio.get_running_loop()
    client = _publishers.get(loop)
    if client is None:
        import redis.asyncio as aioredis

        for old in [lp for lp in _publishers if lp.is_closed()]:
            _publishers.pop(old, None)
        client = _publishers[loop] = aioredis.Redis.from_url(settings.REDIS_URL, socket_timeout=5,
                                                             socket_connect_timeout=5)
    await client.publish(health_channel(), json.dumps(message, separators=(",", ":")))


async def health_messages(ready=None):
    """Every health message published from now on (Redis mode), as dicts. Raises when the subscription
    breaks; callers reconnect. `ready` (an asyncio.Event) is set once subscribed."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(settings.REDIS_URL, socket_timeout=None, socket_connect_timeout=5,
                                     health_check_interval=30)
    try:
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(health_channel())
        if ready is not None:
            ready.set()
        async for message in pubsub.listen():
            if message and message.get("type") == "message":
                yield json.loads(message["data"])
    finally:
        await client.aclose()
