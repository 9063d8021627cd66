"""Viewer presence recorded in batches: one flush per process every few seconds, not a write per socket.

Each open socket is one ViewerSession row (joined_at .. left_at). A flush
  1. creates the Viewer rows of new device ids / accounts (bulk, ON CONFLICT DO NOTHING),
  2. inserts the sessions that started since the last flush (bulk),
  3. refreshes last_seen_at of every still-open session of this process in ONE update (the heartbeat),
  4. closes the sessions that ended (bulk update of left_at).
A process that dies leaves sessions with left_at NULL; their last_seen_at (at most one flush interval
stale) is the end of presence — see selectors.viewers_present().
It also reports the process's socket count per room to the wall ("room.viewers").
"""

import asyncio
import logging
import os
import uuid

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

logger = logging.getLogger(__name__)

FLUSH_INTERVAL_S = float(os.environ.get("VIEWER_PRESENCE_FLUSH_S", "2"))
PROCESS_ID = f"{os.getpid()}-{uuid.uuid4().hex[:6]}"


class PresenceRecorder:
    def __init__(self, hub):
        self.hub = hub
        self.joined = {}  # token -> (viewer_key, room_slug, joined_at)
        self.open = {}  # token -> session id
        self.left = {}  # token -> left_at
        self._task = None
        self._reported = {}  # slug -> last count sent to the wall

    def start(self):
        if self._task is None:
            self._task = self.hub.loop.create_task(self._run())

    def join(self, viewer_key, room_slug):
        token = uuid.uuid4().hex
        self.joined[token] = (viewer_key, room_slug, timezone.now())
        return token

    def leave(self, token):
        if token:
            self.left[token] = timezone.now()

    async def _run(self):
        while True:
            await asyncio.sleep(FLUSH_INTERVAL_S)
            try:
                await self.flush()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - keep the batch for the next round
                logger.exception("presence flush failed")

    async def flush(self):
        joined, self.joined = self.joined, {}
        left, self.left = self.left, {}
        open_ids = [sid for token, sid in self.open.items() if token not in left]
        try:
            created, closed = await sync_to_async(write_presence, thread_sensitive=False)(joined, left, self.open,
                                                                                         open_ids)
        except Exception:
            # Nothing is lost: put the batch back for the next flush.
            joined.update(self.joined)
            left.update(self.left)
            self.joined, self.left = joined, left
            raise
        self.open.update(created)
        for token in closed:
            self.open.pop(token, None)
        await self.report_counts()

    async def report_counts(self):
        layer = get_channel_layer()
        if layer is None:
            return
        from .events import WALL_GROUP

        counts = {slug: len(sockets) for slug, sockets in self.hub.rooms.items()}
        for slug in set(counts) | set(self._reported):
            count = counts.get(slug, 0)
            # Re-sent every flush (cheap: one message per room per process) so a restarted wall forgets nothing.
            await layer.group_send(WALL_GROUP, {"type": "room.viewers", "room": slug, "count": count,
                                                "process": PROCESS_ID})
            self._reported[slug] = count
            if count == 0:
                self._reported.pop(slug, None)


def viewer_ids_for_keys(keys):
    """Viewer pks for keys "u:<user id>" / "d:<device id>", creating missing Viewer rows in bulk."""
    from .models import Viewer

    users = {int(k[2:]) for k in keys if k.startswith("u:")}
    devices = {k[2:] for k in keys if k.startswith("d:")}
    if users:
        Viewer.objects.bulk_create([Viewer(user_id=u) for u in users], ignore_conflicts=True, batch_size=5000)
    if devices:
        Viewer.objects.bulk_create([Viewer(device_id=d) for d in devices], ignore_conflicts=True, batch_size=5000)
    ids = {}
    for chunk in _chunks(sorted(users), 5000):
        ids.update({f"u:{u}": pk for pk, u in Viewer.objects.filter(user_id__in=chunk).values_list("pk", "user_id")})
    for chunk in _chunks(sorted(devices), 5000):
        ids.update({f"d:{d}": pk for pk, d in Viewer.objects.filter(device_id__in=chunk).values_list("pk", "device_id")})
    return ids


def _chunks(items, size):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def write_presence(joined, left, open_sessions, open_ids):
    """One batch: returns ({token: new session id}, [tokens closed])."""
    from .models import LiveRoom, ViewerSession

    close_old_connections()
    now = timezone.now()
    created, closed = {}, []
    try:
        with transaction.atomic():
            if joined:
                viewer_ids = viewer_ids_for_keys({key for key, _, _ in joined.values()})
                room_ids = dict(LiveRoom.objects.filter(slug__in={s for _, s, _ in joined.values()})
                                .values_list("slug", "pk"))
                tokens, rows = [], []
                for token, (key, slug, joined_at) in joined.items():
                    if slug not in room_ids or key not in viewer_ids:
                        continue
                    tokens.append(token)
                    rows.append(ViewerSession(room_id=room_ids[slug], viewer_id=viewer_ids[key], joined_at=joined_at,
                                              last_seen_at=min(now, left.get(token, now)), left_at=left.get(token)))
                for token, row in zip(tokens, ViewerSession.objects.bulk_create(rows, batch_size=5000)):
                    if row.left_at is None:
                        created[token] = row.pk
            # Heartbeat of every session still open in this process: one UPDATE (an array parameter on
            # PostgreSQL, so 10k ids cost one placeholder instead of 10k).
            if open_ids and connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute(f"UPDATE {ViewerSession._meta.db_table} SET last_seen_at = %s "
                                   "WHERE id = ANY(%s) AND left_at IS NULL", [now, list(open_ids)])
            else:
                for chunk in _chunks(open_ids, 500):
                    ViewerSession.objects.filter(pk__in=chunk, left_at__isnull=True).update(last_seen_at=now)
            ended = []
            for token, left_at in left.items():
                sid = open_sessions.get(token)
                if sid is not None:
                    ended.append(ViewerSession(pk=sid, left_at=left_at, last_seen_at=left_at))
                closed.append(token)
            if ended:
                ViewerSession.objects.bulk_update(ended, ["left_at", "last_seen_at"], batch_size=2000)
    finally:
        close_old_connections()
    return created, closed
