"""How the web process reaches the media engine.

Embedded (settings.MEDIA_WORKER_EMBEDDED): the engine lives in this process's event loop (Daphne's),
started lazily by the first WHIP/WHEP request. Process mode: requests go over the channel layer to
the `mediaworker` holding the room's lease, and the reply comes back on a one-off channel.
"""

import asyncio
import threading

from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings

from ..media.engine import BadOffer, CommandError, MediaEngine, OutputFull

WORKER_CHANNEL_PREFIX = "mediaworker."
REQUEST_TIMEOUT_S = 10.0


class MediaUnavailable(Exception):
    """The media worker could not be reached (not started, no lease, no reply)."""


_local = {"engine": None}
_local_lock = threading.Lock()


def local_engine():
    """The in-process engine bound to the running loop (created on first use)."""
    from . import ice
    from .bridge import DjangoHooks, output_config_from_settings

    loop = asyncio.get_running_loop()
    with _local_lock:
        if _local.get("closing"):
            # the server is stopping: a new engine now would hold peer connections (and aiortc's
            # non-daemon decoder threads) that nobody closes, and the process would never exit
            raise MediaUnavailable("the server is shutting down")
        engine = _local["engine"]
        if engine is None or engine.loop is None or engine.loop is not loop or engine.loop.is_closed():
            ice.configure_from_settings()
            engine = MediaEngine(DjangoHooks(), output_config_from_settings())
            engine.loop = loop
            _local["engine"] = engine
            _shutdown_with_server(engine)
        return engine


def _shutdown_with_server(engine):
    """Under Daphne (Twisted), close every peer connection before the reactor stops: aiortc's decoder
    threads are not daemons and would keep the process alive after SIGTERM."""
    import sys

    if "twisted.internet.reactor" not in sys.modules:
        return
    from twisted.internet import defer, reactor

    def before_shutdown():
        _local["closing"] = True
        if _local["engine"] is not engine:
            return None
        _local["engine"] = None
        return defer.Deferred.fromFuture(asyncio.ensure_future(engine.shutdown()))

    reactor.addSystemEventTrigger("before", "shutdown", before_shutdown)


def running_local_engine():
    engine = _local["engine"]
    if engine is None or engine.loop is None or engine.loop.is_closed() or not engine.loop.is_running():
        return None
    return engine


async def shutdown_local_engine():
    engine = _local["engine"]
    _local["engine"] = None
    if engine is not None:
        await engine.shutdown()
    from .bridge import close_db

    await close_db()


def raise_reply_error(reply):
    kind, message = reply.get("error_kind"), reply.get("error", "media worker error")
    if kind == "bad_offer":
        raise BadOffer(message)
    if kind == "full":
        raise OutputFull(message)
    if kind == "command":
        raise CommandError(message)
    raise MediaUnavailable(message)


async def call(op, room_slug, timeout=REQUEST_TIMEOUT_S, **kwargs):
    """Run one engine operation for a room; returns the engine's reply dict."""
    if settings.MEDIA_WORKER_EMBEDDED:
        engine = local_engine()
        return await asyncio.wait_for(engine.handle(op, room_slug, **kwargs), timeout)
    return await call_worker(op, room_slug, timeout=timeout, **kwargs)


async def call_worker(op, room_slug, timeout=REQUEST_TIMEOUT_S, **kwargs):
    from channels.layers import get_channel_layer

    from .bridge import lease_owner

    owner = None
    for _ in range(40):  # a new room gets a lease within a lease cycle
        owner = await sync_to_async(lease_owner)(room_slug)
        if owner:
            break
        await asyncio.sleep(0.1)
    if not owner:
        raise MediaUnavailable(f"no media worker serves room {room_slug!r} (is `manage.py mediaworker` running?)")
    layer = get_channel_layer()
    # The default prefix matters: channels_redis reads all of a process's "specific." channels through one
    # shared receive; a reply channel with its own prefix would wait behind the wall hub's blocking receive.
    reply_channel = await layer.new_channel()
    await layer.send(WORKER_CHANNEL_PREFIX + owner, {
        "type": "media.request", "op": op, "room": room_slug, "reply": reply_channel, "args": kwargs,
    })
    try:
        reply = await asyncio.wait_for(layer.receive(reply_channel), timeout)
    except asyncio.TimeoutError:
        raise MediaUnavailable(f"media worker {owner} did not answer {op} within {timeout:.0f} s") from None
    if not reply.get("ok"):
        raise_reply_error(reply)
    return reply["result"]


def call_sync(op, room_slug, timeout=REQUEST_TIMEOUT_S, **kwargs):
    """The same, from synchronous code (services called by views, tasks, shells)."""
    if settings.MEDIA_WORKER_EMBEDDED:
        engine = running_local_engine()
        if engine is None:
            raise MediaUnavailable("the embedded media worker is not running in this process yet "
                                   "(it starts with the first WHIP/WHEP request)")
        try:
            asyncio.get_running_loop()
            in_loop = True
        except RuntimeError:
            in_loop = False
        if in_loop and threading.current_thread() is getattr(engine, "thread", None):
            raise MediaUnavailable("call_sync() called on the media loop; use `await client.call()`")
        future = asyncio.run_coroutine_threadsafe(engine.handle(op, room_slug, **kwargs), engine.loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise MediaUnavailable(f"the media worker did not answer {op} within {timeout:.0f} s") from None
    return async_to_sync(call_worker)(op, room_slug, timeout=timeout, **kwargs)
