"""Viewer websockets: the reference viewer page (HTML fragments for htmx) and the JSON announcement feed.

Sockets register in the process's ViewerHub (streams.fanout); presence is recorded in batches.
Viewers are anonymous or logged in: the key is "u:<user id>" or "d:<device id cookie>".
"""

import asyncio
import contextlib
import json
import time
import uuid

from asgiref.sync import sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.db import close_old_connections

from . import viewer_limits
from .fanout import get_hub

DEVICE_COOKIE = "cr_device"
_room_cache = {}  # slug -> (exists, monotonic time); handshake storms must not each hit the database
ROOM_CACHE_TTL_S = 10.0


def _room_exists(slug):
    from .models import LiveRoom

    close_old_connections()
    try:
        return LiveRoom.objects.filter(slug=slug).exclude(status=LiveRoom.Status.ENDED).exists()
    finally:
        close_old_connections()


async def room_exists(slug):
    cached = _room_cache.get(slug)
    if cached and time.monotonic() - cached[1] < ROOM_CACHE_TTL_S:
        return cached[0]
    exists = await sync_to_async(_room_exists, thread_sensitive=False)(slug)
    _room_cache[slug] = (exists, time.monotonic())
    return exists


def _snapshot(slug):
    from .models import LiveRoom
    from .viewer_services import announcement_data, current_announcement, render_banner

    close_old_connections()
    try:
        room = LiveRoom.objects.filter(slug=slug).first()
        announcement = current_announcement(room) if room else None
        data = {"kind": "announcement", **announcement_data(announcement)}
        return render_banner(room, announcement), json.dumps(data, ensure_ascii=False)
    finally:
        close_old_connections()


async def snapshot_for_room(slug):
    return await sync_to_async(_snapshot, thread_sensitive=False)(slug)


def viewer_key_from_scope(scope):
    user = scope.get("user")
    if getattr(user, "is_authenticated", False):
        return f"u:{user.pk}"
    device = (scope.get("cookies") or {}).get(DEVICE_COOKIE, "")
    if device and len(device) <= 64 and device.replace("-", "").isalnum():
        return f"d:{device}"
    return f"d:anon-{uuid.uuid4().hex}"  # no cookie (e.g. an external client): one-off identity


class ViewerConsumer(AsyncWebsocketConsumer):
    """The viewer page's socket: banner, chat and personal notices as HTML fragments."""

    # No channel-layer channel per viewer socket: the process's ViewerHub writes to the sockets directly.
    # (An alias that is not configured makes Channels skip the layer: less memory, no per-socket receive.)
    channel_layer_alias = "viewer-sockets-use-the-hub"
    wants_json = False

    async def connect(self):
        self.room_slug = self.scope["url_route"]["kwargs"]["slug"]
        self.viewer_key = viewer_key_from_scope(self.scope)
        self.hub = None
        self.presence_token = None
        self.address = viewer_limits.scope_address(self.scope)
        self.seat = None
        if not await room_exists(self.room_slug):
            await self.close(code=4404)
            return
        self.seat = await viewer_limits.open_socket(self.address)
        if self.seat is None:
            await self.close(code=4429)  # too many viewer sockets from this address
            return
        self.hub = get_hub()
        self.hub.start()
        await self.accept()
        self.hub.add(self)
        if self.records_presence:
            self.presence_token = self.hub.presence.join(self.viewer_key, self.room_slug)
        # Pub/sub is at-most-once: every (re)connect starts from the current banner, read once the hub is
        # subscribed (the process's first sockets would otherwise miss a pin made in between).
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.hub.ready.wait(), timeout=5)
        html, data_text = await self.hub.room_snapshot(self.room_slug)
        await self.send(text_data=data_text if self.wants_json else html)

    records_presence = True

    async def disconnect(self, code):
        if getattr(self, "seat", None):
            seat, self.seat = self.seat, None
            await viewer_limits.close_socket(self.address, seat)
        if self.hub is not None:
            self.hub.remove(self)
            self.hub.presence.leave(self.presence_token)

    async def deliver(self, html, data_text):
        await self.send(text_data=data_text if self.wants_json else html)

    def first_time(self, key):
        """True the first time this socket is handed a keyed message (bounded memory per socket)."""
        seen = self.__dict__.setdefault("_seen_keys", {})
        if key in seen:
            return False
        seen[key] = None
        if len(seen) > 200:
            seen.pop(next(iter(seen)))
        return True

    async def receive(self, text_data=None, bytes_data=None):
        if not text_data or len(text_data) > 2000:
            return
        try:
            data = json.loads(text_data)
        except ValueError:
            return
        text = data.get("chat") if isinstance(data, dict) else None
        if not text or not isinstance(text, str):
            return
        if not await viewer_limits.allow_chat(self.viewer_key, self.address):
            return  # per viewer and per address, not per socket: floods are dropped silently
        await sync_to_async(self._post_chat, thread_sensitive=False)(text)

    def _post_chat(self, text):
        from .models import LiveRoom
        from .viewer_services import post_viewer_chat

        close_old_connections()
        try:
            room = LiveRoom.objects.filter(slug=self.room_slug).first()
            if room is not None:
                post_viewer_chat(room=room, viewer_key=self.viewer_key, text=text)
        finally:
            close_old_connections()


class AnnouncementFeedConsumer(ViewerConsumer):
    """JSON feed of a room's announcements for platforms with their own viewer app (read-only)."""

    wants_json = True
    records_presence = False

    async def deliver(self, html, data_text):
        if '"kind": "announcement"' in data_text[:40]:
            await self.send(text_data=data_text)

    async def receive(self, text_data=None, bytes_data=None):
        return
