"""The wall's in-process hub: the one place that turns health samples and events into tile HTML.

One hub per web process (per event loop). It holds ONE channel in the "wall" group and one Redis
subscription for health samples (events.publish_health), so every sample and every control/alert event
reaches the process once, not once per dashboard. It keeps the latest sample per room (older samples are superseded, never queued), renders
each changed tile partial once, and at most every 250 ms hands the same frame string to every local
dashboard consumer, which prefixes its own sequence number. Frames go out on a fixed 250 ms grid of
the wall clock that the media workers sample on too (see cadence.py). A (re)connecting dashboard gets
a full snapshot from the cached fragments.
"""

import asyncio
import logging
import math
import time
from collections import deque

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db.models import Count, OuterRef, Q, Subquery
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from . import cadence, hooks
from .cadence import FRAME_INTERVAL_S
from .events import WALL_GROUP, health_messages, send_to_group
from .models import FAILOVER_TRIGGER_LABELS

logger = logging.getLogger(__name__)

STALE_AFTER_S = 3.5  # no sample for this long: the tile says "no data" instead of showing old numbers
SPARK_POINTS = 60
VIEWER_COUNT_TTL_S = 15

LINE_ROLES = ("primary", "backup")
ALERTS_ONLY = "*alerts"  # the dashboard scope of a page that shows the alert sidebar only (never a slug)


def refresh_rooms(slugs):
    """Ask every wall hub to re-read these rooms (other apps call this after commit, e.g. incident badges)."""
    for slug in slugs:
        send_to_group(WALL_GROUP, {"type": "room.refresh", "room": slug})


# --- reads (sync, run in a thread) ---------------------------------------------------------------


def load_room_meta(slugs=None):
    """Everything a tile shows that lives in the database, for live rooms (or the given slugs)."""
    from .models import Announcement, ControlAction, HostCue, LiveRoom

    last_switch = (ControlAction.objects.filter(room=OuterRef("pk"), action__in=["switch_source", "end_slate"],
                                                outcome=ControlAction.Outcome.OK)
                   .order_by("-created_at", "-id").values("pk")[:1])
    last_cue = HostCue.objects.filter(room=OuterRef("pk")).order_by("-sent_at", "-id").values("pk")[:1]
    pinned = Announcement.objects.filter(room=OuterRef("pk"), unpinned_at__isnull=True).values("text")[:1]
    rooms = LiveRoom.objects.filter(status=LiveRoom.Status.LIVE)
    if slugs is not None:
        rooms = LiveRoom.objects.filter(slug__in=list(slugs))
    rooms = list(rooms.annotate(
        last_switch_id=Subquery(last_switch), last_cue_id=Subquery(last_cue), pinned_text=Subquery(pinned),
        open_alerts=Count("alerts", filter=Q(alerts__acknowledged_at__isnull=True)),
    ).order_by("name"))
    switches = ControlAction.objects.select_related("actor").in_bulk(
        [r.last_switch_id for r in rooms if r.last_switch_id])
    cues = HostCue.objects.in_bulk([r.last_cue_id for r in rooms if r.last_cue_id])
    badges = hooks.tile_badges(rooms)
    meta = {}
    for r in rooms:
        switch = switches.get(r.last_switch_id)
        cue = cues.get(r.last_cue_id)
        meta[r.slug] = {
            "slug": r.slug, "name": r.name, "merchant": r.merchant, "host_name": r.host_name,
            "live": r.status == LiveRoom.Status.LIVE,
            "program_source": r.program_source,
            "program_label": LiveRoom.Source(r.program_source).label,
            "switched_by": (switch.actor.get_username() if switch and switch.actor_id
                            else (switch.actor_label if switch else "")),
            "switched_reason": switch.reason if switch else "",
            "switched_at": switch.created_at if switch else None,
            "switch_latency_ms": switch.latency_ms if switch else None,
            "open_alerts": r.open_alerts,
            "pinned_text": r.pinned_text or "",
            "cue": ({"text": cue.text, "sent_at": cue.sent_at, "acknowledged_at": cue.acknowledged_at}
                    if cue else None),
            "badges": badges.get(r.slug, []),
        }
    return meta


def render_alert_feed(language, room=None):
    """The whole alert feed as an out-of-band swap (a dashboard resynchronising after falling behind);
    a room page's feed has that room's alerts only."""
    from .selectors import recent_alerts

    room = None if room == ALERTS_ONLY else room
    with translation.override(language):
        items = "".join(render_to_string("streams/wall.html#alert_item", {"alert": alert})
                        for alert in recent_alerts(room=room))
    return f'<ol id="alert-list" class="alerts" hx-swap-oob="innerHTML">{items}</ol>' + render_triage([language])[language]


def load_alert(alert_id):
    from .models import Alert
    from .selectors import room_is_snoozed

    alert = Alert.objects.select_related("room", "acknowledged_by").filter(pk=alert_id).first()
    if alert is not None:
        alert.snoozed = room_is_snoozed(alert.room_id)
    return alert


def render_triage(languages):
    """The alert sidebar's triage summary as an out-of-band swap, per language (one read for all)."""
    from .selectors import alert_triage

    triage = alert_triage()
    html = {}
    for language in languages:
        with translation.override(language):
            html[language] = render_to_string("streams/alerts.html#triage", {"triage": triage, "oob": True})
    return html


# --- view model --------------------------------------------------------------------------------

STATE_RANK = {"ok": 0, "unknown": 1, "degraded": 2, "down": 3}


def _num(value, digits=0):
    if value is None:
        return None
    try:
        return round(float(value), digits) if digits else int(round(float(value)))
    except (TypeError, ValueError, OverflowError):
        return None


def line_view(role, data, stale, on_air):
    data = data or {}
    state = data.get("state") or ("down" if data and not data.get("connected") else "unknown")
    if stale or not data:
        state = "unknown"
    dbfs = _num(data.get("audio_dbfs"), 1)
    if "reasons" in data:  # why the line is degraded or down, with the figure that crossed its limit
        flags = [] if stale else [reason_label(r) for r in data["reasons"]]
    else:
        flags = [label for key, label in (("frozen", _("冻结")), ("black", _("黑屏")), ("silent", _("静音")))
                 if data.get(key) and not stale]
    named = {"silence" if r.get("reason") == "silent" else r.get("reason") for r in data.get("reasons") or ()}
    if data.get("trigger") and not stale and data["trigger"] not in named:
        # the failover trigger this line currently meets, unless a reason already says it
        flags.append(FAILOVER_TRIGGER_LABELS.get(data["trigger"], str(data["trigger"])))
    level = None if stale else data.get("audio_level")  # RMS and peak over the last ~300 ms
    rms = _num((level or {}).get("rms_dbfs"), 1) if level else (None if stale else dbfs)  # older workers: last frame
    peak = _num((level or {}).get("peak_dbfs"), 1)
    return {
        "role": role, "label": _("主") if role == "primary" else _("备"), "on_air": on_air,
        "audio_rms": rms, "audio_peak": peak, "audio_rms_pct": meter_pct(rms), "audio_peak_pct": meter_pct(peak),
        # silent for the room's silence time (the worker's verdict), or no audio for a while
        "audio_silent": bool(data.get("silent")) and not stale,
        "state": state, "state_label": STATE_LABELS[state], "flags": flags,
        "rtmp": data.get("kind") == "rtmp",
        "connected": bool(data.get("connected")) and not stale,
        "bitrate_kbps": _num(data.get("bitrate_kbps")), "fps": _num(data.get("fps"), 1),
        "loss_pct": _num(data.get("loss_pct"), 1), "jitter_ms": _num(data.get("jitter_ms")),
        "last_frame_age_ms": _num(data.get("last_frame_age_ms")),
        "audio_dbfs": dbfs, "audio_pct": 0 if dbfs is None else max(0, min(100, int((dbfs + 60) * 100 / 60))),
    }


METER_FLOOR_DBFS = -60


def meter_pct(value):
    """A dBFS figure on a meter from -60 dBFS (empty) to 0 dBFS (full), in whole percent."""
    if value is None:
        return 0
    return max(0, min(100, int((value - METER_FLOOR_DBFS) * 100 / -METER_FLOOR_DBFS)))


REASON_LABELS = {
    "no_publisher": _("未推流"),
    "input_loss": _("无画面 %(value)s 毫秒"),
    "frozen": _("画面冻结"),
    "black": _("黑屏"),
    "silent": _("静音"),
    "low_fps": _("帧率低 %(value)s(应 ≥ %(limit)s)"),
    "loss": _("丢包 %(value)s%%(应 ≤ %(limit)s%%)"),
    "jitter": _("抖动 %(value)s 毫秒(应 ≤ %(limit)s)"),
    "bitrate_drop": _("码率骤降至 %(value)s kbps"),
}


def reason_label(reason):
    template = REASON_LABELS.get(reason.get("reason"))
    if template is None:
        return str(reason.get("reason"))
    if "%(value)s" in str(template) and reason.get("value") is None:
        return str(FAILOVER_TRIGGER_LABELS.get(reason["reason"], reason["reason"]))
    return str(template) % {"value": reason.get("value"), "limit": reason.get("limit")}


PUSH_STATE_LABELS = {"connecting": _("连接中"), "live": _("推流中"), "retrying": _("重连中"), "failed": _("推流失败")}


def push_view(data):
    """One RTMP push destination's state as the tile shows it (the worker's health; never the stream key)."""
    from .models import PushDestination

    platform = data.get("label") or ""
    state = data.get("state") if data.get("state") in PUSH_STATE_LABELS else "connecting"
    return {
        "id": data.get("id"), "state": state, "state_label": PUSH_STATE_LABELS[state],
        "platform": PushDestination.Platform(platform).label if platform in PushDestination.Platform.values
        else platform,
        "bitrate_kbps": _num(data.get("bitrate_kbps")), "fps": _num(data.get("fps"), 1),
        "dropped_frames": _num(data.get("dropped_frames")), "reconnects": _num(data.get("reconnects")),
        "last_error": str(data.get("last_error") or "")[:200],
    }


STATE_LABELS = {"ok": _("正常"), "degraded": _("劣化"), "down": _("中断"), "unknown": _("无数据")}
METRIC_LABELS = {"bitrate": _("码率"), "fps": _("帧率"), "loss": _("丢包"), "jitter": _("抖动"), "age": _("帧龄")}


def sparkline_points(values, width=590, height=28):
    """SVG polyline points for the last 60 s of bitrate (None = gap drawn at zero); integers keep frames small."""
    if not values:
        return ""
    top = max([v for v in values if v] or [1.0])
    step = width // max(SPARK_POINTS - 1, 1)
    offset = SPARK_POINTS - len(values)
    return " ".join(f"{(offset + i) * step},{round(height - 1 - (v or 0) / top * (height - 2))}"
                    for i, v in enumerate(values))


HISTORY_W, HISTORY_H = 300, 36
HISTORY_GAP_S = 25  # samples come every 10 s: a longer gap is drawn as a gap (the line was not measured)
HISTORY_LABELS = (("fps", _("帧率"), ""), ("bitrate_kbps", _("码率"), "kbps"), ("jitter_ms", _("抖动"), "ms"),
                  ("loss_pct", _("丢包"), "%"))


def history_path(points, since, span_s, top):
    """SVG path data for (at, value) points on a HISTORY_W x HISTORY_H box: x by time over the span, y from 0 to
    `top`; a gap in the samples (or a missing value) starts a new segment instead of drawing across it."""
    parts, previous = [], None
    for at, value in points:
        if value is None:
            previous = None
            continue
        x = round((at - since).total_seconds() * HISTORY_W / span_s, 1)
        y = round(HISTORY_H - 1 - min(value, top) / top * (HISTORY_H - 2), 1) if top else HISTORY_H - 1
        gap = previous is None or (at - previous).total_seconds() > HISTORY_GAP_S
        parts.append(f"{'M' if gap else 'L'}{x},{y}")
        previous = at
    return " ".join(parts)


def history_graphs(history, since, now):
    """Per line, per metric: a small server-rendered graph (path, latest and highest value) of the window."""
    span_s = max(1.0, (now - since).total_seconds())
    lines = []
    for role in LINE_ROLES:
        rows = history.get(role) or []
        graphs = []
        for index, (key, label, unit) in enumerate(HISTORY_LABELS, start=1):
            points = [(row[0], row[index]) for row in rows]
            values = [v for _at, v in points if v is not None]
            top = max(values, default=0) or (1.0 if key != "fps" else 30.0)
            digits = 0 if key == "bitrate_kbps" else 1  # figures rounded for people
            graphs.append({"key": key, "label": label, "unit": unit, "path": history_path(points, since, span_s, top),
                           "last": _num(values[-1], digits) if values else None, "top": _num(top, digits),
                           "samples": len(values)})
        lines.append({"role": role, "label": _("主线路") if role == "primary" else _("备用线路"), "graphs": graphs})
    return {"lines": lines, "w": HISTORY_W, "h": HISTORY_H, "since": since, "now": now}


def tile_context(meta, health, history, viewers, stale):
    from .models import LiveRoom

    program = (health or {}).get("program") or {}
    source = program.get("source") or meta["program_source"]
    lines = {role: line_view(role, (health or {}).get("lines", {}).get(role), stale, role == source)
             for role in LINE_ROLES}
    if source == "slate":
        status = "degraded"
    elif source in lines:
        status = lines[source]["state"]
    else:
        status = "unknown"
    worst = max((STATE_RANK[line["state"]] for line in lines.values()), default=0)
    attention = STATE_RANK.get(status, 1) * 10 + worst * 3 + meta["open_alerts"] * 2 + 5 * len(meta["badges"])
    return {
        "room": meta, "lines": [lines[r] for r in LINE_ROLES], "status": status, "stale": stale,
        "program_source": source, "attention": attention, "labels": METRIC_LABELS,
        "program_label": LiveRoom.Source(source).label if source in LiveRoom.Source.values else source,
        "viewers": viewers, "whep_viewers": program.get("viewers"),
        "holding": bool(program.get("holding")), "selected_by": program.get("selected_by") or "",
        "spark_primary": sparkline_points([h[0] for h in history]),
        "spark_backup": sparkline_points([h[1] for h in history]),
        "destinations": [] if stale else [push_view(d) for d in (health or {}).get("destinations") or []],
    }


def head_key(ctx):
    """What the tile header shows besides the database meta: re-render the header only when it changes."""
    return ctx["program_source"], ctx["viewers"], ctx["whep_viewers"], ctx["holding"], ctx["selected_by"]


def render_tile_live(ctx, oob=True):
    return render_to_string("streams/wall.html#tile_live", {"tile": ctx, "oob": oob})


def render_tile_head(ctx, oob=True):
    return render_to_string("streams/wall.html#tile_head", {"tile": ctx, "oob": oob})


# --- the hub ---------------------------------------------------------------------------------

_hubs = {}


async def get_wall_hub():
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        for old in [lp for lp in _hubs if lp.is_closed()]:
            _hubs.pop(old, None)
        hub = _hubs[loop] = WallHub(loop)
        hub.start()
    await hub.ready.wait()
    return hub


class WallHub:
    def __init__(self, loop):
        self.loop = loop
        self.dashboards = set()
        self.ready = asyncio.Event()
        self.meta = {}  # slug -> room meta (database)
        self.health = {}  # slug -> latest health sample (superseded ones are simply overwritten)
        self.health_seen = {}  # slug -> monotonic time of the latest sample
        self.history = {}  # slug -> deque[(primary kbps, backup kbps)], one point per sample
        self.viewer_counts = {}  # slug -> {process: (count, monotonic)}
        # language -> slug -> [head html, live html]: rendered once per language, reused by snapshots
        self.tiles = {}
        self.head_keys = {}  # (language, slug) -> (meta version, head_key) of the cached header
        self.meta_version = {}  # slug -> counter, bumped on every database re-read
        self.stale = set()
        # language -> slug -> header changed?: tiles rendered since the last frame (their HTML is in self.tiles)
        self.pending = {}
        self.meta_dirty = set()  # database state changed: re-read, then re-render
        self._meta_task = None
        self.preparing = set()  # languages whose first snapshot is being rendered
        self.extra = []  # alert feed fragments for the next frame: (room slug, {language: html})
        self.alert_updates = set()  # alerts whose in-place update is being read and rendered
        self.room_set_changed = False
        # The alert sidebar's triage summary: re-read and re-rendered (at most once a frame) on any alert change
        self.triage_html = {}  # language -> html of the latest triage summary (out-of-band swap)
        self.triage_changed = False  # the next frame carries it
        self.triage_dirty = False
        self._triage_task = None
        self.frames_sent = 0
        self._flush_handle = None
        self._flushing = False
        self._last_slot = -1  # the grid slot of the latest frame
        self._tasks = []
        self.channel = None

    def start(self):
        self._tasks.append(self.loop.create_task(self._run()))

    async def _run(self):
        layer = get_channel_layer()
        self.meta = await database_sync_to_async(load_room_meta, thread_sensitive=False)()
        await self.render_language(settings.LANGUAGE_CODE)
        if layer is not None:
            # Default prefix: channels_redis pops every "specific.<client>!" channel of the process through
            # one shared receive; a different prefix would never be read while a consumer is receiving.
            self.channel = await layer.new_channel()
            await layer.group_add(WALL_GROUP, self.channel)
        if settings.REDIS_URL:
            subscribed = asyncio.Event()
            self._tasks.append(self.loop.create_task(self._receive_health(subscribed)))
            await subscribed.wait()
        self.ready.set()
        self._tasks.append(self.loop.create_task(self._watch_staleness()))
        if layer is None:
            return
        last_group_add = time.monotonic()
        while True:
            try:
                message = await layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a Redis hiccup: retry, then everyone gets fresh state
                logger.exception("wall hub receive failed")
                await asyncio.sleep(0.5)
                continue
            try:
                self.handle(message)
            except Exception:  # noqa: BLE001 - one malformed message must not stop the wall
                logger.exception("wall hub could not handle %r", message.get("type"))
            if time.monotonic() - last_group_add > 3600:  # group membership expires in the layer
                await layer.group_add(WALL_GROUP, self.channel)
                last_group_add = time.monotonic()

    async def _receive_health(self, subscribed):
        """Health samples arrive over Redis pub/sub (events.publish_health), not the channel layer."""
        while True:
            try:
                async for message in health_messages(ready=subscribed):
                    try:
                        self.handle(message)
                    except Exception:  # noqa: BLE001 - one malformed sample must not stop the wall
                        logger.exception("wall hub could not handle a health sample")
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - resubscribe; samples in between are superseded anyway
                logger.exception("wall health subscription lost; resubscribing")
                await asyncio.sleep(0.5)

    def handle(self, message):
        kind = message.get("type")
        slug = message.get("room")
        if kind == "room.health":
            health = message.get("health") or {}
            self.health[slug] = health
            self.health_seen[slug] = time.monotonic()
            self.stale.discard(slug)
            lines = health.get("lines") or {}
            self.history.setdefault(slug, deque(maxlen=SPARK_POINTS)).append(
                tuple(_num((lines.get(r) or {}).get("bitrate_kbps")) for r in LINE_ROLES))
            program_source = (health.get("program") or {}).get("source")
            if slug in self.meta and program_source and program_source != self.meta[slug]["program_source"]:
                self.refresh_meta(slug)  # e.g. an automatic failover: read who/why
            self.mark(slug)
        elif kind == "room.viewers":
            self.viewer_counts.setdefault(slug, {})[message.get("process")] = (int(message.get("count") or 0),
                                                                               time.monotonic())
            self.mark(slug)
        elif kind in ("control.action", "room.refresh", "alert.acknowledged", "room.status"):
            if slug:
                self.refresh_meta(slug)
            if kind == "alert.acknowledged":
                self.loop.create_task(self._alert_fragment(message.get("alert_id"), new=False))
                self.refresh_triage()
        elif kind == "alert.raised":
            self.refresh_meta(slug)
            self.loop.create_task(self._alert_fragment(message.get("alert_id"), new=True))
            self.refresh_triage()
        elif kind == "alerts.snoozed":
            self.refresh_triage()
        elif kind == "alert.updated":
            self.refresh_triage()
            # A repeat of an open alert: its entry is replaced in place (count, time), no beep; a storm of
            # repeats of one alert costs one read and render per frame, not one per repeat.
            alert_id = message.get("alert_id")
            if alert_id not in self.alert_updates:
                self.alert_updates.add(alert_id)
                self.loop.create_task(self._alert_fragment(alert_id, new=False))

    def mark(self, slug):
        """A tile changed: render it now, while waiting for the slot, so the slot only joins and sends."""
        if slug in self.meta:
            for language in self.languages():
                head = self._render_tile(language, slug)
                pending = self.pending.setdefault(language, {})
                pending[slug] = pending.get(slug, False) or head
        self._schedule()

    def refresh_meta(self, slug):
        """Database state of a room changed: re-read it beside the frames (a slow read never delays one)."""
        self.meta_dirty.add(slug)
        if self._meta_task is None or self._meta_task.done():
            self._meta_task = self.loop.create_task(self._refresh_meta())

    async def _refresh_meta(self):
        while self.meta_dirty:
            slugs, self.meta_dirty = self.meta_dirty, set()
            try:
                fresh = await database_sync_to_async(load_room_meta, thread_sensitive=False)(slugs)
            except Exception:  # noqa: BLE001 - the database hiccupped: try again shortly
                logger.exception("wall hub could not read rooms %s", sorted(slugs))
                self.meta_dirty |= slugs
                await asyncio.sleep(0.5)
                continue
            for slug in slugs:
                was_on_wall = slug in self.meta
                self.meta_version[slug] = self.meta_version.get(slug, 0) + 1
                if slug in fresh and fresh[slug]["live"]:
                    self.meta[slug] = fresh[slug]
                    self.room_set_changed |= not was_on_wall
                    self.mark(slug)
                elif was_on_wall:
                    del self.meta[slug]
                    for cache in (*self.tiles.values(), *self.pending.values()):
                        cache.pop(slug, None)
                    self.room_set_changed = True
                    self._schedule()

    def _schedule(self):
        """Send the pending changes on the next free slot of the grid."""
        if self._flush_handle is None and not self._flushing:
            slot = cadence.next_frame_slot(after=self._last_slot)
            delay = max(0.0, cadence.frame_slot(slot) - time.time())
            self._flush_handle = self.loop.call_later(delay, lambda: self.loop.create_task(self.flush(slot)))

    def refresh_triage(self):
        """An alert or a snooze changed: re-read the sidebar's triage summary beside the frames."""
        self.triage_dirty = True
        if self._triage_task is None or self._triage_task.done():
            self._triage_task = self.loop.create_task(self._refresh_triage())

    async def _refresh_triage(self):
        while self.triage_dirty:
            self.triage_dirty = False
            try:
                html = await database_sync_to_async(render_triage, thread_sensitive=False)(self.languages())
            except Exception:  # noqa: BLE001 - the database hiccupped: try again shortly
                logger.exception("wall hub could not read the alert triage")
                self.triage_dirty = True
                await asyncio.sleep(0.5)
                continue
            self.triage_html = html
            self.triage_changed = True
            self._schedule()
            await asyncio.sleep(FRAME_INTERVAL_S)  # a storm of repeats: one read and render per frame

    async def triage_snapshot(self, language):
        """The triage summary for a (re)connecting dashboard: the cached one, or read now."""
        if language not in self.triage_html:
            html = await database_sync_to_async(render_triage, thread_sensitive=False)([language])
            self.triage_html.setdefault(language, html[language])
        return self.triage_html[language]

    async def _alert_fragment(self, alert_id, new):
        self.alert_updates.discard(alert_id)
        alert = await database_sync_to_async(load_alert, thread_sensitive=False)(alert_id)
        if alert is None:
            return
        fresh = new and not alert.snoozed  # a snoozed room's new alert is listed, but neither beeps nor flashes
        items = {}
        for language in self.languages():
            with translation.override(language):
                item = render_to_string("streams/wall.html#alert_item", {"alert": alert, "fresh": fresh})
            items[language] = f'<div hx-swap-oob="afterbegin:#alert-list">{item}</div>' if new else item
        self.extra.append((alert.room.slug, items))
        self._schedule()

    async def _watch_staleness(self):
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            for slug, seen in list(self.health_seen.items()):
                if slug not in self.stale and now - seen > STALE_AFTER_S:
                    self.stale.add(slug)
                    self.mark(slug)

    def viewers(self, slug):
        now = time.monotonic()
        counts = self.viewer_counts.get(slug, {})
        fresh = [c for c, t in counts.values() if now - t < VIEWER_COUNT_TTL_S]
        return sum(fresh) if fresh else 0

    def _context(self, slug):
        return tile_context(self.meta[slug], self.health.get(slug), list(self.history.get(slug, ())),
                            self.viewers(slug), slug in self.stale)

    def _render_tile(self, language, slug, force_head=False):
        """Render a tile's changed parts in one language into the cache; True if its header changed
        (the next frame then sends the header too)."""
        if slug not in self.meta:
            return False
        cache = self.tiles.setdefault(language, {})
        with translation.override(language):
            ctx = self._context(slug)
            entry = cache.setdefault(slug, ["", ""])
            key = (self.meta_version.get(slug, 0), head_key(ctx))
            head_changed = force_head or self.head_keys.get((language, slug)) != key
            if head_changed:
                entry[0] = render_tile_head(ctx)
                self.head_keys[(language, slug)] = key
            entry[1] = render_tile_live(ctx)
        return head_changed

    async def render_language(self, language):
        """Every tile in a language not rendered yet (first dashboard speaking it)."""
        def render_all():
            self.tiles.setdefault(language, {})  # a wall with no live room still has a (empty) snapshot
            for slug in list(self.meta):
                self._render_tile(language, slug, force_head=True)

        await asyncio.to_thread(render_all)

    def languages(self):
        return {d.language for d in self.dashboards} | self.preparing | {settings.LANGUAGE_CODE}

    def _take_frames(self):
        """The frame per language: every tile changed since the last frame (latest state, rendered once),
        the room-set marker, alert items. Room pages get their own room's part only, keyed (language, slug)."""
        languages = self.languages()
        room_scopes = {(d.language, d.room) for d in self.dashboards if d.room and d.room != ALERTS_ONLY}
        alert_scopes = {d.language for d in self.dashboards if d.room == ALERTS_ONLY}
        for language in list(self.tiles):
            if language not in languages:
                del self.tiles[language]  # nobody reads it: rebuilt by the next snapshot in that language
        pending, self.pending = self.pending, {}
        extra, self.extra = self.extra, []
        triage = self.triage_html if self.triage_changed else {}
        self.triage_changed = False
        frames = {}
        for language in languages:
            cache = self.tiles.get(language, {})
            parts = []
            for slug, head_changed in pending.get(language, {}).items():
                if slug in cache:
                    if head_changed:
                        parts.append(cache[slug][0])
                    parts.append(cache[slug][1])
            if self.room_set_changed:
                parts.append(self.room_set_marker())
            parts.extend(item.get(language) or item[settings.LANGUAGE_CODE] for _, item in extra)
            if triage:
                parts.append(triage.get(language) or triage.get(settings.LANGUAGE_CODE, ""))
            if parts:
                frames[language] = "".join(parts)
        for language, slug in room_scopes:
            cache, changed = self.tiles.get(language, {}), pending.get(language, {})
            parts = []
            if slug in changed and slug in cache:
                parts = [cache[slug][0]] if changed[slug] else []
                parts.append(cache[slug][1])
            parts.extend(item.get(language) or item[settings.LANGUAGE_CODE] for room, item in extra if room == slug)
            if triage:  # the sidebar's summary is of every room, on every page
                parts.append(triage.get(language) or triage.get(settings.LANGUAGE_CODE, ""))
            if parts:
                frames[(language, slug)] = "".join(parts)
        for language in alert_scopes:  # pages with the sidebar only: alert items and the summary, no tiles
            parts = [item.get(language) or item[settings.LANGUAGE_CODE] for _, item in extra]
            if triage:
                parts.append(triage.get(language) or triage.get(settings.LANGUAGE_CODE, ""))
            if parts:
                frames[(language, ALERTS_ONLY)] = "".join(parts)
        self.room_set_changed = False
        return frames

    async def flush(self, slot):
        """On grid slot `slot`, send one frame to every dashboard (never two frames in one slot)."""
        self._flush_handle = None
        self._flushing = True
        try:
            wait = cadence.frame_slot(slot) - time.time()
            if wait > 0:
                await asyncio.sleep(wait)  # call_later may wake a little early
            started = time.monotonic()
            frames = self._take_frames()
            if frames:
                # A frame that goes out late pushes the next one to a later slot: frames stay at least
                # MIN_FRAME_GAP_S apart, and never two share a slot.
                sent = time.time()
                self._last_slot = max(slot, math.ceil((sent + cadence.MIN_FRAME_GAP_S) / FRAME_INTERVAL_S) - 1)
                await self.broadcast(frames)
            took = time.monotonic() - started
            if took > 0.1:
                logger.warning("slow wall frame: %.0f ms to send to %d dashboards", took * 1000, len(self.dashboards))
        finally:
            self._flushing = False
            if self.pending or self.extra or self.room_set_changed or self.triage_changed:
                self._schedule()

    def room_set_marker(self):
        slugs = ",".join(sorted(self.meta, key=lambda s: self.meta[s]["name"]))
        return f'<div id="wall-rooms" hx-swap-oob="true" data-rooms="{slugs}"></div>'

    async def snapshot(self, language, room=None):
        if language not in self.tiles or any(slug not in self.tiles[language] for slug in self.meta):
            self.preparing.add(language)  # changes arriving meanwhile are rendered in it too
            try:
                await self.render_language(language)
            finally:
                self.preparing.discard(language)
        cache = self.tiles[language]
        if room == ALERTS_ONLY:
            return ""
        if room is not None:
            return cache[room][0] + cache[room][1] if room in self.meta and room in cache else ""
        return "".join(cache[slug][0] + cache[slug][1] for slug in self.meta if slug in cache) + self.room_set_marker()

    async def broadcast(self, frames):
        self.frames_sent += 1
        for dashboard in list(self.dashboards):
            frame = frames.get((dashboard.language, dashboard.room) if dashboard.room else dashboard.language)
            if frame is None:
                continue
            try:
                await dashboard.push_frame(frame)
            except Exception:  # noqa: BLE001 - a closing socket must not stop the others
                logger.debug("dashboard send failed", exc_info=True)

    async def stop(self):
        """Cancel the hub's tasks (tests; a process that ends simply drops them) and leave the group."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        tasks = [*self._tasks, *([self._meta_task] if self._meta_task else []),
                 *([self._triage_task] if self._triage_task else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        layer = get_channel_layer()
        if layer is not None and self.channel:
            await layer.group_discard(WALL_GROUP, self.channel)
        _hubs.pop(self.loop, None)

    def add(self, dashboard):
        self.dashboards.add(dashboard)

    def remove(self, dashboard):
        self.dashboards.discard(dashboard)
