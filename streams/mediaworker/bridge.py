"""The engine's Django side: settings from LiveRoom, audit rows, alerts, health publishing, leases.

Business database work (audit rows, alerts, line states, health samples) runs on one dedicated thread
(ordered, one connection) so the media loop never blocks on the database. Liveness (lease renewal) has a
thread and connection of its own: it never queues behind business work. Under pressure business work is
coalesced per room (line states, health samples: the newest wins; repeated holds: counted into one job);
audit rows of actions are never dropped.
"""

import asyncio
import logging
import math
import os
import statistics
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from django.conf import settings
from django.db import IntegrityError, close_old_connections, transaction
from django.utils import timezone, translation

from controlroom.db import retry_write

from .. import snapshots
from ..media.engine import CommandError, Hooks, OutputConfig, RoomSettings
from ..media.rtmp_push import PushTarget
from ..media.rtmp_ingest import RtmpSource

logger = logging.getLogger(__name__)

HEALTH_SAMPLE_EVERY_S = 10
_db_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="media-db")
_lease_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="media-lease")


def _setting(name, default):
    """settings.NAME, else the environment variable NAME, else the default (640x360@30 program)."""
    value = getattr(settings, name, None)
    if value is None:
        raw = os.environ.get(name, "").strip()
        value = int(raw) if raw else default
    return int(value)


def output_config_from_settings():
    return OutputConfig(
        width=_setting("MEDIA_OUTPUT_WIDTH", 640),
        height=_setting("MEDIA_OUTPUT_HEIGHT", 360),
        fps=_setting("MEDIA_OUTPUT_FPS", 30),
        video_bitrate=_setting("MEDIA_OUTPUT_BITRATE", 900_000),
        fanout=os.environ.get("MEDIA_FANOUT", "packets"),  # "stock" only for bench/media_bench.py
        max_viewers=_setting("MEDIA_MAX_VIEWERS_PER_ROOM", 75),
        handshake_timeout_s=_setting("MEDIA_HANDSHAKE_TIMEOUT_S", 5),
        thumbnail_every_s=snapshots.EVERY_S, thumbnail_width=snapshots.WIDTH, thumbnail_height=snapshots.HEIGHT,
        push_width=settings.MEDIA_PUSH_WIDTH, push_height=settings.MEDIA_PUSH_HEIGHT,
        push_video_bitrate=settings.MEDIA_PUSH_BITRATE,
    )


async def run_db(fn, *args, **kwargs):
    def job():
        close_old_connections()
        return fn(*args, **kwargs)

    return await asyncio.get_running_loop().run_in_executor(_db_executor, job)


async def run_lease_db(fn, *args, **kwargs):
    """Liveness work (lease renewal, release): its own thread and connection, never behind business work."""

    def job():
        close_old_connections()
        return fn(*args, **kwargs)

    return await asyncio.get_running_loop().run_in_executor(_lease_executor, job)


async def close_db():
    """Close the media DB threads' connections (tests, shutdown)."""
    from django.db import connections

    loop = asyncio.get_running_loop()
    await asyncio.gather(loop.run_in_executor(_db_executor, connections.close_all),
                         loop.run_in_executor(_lease_executor, connections.close_all))


# --- sync database work ---------------------------------------------------------------------

def load_room_settings(slug):
    from streams.models import IngestLine, LiveRoom

    try:
        room = LiveRoom.objects.select_related("slate").get(slug=slug)
    except LiveRoom.DoesNotExist:
        raise CommandError(f"no room {slug!r}") from None
    slate = room.slate
    slate_path = ""
    if slate is not None and slate.file:
        try:
            slate_path = slate.file.path
        except Exception:
            slate_path = ""
    return RoomSettings(
        program_source=room.program_source,
        source_before_slate=room.source_before_slate,
        auto_failover=room.auto_failover,
        input_loss_ms=room.input_loss_ms,
        frozen_ms=room.frozen_ms,
        black_ms=room.black_ms,
        black_luma_threshold=room.black_luma_threshold,
        silence_ms=room.silence_ms,
        silence_dbfs=room.silence_dbfs,
        revert_mode=room.revert_mode,
        revert_after_s=room.revert_after_s,
        max_auto_switches=room.max_auto_switches,
        auto_switch_window_s=room.auto_switch_window_s,
        degraded_fps_pct=room.degraded_fps_pct,
        degraded_loss_pct=room.degraded_loss_pct,
        degraded_jitter_ms=room.degraded_jitter_ms,
        degraded_bitrate_drop_pct=room.degraded_bitrate_drop_pct,
        slate_path=slate_path,
        slate_kind=slate.kind if slate is not None else "image",
        slate_has_audio=bool(slate and slate.has_audio),
        destinations=tuple(PushTarget(d.pk, d.platform, d.push_url)
                           for d in room.push_destinations.filter(enabled=True).order_by("pk")),
        rtmp_pulls=tuple(RtmpSource(line.role, f"{settings.RTMP_EDGE_PULL_URL}/{slug}.{line.role}", line.rtmp_client)
                         for line in room.lines.filter(kind=IngestLine.Kind.RTMP).exclude(rtmp_client="")),
    )


def set_line_state(slug, role, state):
    from streams.models import IngestLine

    IngestLine.objects.filter(room__slug=slug, role=role).exclude(state=state).update(
        state=state, state_changed_at=timezone.now())


def record_publisher_event(slug, role, action, detail):
    from streams.models import IngestLine, LiveRoom
    from streams.services import record_action

    room = LiveRoom.objects.get(slug=slug)
    record_action(actor=None, actor_label="mediaworker", action=action, room=room, target=role,
                  reason=str(detail.get("reason", ""))[:200], detail=detail)
    state = IngestLine.State.IDLE if action == "publisher_left" else IngestLine.State.CONNECTING
    set_line_state(slug, role, state)


def first_frame_iso(ack):
    at = ack.get("first_frame_at")
    return datetime.fromtimestamp(at, dt_timezone.utc).isoformat() if at else None


def stored_message(kind, detail):
    """The alert's message as stored (admin, exports): in the site language; pages render Alert.text."""
    from streams.models import Alert

    with translation.override(settings.LANGUAGE_CODE):
        return str(Alert.describe(kind, detail))


def record_auto_switch(slug, ack, trigger):
    from streams.models import Alert, LiveRoom
    from streams.services import raise_alert, record_action

    with transaction.atomic():
        room = LiveRoom.objects.select_for_update().get(slug=slug)
        previous, target = ack["from"], ack["to"]
        if target == "slate" and room.program_source != "slate":
            room.source_before_slate = room.program_source if room.program_source != "slate" else previous
        room.program_source = target
        room.save(update_fields=["program_source", "source_before_slate"])
        detail = {**ack, "first_frame_at": first_frame_iso(ack), "trigger": trigger}
        action = record_action(actor=None, actor_label="auto", action="switch_source", room=room, target=target,
                               reason=f"auto:{trigger}", latency_ms=ack.get("latency_ms"), detail=detail)
        severity = Alert.Severity.INFO if trigger in ("revert", "recovered") else Alert.Severity.CRITICAL
        line_role = previous if previous in ("primary", "backup") else ""
        alert_detail = {"from": previous, "to": target, "trigger": trigger, "action_id": action.pk}
        raise_alert(room=room, kind=Alert.Kind.AUTO_FAILOVER, severity=severity, line_role=line_role,
                    message=stored_message(Alert.Kind.AUTO_FAILOVER, alert_detail), detail=alert_detail)
    return action.pk


def record_failover_hold(slug, trigger, detail, refused=1):
    """Anti-flap refused `refused` automatic switches: one hold per room while its alert is open.

    The first refusal opens the alert and writes the audit row; later ones count into the open alert
    ("refused N attempts") instead of adding rows, beeps and timeline entries.
    """
    from streams.models import Alert, LiveRoom
    from streams.services import raise_alert, record_action

    with transaction.atomic():
        room = LiveRoom.objects.get(slug=slug)
        open_hold = (Alert.objects.select_for_update()
                     .filter(room=room, kind=Alert.Kind.FAILOVER_HOLD, acknowledged_at__isnull=True).first())
        total = (open_hold.count if open_hold else 0) + refused
        if open_hold is None:
            record_action(actor=None, actor_label="auto", action="failover_hold", room=room,
                          target=detail.get("wanted", ""), reason=f"auto:{trigger}", outcome="refused",
                          detail={**detail, "refused": refused})
        alert_detail = {**detail, "trigger": trigger, "refused": total}
        return raise_alert(room=room, kind=Alert.Kind.FAILOVER_HOLD, severity=Alert.Severity.CRITICAL,
                           line_role=detail.get("source", ""), times=refused,
                           message=stored_message(Alert.Kind.FAILOVER_HOLD, alert_detail), detail=alert_detail)


def record_worker_overloaded(slug, trigger, detail):
    from streams.models import Alert, LiveRoom
    from streams.services import raise_alert

    room = LiveRoom.objects.get(slug=slug)
    alert_detail = {**detail, "trigger": trigger}
    raise_alert(room=room, kind=Alert.Kind.WORKER_OVERLOADED, severity=Alert.Severity.WARNING,
                line_role=detail.get("line", ""),
                message=stored_message(Alert.Kind.WORKER_OVERLOADED, alert_detail), detail=alert_detail)


def record_push_failed(slug, destination):
    """A push destination gave up connecting (state "failed"): one open alert per room."""
    from streams.models import Alert, LiveRoom
    from streams.services import raise_alert

    room = LiveRoom.objects.get(slug=slug)
    alert_detail = {"destination": destination["id"], "platform": destination["label"],
                    "reconnects": destination["reconnects"], "last_error": destination["last_error"]}
    raise_alert(room=room, kind=Alert.Kind.PUSH_FAILED, severity=Alert.Severity.CRITICAL,
                message=stored_message(Alert.Kind.PUSH_FAILED, alert_detail), detail=alert_detail)


def write_health_samples(slug, rows):
    from streams.models import HealthSample, LiveRoom

    room_id = LiveRoom.objects.filter(slug=slug).values_list("pk", flat=True).first()
    if room_id is None:
        return
    HealthSample.objects.bulk_create([HealthSample(room_id=room_id, **row) for row in rows])


def downsample(slug, window):
    """One HealthSample per line (and program) from ~10 one-second health snapshots."""
    at = timezone.now()
    rows = []

    def mean(values):
        values = [v for v in values if v is not None]
        return round(statistics.fmean(values), 2) if values else None

    for role in ("primary", "backup"):
        lines = [h["lines"][role] for h in window]
        rows.append({
            "line_role": role, "at": at,
            "connected": any(line["connected"] for line in lines),
            "bitrate_kbps": mean(line["bitrate_kbps"] for line in lines),
            "fps": mean(line["fps"] for line in lines),
            "loss_pct": mean(line["loss_pct"] for line in lines),
            "jitter_ms": mean(line["jitter_ms"] for line in lines),
            "frozen": any(line["frozen"] for line in lines),
            "black": any(line["black"] for line in lines),
            "silent": any(line["silent"] for line in lines),
            "audio_dbfs": mean(line["audio_dbfs"] for line in lines),
            "detail": {
                "seconds": len(lines),
                "states": sorted({line["state"] for line in lines}),
                "max_last_frame_age_ms": max((line["last_frame_age_ms"] or 0) for line in lines),
                "width": lines[-1]["width"], "height": lines[-1]["height"],
                "luma": mean(line["luma"] for line in lines),
            },
        })
    programs = [h["program"] for h in window]
    rows.append({
        "line_role": "program", "at": at, "connected": True,
        "bitrate_kbps": mean(p["bitrate_kbps"] for p in programs),
        "fps": mean(p["encode_fps"] for p in programs),
        "detail": {"sources": sorted({p["source"] for p in programs}),
                   "viewers_max": max(p["viewers"] for p in programs)},
    })
    write_health_samples(slug, rows)


class DjangoHooks(Hooks):
    """Engine events → audit rows, alerts, IngestLine.state, wall health, HealthSample rows."""

    def __init__(self):
        self.windows = {}
        self.line_states = {}
        self.holds = {}  # room -> the open anti-flap hold: its first detail, refusals already recorded
        self.push_states = {}  # (room, destination id) -> last state seen
        self._coalesced = {}  # key -> {"args": newest arguments} of a job waiting for the business thread
        self._lock = threading.Lock()
        self.shed = 0  # jobs superseded before they ran (line states, health windows, repeated holds)

    async def _run_coalesced(self, key, fn, *args, merge=None):
        """Queue fn(*args) unless a job of the same key is already waiting: then that job runs with the
        newest arguments (or `merge(old, new)`), once. Keeps a busy business thread's queue bounded per room."""
        with self._lock:
            entry = self._coalesced.get(key)
            if entry is not None:
                entry["args"] = merge(entry["args"], args) if merge else args
                self.shed += 1
                return None
            entry = self._coalesced[key] = {"args": args}

        def job():
            with self._lock:
                if self._coalesced.get(key) is entry:
                    del self._coalesced[key]
                args = entry["args"]
            return fn(*args)

        try:
            return await run_db(job)
        finally:
            with self._lock:  # the job never ran (cancelled): later calls must not wait for it
                if self._coalesced.get(key) is entry:
                    del self._coalesced[key]

    async def load_settings(self, room):
        return await run_db(load_room_settings, room)

    async def publisher_event(self, room, role, action, detail):
        self.line_states.pop((room, role), None)  # the next health tick writes the real state
        try:
            await run_db(retry_write, record_publisher_event, room, role, action, detail)
        except Exception:
            logger.exception("%s/%s: recording %s failed", room, role, action)

    async def auto_switch(self, room, ack, trigger):
        # Viewers already see the new source: the audit row and program_source must follow, so a refused
        # write ("database is locked") is retried for ~25 s, each attempt one whole transaction.
        try:
            await run_db(retry_write, record_auto_switch, room, ack, trigger, attempts=8)
        except Exception:
            logger.critical("%s: the program switched %s → %s (%s) but recording it failed; the room's "
                            "program_source is stale until the next switch", room, ack.get("from"), ack.get("to"),
                            trigger, exc_info=True)

    async def failover_hold(self, room, trigger, detail):
        self.holds[room] = {"detail": detail, "recorded": 1}
        await self._record_hold(room, trigger, detail, 1)

    async def failover_hold_report(self, room, trigger, detail):
        # The policy reports a hold's refusals so far; the open alert already counts the ones recorded.
        hold = self.holds.get(room)
        if hold is None:
            return
        if detail.get("phase") == "ended":
            del self.holds[room]
        more = detail.get("refused", 0) - hold["recorded"]
        if more > 0:
            hold["recorded"] += more
            await self._record_hold(room, trigger, hold["detail"], more)

    async def _record_hold(self, room, trigger, detail, refused):
        def merge(old, new):  # refusals waiting for the business thread are counted into one write
            return (*new[:3], old[3] + new[3])

        try:
            await self._run_coalesced(("hold", room), record_failover_hold, room, trigger, detail, refused,
                                      merge=merge)
        except Exception:
            logger.exception("%s: recording failover hold failed", room)

    async def worker_overloaded(self, room, trigger, detail):
        # one alert per episode; its later reports (refused switch counts) go to the log
        if detail.get("phase") != "started":
            logger.warning("%s: worker overload %s: %s", room, detail.get("phase"), detail)
            return
        try:
            await run_db(record_worker_overloaded, room, trigger, detail)
        except Exception:
            logger.exception("%s: recording worker overload failed", room)

    async def health(self, room, health, sample):
        from streams.events import publish_health

        message = dict(health)
        message["at"] = datetime.fromtimestamp(health["at"], dt_timezone.utc).isoformat()
        try:
            await publish_health(room, message)
        except Exception:
            logger.exception("%s: publishing health failed", room)
        for role, line in health["lines"].items():
            state = "connected" if line["connected"] else "idle"
            if self.line_states.get((room, role)) != state:
                self.line_states[(room, role)] = state
                try:
                    await self._run_coalesced(("line", room, role), set_line_state, room, role, state)
                except Exception:
                    logger.exception("%s/%s: updating line state failed", room, role)
        for dest in health.get("destinations", ()):
            previous = self.push_states.get((room, dest["id"]))
            self.push_states[(room, dest["id"])] = dest["state"]
            if dest["state"] == "failed" and previous != "failed":
                try:
                    await run_db(record_push_failed, room, dest)
                except Exception:
                    logger.exception("%s: recording a failed push failed", room)
        window = self.windows.setdefault(room, [])
        window.append(message)
        if len(window) >= getattr(settings, "MEDIA_HEALTH_SAMPLE_S", HEALTH_SAMPLE_EVERY_S):
            self.windows[room] = []
            try:
                await self._run_coalesced(("samples", room), downsample, room, window)
            except Exception:
                logger.exception("%s: writing health samples failed", room)

    async def snapshot(self, room, jpeg):
        try:
            await asyncio.to_thread(snapshots.store, room, jpeg)
        except Exception:
            logger.exception("%s: storing the program thumbnail failed", room)


# --- leases (process mode) --------------------------------------------------------------------

def claim_rooms(worker_id, lease_seconds, live_workers, max_rooms=None):
    """Renew this worker's leases and claim free/expired rooms up to a fair share; return owned slugs."""
    from streams.models import LiveRoom, MediaWorkerLease

    now = timezone.now()
    expires = now + timedelta(seconds=lease_seconds)
    MediaWorkerLease.objects.filter(worker_id=worker_id, expires_at__gt=now).update(expires_at=expires)
    owned = set(MediaWorkerLease.objects.filter(worker_id=worker_id, expires_at__gt=now)
                .values_list("room__slug", flat=True))
    rooms = list(LiveRoom.objects.exclude(status=LiveRoom.Status.ENDED).values_list("pk", "slug"))
    share = math.ceil(len(rooms) / max(1, live_workers))
    if max_rooms is not None:
        share = min(share, max_rooms)
    for room_id, slug in rooms:
        if len(owned) >= share:
            break
        if slug in owned:
            continue
        # a conditional update takes over an expired lease without a race
        taken = MediaWorkerLease.objects.filter(room_id=room_id, expires_at__lte=now).update(
            worker_id=worker_id, expires_at=expires)
        if not taken:
            try:
                with transaction.atomic():
                    MediaWorkerLease.objects.create(room_id=room_id, worker_id=worker_id, expires_at=expires)
                taken = 1
            except IntegrityError:
                taken = 0
        if taken:
            owned.add(slug)
    return owned


def release_rooms(worker_id):
    from streams.models import MediaWorkerLease

    MediaWorkerLease.objects.filter(worker_id=worker_id).delete()


def lease_owner(slug):
    from streams.models import MediaWorkerLease

    return (MediaWorkerLease.objects.filter(room__slug=slug, expires_at__gt=timezone.now())
            .values_list("worker_id", flat=True).first())
