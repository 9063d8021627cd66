"""Mass fan-out to viewer sockets: one Redis SUBSCRIBE per process, a local set of sockets per room.

Channels' group_send dispatches per consumer (≈0.6 ms per socket, see the measurements note), which
cannot reach 10k viewers in 2 s. Here a publisher renders a message once and PUBLISHes it; every web
process holds one subscription and writes the same string to its local sockets of that room.
Redis pub/sub is at-most-once: after the subscription reconnects every socket gets a resync.

Message (JSON): {"room": slug, "kind": "announcement"|"chat"|"notice"|"inbox"|"panels", "html": str,
                 "data": {...} ("key": notices and inbox fragments reach a socket once per key),
                 "viewer_keys": [..] (optional: only these viewers' sockets)}.
"""

import asyncio
import json
import logging
import os
import threading

from django.conf import settings

logger = logging.getLogger(__name__)


def pubsub_channel():
    return f"{settings.PUBSUB_PREFIX}:viewers"


_sync_client = None
_sync_client_lock = threading.Lock()


def sync_redis():
    """This process's synchronous Redis client (lazy, shared by threads)."""
    global _sync_client
    with _sync_client_lock:
        if _sync_client is None:
            import redis

            _sync_client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=5)
        return _sync_client


def publish(message):
    """Send one rendered message to every process's viewer sockets (sync; call after commit)."""
    payload = json.dumps(message, ensure_ascii=False)
    if settings.EMBEDDED:
        for hub in list(_hubs.values()):
            hub.loop.call_soon_threadsafe(hub.dispatch, payload)
        return
    sync_redis().publish(pubsub_channel(), payload)


_hubs = {}  # event loop -> ViewerHub (one per loop; tests run a loop per test)


def get_hub():
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        for old_loop in [lp for lp in _hubs if lp.is_closed()]:
            _hubs.pop(old_loop, None)
        hub = _hubs[loop] = ViewerHub(loop)
    return hub


class ViewerHub:
    def __init__(self, loop):
        self.loop = loop
        self.rooms = {}  # slug -> set of consumers
        self.by_viewer = {}  # viewer key -> set of consumers
        self._task = None
        self.snapshots = {}  # slug -> (banner html, announcement json): what a (re)connecting socket is sent
        self.client_name = f"viewerhub-{os.getpid()}-{id(self):x}"  # visible in Redis CLIENT LIST
        self.resyncs = 0
        self.ready = asyncio.Event()
        from .presence import PresenceRecorder

        self.presence = PresenceRecorder(self)

    def start(self):
        if self._task is None:
            if settings.EMBEDDED:
                self.ready.set()
                self._task = self.loop.create_task(asyncio.sleep(0))
            else:
                self._task = self.loop.create_task(self._listen())
            self.presence.start()

    async def _listen(self):
        import redis.asyncio as aioredis

        channel = pubsub_channel()
        first = True
        while True:
            client = aioredis.Redis.from_url(settings.REDIS_URL, socket_timeout=None, socket_connect_timeout=5,
                                             health_check_interval=30, client_name=self.client_name)
            try:
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                await pubsub.subscribe(channel)
                self.ready.set()
                if not first:
                    await self.resync_all()
                first = False
                async for message in pubsub.listen():
                    if message and message.get("type") == "message":
                        self.dispatch(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - reconnect and resync, messages in between are lost
                logger.exception("viewer hub subscription lost; reconnecting")
                await asyncio.sleep(1)
            finally:
                try:
                    await client.aclose()
                except Exception:  # noqa: BLE001
                    pass

    async def stop(self):
        """Cancel the subscription and the presence task (tests; a process that ends simply drops them)."""
        tasks = [t for t in (self._task, self.presence._task) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        _hubs.pop(self.loop, None)

    def add(self, consumer):
        self.rooms.setdefault(consumer.room_slug, set()).add(consumer)
        if consumer.viewer_key:
            self.by_viewer.setdefault(consumer.viewer_key, set()).add(consumer)

    def remove(self, consumer):
        self.rooms.get(consumer.room_slug, set()).discard(consumer)
        if consumer.viewer_key and consumer.viewer_key in self.by_viewer:
            self.by_viewer[consumer.viewer_key].discard(consumer)
            if not self.by_viewer[consumer.viewer_key]:
                del self.by_viewer[consumer.viewer_key]

    def count(self, slug):
        return len(self.rooms.get(slug, ()))

    def dispatch(self, payload):
        """Deliver one published message to the local sockets it concerns (runs on the hub's loop)."""
        try:
            message = json.loads(payload)
        except (TypeError, ValueError):
            logger.warning("viewer hub: malformed message dropped")
            return
        sockets = self.rooms.get(message.get("room"), ())
        keys = message.get("viewer_keys")
        if keys is not None:
            wanted = set()
            for key in keys:
                wanted |= self.by_viewer.get(key, set())
            sockets = [s for s in sockets if s in wanted]
        once = (message.get("data") or {}).get("key")
        if once and message.get("kind") in ("notice", "inbox"):
            # The same news sent twice (a retried task, two paths to one grant) reaches a socket once.
            sockets = [s for s in sockets if s.first_time(f"{message['kind']}:{once}")]
        html = message.get("html") or ""
        data_text = json.dumps({"kind": message.get("kind"), **(message.get("data") or {})}, ensure_ascii=False)
        if message.get("kind") == "announcement":
            self.snapshots[message.get("room")] = (html, data_text)
        if sockets:
            self.loop.create_task(self._send_all(list(sockets), html, data_text))

    @staticmethod
    async def _send_all(sockets, html, data_text):
        # One task per message, sockets written in turn: Daphne's send only queues bytes, so
        # messages keep their order and a slow socket cannot hold up the others for long.
        for consumer in sockets:
            try:
                await consumer.deliver(html, data_text)
            except Exception:  # noqa: BLE001 - a closing socket must not stop the fan-out
                logger.debug("viewer socket send failed", exc_info=True)

    async def room_snapshot(self, slug):
        from .viewer_consumers import snapshot_for_room

        snapshot = self.snapshots.get(slug)
        if snapshot is None:
            snapshot = self.snapshots[slug] = await snapshot_for_room(slug)
        return snapshot

    async def resync_all(self):
        self.resyncs += 1
        self.snapshots.clear()
        for slug, sockets in list(self.rooms.items()):
            if sockets:
                html, data_text = await self.room_snapshot(slug)
                await self._send_all(list(sockets), html, data_text)
