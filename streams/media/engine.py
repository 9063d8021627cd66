"""The media engine: every room this process serves, and one entry point for every request.
No Django here (see streams/mediaworker for the hooks).

Timing model ("follow"): the program emits a frame as soon as the selected source delivers one
(capped at the output frame rate) and repeats the last frame when the source is late, so a switch to
a decoded hot standby shows the new picture on the very next output frame.

The parts: common.py (errors, configuration, hooks), ingest.py (Line), output.py (ProgramOutput,
viewer tracks, slate), failover.py (the pure policy), room.py (RoomEngine), offers.py (validate_offer).
"""

import asyncio
import logging

from .common import (  # noqa: F401  (re-exported: streams.media.engine is the package's public face)
    AUDIO_RATE,
    AUDIO_SAMPLES,
    KEYFRAME_MIN_INTERVAL_S,
    LINE_ROLES,
    SOURCES,
    VIDEO_CLOCK,
    VIEWER_AUDIO_QUEUE,
    VIEWER_VIDEO_QUEUE,
    BadOffer,
    CommandError,
    Hooks,
    OutputConfig,
    OutputFull,
    RoomSettings,
)
from .ingest import Line, audio_dbfs, luma_sample  # noqa: F401
from .offers import validate_offer  # noqa: F401
from .output import ProgramOutput, SlateSource, StockViewerTrack, ViewerTrack, encode_thumbnail  # noqa: F401
from .load import LoopMonitor
from .room import RoomEngine

logger = logging.getLogger(__name__)

SHUTDOWN_WAIT_S = 1.8


class MediaEngine:
    """All rooms served by this process (runs in one asyncio loop)."""

    def __init__(self, hooks=None, config=None):
        self.hooks = hooks or Hooks()
        self.config = config or OutputConfig()
        self.rooms = {}
        self._starting = {}
        self.loop = None
        self._refresher = None
        self.closing = False
        self.monitor = LoopMonitor()  # one per process: the event loop all rooms share

    async def room(self, slug):
        if self.closing:
            raise CommandError("the media worker is shutting down")
        if self.loop is None:
            self.loop = asyncio.get_running_loop()
        if self._refresher is None:
            self._refresher = self.loop.create_task(self._refresh_settings())
            self.monitor.start()
        engine = self.rooms.get(slug)
        if engine is not None:
            return engine
        if slug not in self._starting:
            self._starting[slug] = asyncio.ensure_future(self._start_room(slug))
        task = self._starting[slug]
        try:
            return await asyncio.shield(task)
        finally:
            if task.done():  # started, or failed (e.g. no such room): the next call starts afresh
                self._starting.pop(slug, None)

    async def _start_room(self, slug):
        settings = await self.hooks.load_settings(slug)
        engine = RoomEngine(slug, settings, self.config, self.hooks, self.monitor)
        engine.start()
        self.rooms[slug] = engine
        return engine

    async def _refresh_settings(self):
        """Pick up changed failover settings / slate every few seconds."""
        while True:
            await asyncio.sleep(3.0)
            for slug, engine in list(self.rooms.items()):
                try:
                    engine.apply_settings(await self.hooks.load_settings(slug))
                except Exception:
                    logger.exception("%s: reloading settings failed", slug)

    async def stop_room(self, slug):
        engine = self.rooms.pop(slug, None)
        if engine is not None:
            await engine.stop()

    async def shutdown(self):
        """Close every peer connection and stop every room, together, with bounded waits (~2 s at most)."""
        self.closing = True
        if self._refresher is not None:
            self._refresher.cancel()
        stopping = [asyncio.ensure_future(self.stop_room(slug)) for slug in list(self.rooms)]
        if stopping:
            done, pending = await asyncio.wait(stopping, timeout=SHUTDOWN_WAIT_S)
            for task in pending:
                task.cancel()
            if pending:
                logger.warning("shutdown: %d rooms did not stop within %.1f s", len(pending), SHUTDOWN_WAIT_S)
        await self.monitor.stop()

    def counts(self):
        """Sessions of this process: viewers connected / still handshaking, rooms."""
        total = {"rooms": len(self.rooms), "viewers_connected": 0, "viewers_pending": 0}
        for room in self.rooms.values():
            for key, value in room.counts().items():
                total[key] += value
        return total

    async def handle(self, op, slug, **kw):
        """One entry point for every request (local calls and channel-layer messages alike)."""
        engine = await self.room(slug)
        if op == "whip":
            session, answer = await engine.publish(kw["role"], kw["sdp"])
            return {"session": session, "sdp": answer}
        if op == "whip_delete":
            return {"deleted": await engine.unpublish(kw["role"], kw["session"])}
        if op == "whep":
            session, answer = await engine.play(kw["sdp"])
            return {"session": session, "sdp": answer}
        if op == "whep_delete":
            return {"deleted": await engine.stop_viewer(kw["session"])}
        if op == "patch":
            return {"ok": await engine.add_candidates(kw["kind"], kw["session"], kw["sdpfrag"], kw.get("role"))}
        if op == "switch_source":
            return await engine.switch_source(kw["source"])
        if op == "end_slate":
            return await engine.end_slate()
        if op == "request_keyframe":
            return await engine.request_keyframe(kw["line_role"])
        if op == "restart_line":
            return await engine.restart_line(kw["line_role"])
        if op == "health":
            return engine.health_snapshot or {}
        if op == "counts":
            return engine.counts()
        if op == "reload":
            engine.apply_settings(await self.hooks.load_settings(slug))
            return {"ok": True}
        raise CommandError(f"unknown operation {op!r}")
