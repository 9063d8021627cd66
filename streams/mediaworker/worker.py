"""Process mode: `manage.py mediaworker` serves the rooms it holds leases for.

Requests arrive on the channel "mediaworker.<worker_id>" (sent by client.call_worker), replies go to
the sender's one-off channel. A Redis key with a TTL says the worker is alive and how late its loop is
(healthz and /metrics read it). Leases are renewed on their own thread and connection (bridge.run_lease_db),
never behind audit rows or health samples; rooms start and stop beside the lease loop, not inside it.
"""

import asyncio
import json
import logging
import os
import socket
import time

from django.conf import settings

from . import ice
from .bridge import DjangoHooks, claim_rooms, output_config_from_settings, release_rooms, run_lease_db
from .client import WORKER_CHANNEL_PREFIX
from ..media.engine import BadOffer, CommandError, MediaEngine, OutputFull

logger = logging.getLogger(__name__)

HEARTBEAT_PREFIX = "controlroom:mediaworker:heartbeat:"
SHUTDOWN_ENGINE_S = 3.0  # closing peer connections on SIGTERM; the whole stop must fit in 5 s


def default_worker_id():
    return f"{socket.gethostname()}-{os.getpid()}"


class MediaWorker:
    def __init__(self, worker_id=None, max_rooms=None, lease_seconds=None):
        self.worker_id = worker_id or default_worker_id()
        self.max_rooms = max_rooms
        self.lease_seconds = lease_seconds or settings.MEDIA_WORKER_LEASE_SECONDS
        ice.configure_from_settings()
        self.engine = MediaEngine(DjangoHooks(), output_config_from_settings())
        self.channel = WORKER_CHANNEL_PREFIX + self.worker_id
        self.owned = set()
        self.inflight = set()
        self.room_tasks = set()
        self.redis = None
        self.loop_lag_ms = 0.0
        self.lease_renewed_at = None

    async def run(self, stop=None):
        import redis.asyncio as aioredis
        from channels.layers import get_channel_layer

        stop = stop or asyncio.Event()
        self.engine.loop = asyncio.get_running_loop()
        self.redis = aioredis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=5)
        layer = get_channel_layer()
        await self._heartbeat()
        tasks = [asyncio.ensure_future(c) for c in (self._lease_loop(stop), self._heartbeat_loop(stop),
                                                      self._receive_loop(layer, stop))]
        logger.info("media worker %s listening on %s", self.worker_id, self.channel)
        try:
            await stop.wait()
        finally:
            await self._stop(tasks)

    async def _stop(self, tasks):
        """SIGTERM: stop taking requests, close every session, release the leases so another worker takes
        the rooms at once (not after they expire), drop the heartbeat."""
        for task in (*tasks, *self.room_tasks, *self.inflight):
            task.cancel()
        await asyncio.gather(*tasks, *self.room_tasks, *self.inflight, return_exceptions=True)
        try:
            await asyncio.wait_for(self.engine.shutdown(), SHUTDOWN_ENGINE_S)
        except Exception:
            logger.exception("closing the rooms took too long; releasing their leases anyway")
        try:
            await asyncio.wait_for(run_lease_db(release_rooms, self.worker_id), 2.0)
            await self.redis.delete(HEARTBEAT_PREFIX + self.worker_id)
        except Exception:
            logger.exception("cleanup failed")
        await self.redis.aclose()
        from .bridge import close_db

        try:
            await asyncio.wait_for(close_db(), 1.0)
        except Exception:
            logger.warning("the business database thread is still busy at exit")

    async def _heartbeat(self):
        ttl = max(3, int(self.lease_seconds))
        await self.redis.set(HEARTBEAT_PREFIX + self.worker_id, json.dumps({
            "rooms": sorted(self.owned), "at": time.time(), "loop_lag_ms": round(self.loop_lag_ms, 1),
            "lease_renewed_at": self.lease_renewed_at, "lease_seconds": self.lease_seconds,
            "shed": self.engine.hooks.shed,
        }), ex=ttl)

    async def _live_workers(self):
        count = 0
        async for _key in self.redis.scan_iter(HEARTBEAT_PREFIX + "*"):
            count += 1
        return max(1, count)

    async def _heartbeat_loop(self, stop):
        interval = max(1.0, self.lease_seconds / 4)
        while not stop.is_set():
            try:
                await self._heartbeat()
            except Exception:
                logger.exception("heartbeat failed")
            asked = time.monotonic()
            await asyncio.sleep(interval)
            # how much later than asked the loop woke us: the worker's own lateness, reported, not guessed
            self.loop_lag_ms = max(0.0, (time.monotonic() - asked - interval) * 1000)

    async def _lease_loop(self, stop):
        while not stop.is_set():
            try:
                workers = await self._live_workers()
                owned = await run_lease_db(claim_rooms, self.worker_id, self.lease_seconds, workers,
                                           self.max_rooms)
                self.lease_renewed_at = time.time()
                lost, gained = self.owned - owned, owned - self.owned
                self.owned = owned  # accept requests for gained rooms at once
                for slug in lost:
                    logger.warning("lost the lease of %s; stopping it here", slug)
                    self._beside(self.engine.stop_room(slug), slug)
                for slug in gained:
                    logger.info("serving room %s", slug)
                    self._beside(self.engine.room(slug), slug)
            except Exception:
                logger.exception("lease cycle failed")
            await asyncio.sleep(max(0.5, self.lease_seconds / 3))

    def _beside(self, coro, slug):
        """Start/stop a room without holding the lease loop (loading its settings waits for the business
        thread)."""
        task = asyncio.ensure_future(coro)
        self.room_tasks.add(task)

        def done(t):
            self.room_tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                logger.error("room %s: %s", slug, t.exception())

        task.add_done_callback(done)

    async def _receive_loop(self, layer, stop):
        while not stop.is_set():
            message = await layer.receive(self.channel)
            task = asyncio.ensure_future(self._serve(layer, message))
            self.inflight.add(task)
            task.add_done_callback(self.inflight.discard)

    async def _serve(self, layer, message):
        reply = {"ok": True}
        try:
            room = message["room"]
            if room not in self.owned:
                raise CommandError(f"worker {self.worker_id} does not hold the lease of {room!r}")
            reply["result"] = await self.engine.handle(message["op"], room, **message.get("args", {}))
        except BadOffer as exc:
            reply = {"ok": False, "error_kind": "bad_offer", "error": str(exc)}
        except OutputFull as exc:
            reply = {"ok": False, "error_kind": "full", "error": str(exc)}
        except CommandError as exc:
            reply = {"ok": False, "error_kind": "command", "error": str(exc)}
        except Exception as exc:
            logger.exception("request %s failed", message.get("op"))
            reply = {"ok": False, "error_kind": "internal", "error": f"media worker error: {exc}"}
        try:
            await layer.send(message["reply"], reply)
        except Exception:
            logger.exception("could not reply to %s", message.get("reply"))
