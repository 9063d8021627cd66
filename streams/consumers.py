"""Operator websockets: the wall (tiles + one-click actions) and the host's cue screen.

Authentication and Origin are checked by the ASGI stack (AuthMiddlewareStack inside
AllowedHostsOriginValidator); roles are checked here on connect and again for every action.
"""

import asyncio
import json
import logging
import time

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext
from urllib.parse import parse_qs

from controlroom.roles import ON_DUTY, allows

from .actions import perform_action
from .wall import ALERTS_ONLY, get_wall_hub, render_alert_feed

logger = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 4096
MAX_INFLIGHT_ACTIONS = 8
CUE_LINK_MAX_AGE_S = 7 * 24 * 3600  # a host screen link is handed out per show; it expires after a week


def dashboard_language(scope):
    """The dashboard's UI language (language cookie), so pushed fragments match the page."""
    from django.conf import settings

    wanted = (scope.get("cookies") or {}).get(settings.LANGUAGE_COOKIE_NAME, "")
    return wanted if wanted in dict(settings.LANGUAGES) else settings.LANGUAGE_CODE


class WallConsumer(AsyncWebsocketConsumer):
    """One dashboard. Frames come from the process's WallHub; this socket adds its sequence number.

    On /ws/wall/<slug>/ (a room page) it gets that room's tile and alerts only, and acts on that room only."""

    async def connect(self):
        self.user = self.scope.get("user")
        self.room = (self.scope.get("url_route") or {}).get("kwargs", {}).get("slug")
        self.seq = 0
        self.hub = None
        self.language = None
        self.inflight = set()
        self.room_locks = {}
        self.seen_seq = 0  # the latest frame the browser says it has applied
        self.behind_since = None  # monotonic time since when frames are held back (flow control)
        if not await database_sync_to_async(allows)(self.user, *ON_DUTY, what="wall websocket"):
            await self.close(code=4403)  # before accept: the handshake is refused
            return
        self.language = dashboard_language(self.scope)
        await self.accept()
        self.hub = await get_wall_hub()
        snapshot = await self.hub.snapshot(self.language, self.room)
        triage = await self.hub.triage_snapshot(self.language)
        self.hub.add(self)
        await self.send_frame(snapshot + triage)

    async def disconnect(self, code):
        if self.hub is not None:
            self.hub.remove(self)
        for task in self.inflight:
            task.cancel()

    async def push_frame(self, html):
        """A hub frame. A dashboard that has not confirmed the last WALL_MAX_UNSEEN_FRAMES frames (a frozen
        tab, a choked link) gets nothing more until it catches up, then one fresh snapshot: what waits in its
        socket buffer stays bounded, and it never replays stale states. Daphne offers no backpressure."""
        if self.seq - self.seen_seq < settings.WALL_MAX_UNSEEN_FRAMES:
            await self.send_frame(html)
            return
        now = time.monotonic()
        if self.behind_since is None:
            self.behind_since = now
            logger.info("wall dashboard of %s is %d frames behind: holding frames back",
                        self.user, self.seq - self.seen_seq)
        elif now - self.behind_since > settings.WALL_SLOW_CLOSE_S:
            logger.warning("wall dashboard of %s stayed behind for %d s: disconnecting it",
                           self.user, settings.WALL_SLOW_CLOSE_S)
            self.behind_since = now  # one close is enough
            await self.close(code=4008)

    async def frames_seen(self, seq):
        self.seen_seq = max(self.seen_seq, min(seq, self.seq))
        if self.behind_since is not None and self.seen_seq == self.seq:
            self.behind_since = None
            # Caught up: the whole wall and alert feed, fresh (what it missed was superseded anyway).
            alerts = await database_sync_to_async(render_alert_feed, thread_sensitive=False)(self.language, self.room)
            await self.send_frame(await self.hub.snapshot(self.language, self.room) + alerts)

    async def send_frame(self, html):
        self.seq += 1
        # data-sent (epoch ms) lets a client tell server-side delay from its own lag.
        await self.send(text_data=f'<div id="wall-seq" hx-swap-oob="true" data-seq="{self.seq}" '
                                  f'data-sent="{time.time() * 1000:.0f}"></div>{html}')

    async def receive(self, text_data=None, bytes_data=None):
        if not text_data or len(text_data) > MAX_MESSAGE_BYTES:
            return
        try:
            data = json.loads(text_data)
        except ValueError:
            return
        if isinstance(data, dict) and isinstance(data.get("seen"), int) and self.hub is not None:
            await self.frames_seen(data["seen"])
            return
        if not isinstance(data, dict) or "action" not in data:
            return
        if len(self.inflight) >= MAX_INFLIGHT_ACTIONS:
            await self.send_result_html(data, "refused", "", "too many pending actions")
            return
        if self.room and data.get("room") != self.room:
            with translation.override(self.language):
                await self.send_result_html(data, "refused", "", gettext("此页面只能操作本直播间"))
            return
        # Actions may wait for the media worker: run them beside the socket, not in front of it.
        task = asyncio.ensure_future(self.run_action(data))
        self.inflight.add(task)
        task.add_done_callback(self.inflight.discard)

    async def run_action(self, data):
        # Actions on one room from one dashboard run in click order; other rooms do not wait for them.
        lock = self.room_locks.setdefault(str(data.get("room")), asyncio.Lock())
        async with lock:
            result = await database_sync_to_async(perform_action, thread_sensitive=False)(self.user, data)
        with translation.override(self.language):
            await self.send_frame(render_to_string("streams/wall.html#action_result", {"result": result}))

    async def send_result_html(self, data, outcome, label, reason):
        from .actions import ActionResult

        result = ActionResult(outcome, label, reason, nonce=str(data.get("nonce") or "")[:64])
        await self.send_frame(render_to_string("streams/wall.html#action_result", {"result": result}))


class AlertFeedConsumer(WallConsumer):
    """The alert sidebar of a page without a wall (incidents, compensation, audit...): alert items and the
    triage summary from the same hub and with the same sequence numbers and flow control, no tiles."""

    async def connect(self):
        self.scope.setdefault("url_route", {})["kwargs"] = {"slug": ALERTS_ONLY}
        await super().connect()


def cue_key_ok(slug, key):
    from django.core import signing

    try:
        return signing.loads(key, salt="host-cue-screen", max_age=CUE_LINK_MAX_AGE_S) == slug
    except signing.BadSignature:
        return False


class CueConsumer(AsyncWebsocketConsumer):
    """The host's teleprompter: on-duty users, or anyone holding the room's signed screen link."""

    async def connect(self):
        from .viewer_services import cue_group

        self.slug = self.scope["url_route"]["kwargs"]["slug"]
        key = (parse_qs(self.scope.get("query_string", b"").decode()).get("k") or [""])[0]
        allowed = cue_key_ok(self.slug, key) or await database_sync_to_async(allows)(
            self.scope.get("user"), *ON_DUTY, what=f"cue websocket {self.slug}")
        if not allowed:
            await self.close(code=4403)
            return
        self.group = cue_group(self.slug)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def cue_html(self, event):
        await self.send(text_data=event["html"])

    async def receive(self, text_data=None, bytes_data=None):
        try:
            data = json.loads(text_data or "")
            cue_id = int(data.get("ack"))
        except (ValueError, TypeError, AttributeError):
            return
        await database_sync_to_async(self._ack, thread_sensitive=False)(cue_id)

    def _ack(self, cue_id):
        from .models import LiveRoom
        from .viewer_services import ack_host_cue

        room = LiveRoom.objects.filter(slug=self.slug).first()
        if room is not None:
            ack_host_cue(room=room, cue_id=cue_id)
