"""Reads for the streams app."""

from django.conf import settings

# The media worker process refreshes this key (with a TTL) while it runs (Redis mode).
MEDIA_WORKER_HEARTBEAT_PREFIX = "controlroom:mediaworker:heartbeat:"


def worker_heartbeats():
    """{worker_id: heartbeat payload (rooms, at, loop_lag_ms, lease_renewed_at, ...)} from Redis."""
    import json

    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        keys = list(client.scan_iter(MEDIA_WORKER_HEARTBEAT_PREFIX + "*"))
        values = client.mget(keys) if keys else []
    finally:
        client.close()
    beats = {}
    for key, value in zip(keys, values):
        try:
            payload = json.loads(value) if value else {}
        except ValueError:
            payload = {}
        beats[key.decode().rsplit(":", 1)[-1]] = payload
    return beats


def room_service():
    """Rooms that should be served (not ended) and the live leases on them (renewed within a lease)."""
    from django.utils import timezone

    from .models import LiveRoom, MediaWorkerLease

    now = timezone.now()
    expected = set(LiveRoom.objects.exclude(status=LiveRoom.Status.ENDED).values_list("slug", flat=True))
    leases = {slug: (worker, expires_at) for slug, worker, expires_at in MediaWorkerLease.objects
              .filter(expires_at__gt=now).values_list("room__slug", "worker_id", "expires_at")}
    return now, expected, leases


def media_worker_status():
    """Does every room that should be on air have a worker whose lease is current and whose heartbeat is
    alive? Process mode: leases + heartbeats; embedded: the in-process engine's loop answers in time."""
    if settings.MEDIA_WORKER_EMBEDDED:
        return embedded_media_status()
    import time

    beats = worker_heartbeats()
    now, expected, leases = room_service()
    served = {slug for slug, (worker, _exp) in leases.items() if worker in beats}
    unserved = sorted(expected - served)
    wall_now = time.time()
    lease_s = settings.MEDIA_WORKER_LEASE_SECONDS
    lag = {}
    for worker_id, beat in sorted(beats.items()):
        renewed = beat.get("lease_renewed_at")
        lag[worker_id] = {
            "heartbeat_age_s": round(wall_now - beat["at"], 2) if beat.get("at") else None,
            "loop_lag_ms": beat.get("loop_lag_ms"),
            "lease_renewed_age_s": round(wall_now - renewed, 2) if renewed else None,
            "rooms": len([1 for _slug, (w, _e) in leases.items() if w == worker_id]),
        }
    oldest_renewal = max(((lease_s - (exp - now).total_seconds()) for _w, exp in leases.values()), default=None)
    return {
        "ok": bool(beats) and not unserved, "mode": "process", "workers": sorted(beats), "lag": lag,
        "rooms": {"expected": len(expected), "served": len(served & expected), "unserved": unserved[:50]},
        "oldest_lease_age_s": round(oldest_renewal, 2) if oldest_renewal is not None else None,
    }


def embedded_media_status(timeout=2.0):
    """The in-process engine: idle until the first WHIP/WHEP request; once running, its loop must answer."""
    import asyncio
    import time

    from .mediaworker.client import running_local_engine

    engine = running_local_engine()
    if engine is None:
        return {"ok": True, "mode": "embedded", "engine": "idle"}

    async def ping():
        return time.perf_counter()

    asked = time.perf_counter()
    future = asyncio.run_coroutine_threadsafe(ping(), engine.loop)
    try:
        answered = future.result(timeout)
    except Exception:
        future.cancel()
        return {"ok": False, "mode": "embedded", "engine": "running", "error": f"loop did not answer in {timeout} s",
                "rooms": sorted(engine.rooms)}
    return {"ok": True, "mode": "embedded", "engine": "running", "rooms": sorted(engine.rooms),
            "loop_lag_ms": round((answered - asked) * 1000, 1)}


def line_metrics(max_age_s=60):
    """Newest health sample per room and line (within max_age_s) with the line's state, for /metrics."""
    from datetime import timedelta

    from django.utils import timezone

    from .models import HealthSample, IngestLine

    since = timezone.now() - timedelta(seconds=max_age_s)
    states = {(slug, role): state for slug, role, state in
              IngestLine.objects.values_list("room__slug", "role", "state")}
    newest = {}
    for slug, role, fps, kbps in (HealthSample.objects.filter(at__gte=since).order_by("at")
                                  .values_list("room__slug", "line_role", "fps", "bitrate_kbps")):
        newest[(slug, role)] = (fps, kbps)
    for key in states:
        newest.setdefault(key, (None, None))
    return [{"room": slug, "line": role, "state": states.get((slug, role), "program" if role == "program" else ""),
             "fps": fps, "bitrate_kbps": kbps} for (slug, role), (fps, kbps) in sorted(newest.items())]


def alert_and_action_counts():
    from django.db.models import Count

    from .models import Alert, ControlAction

    open_alerts = dict(Alert.objects.filter(acknowledged_at__isnull=True).values_list("kind")
                       .annotate(n=Count("id")).values_list("kind", "n"))
    actions = dict(ControlAction.objects.values_list("outcome").annotate(n=Count("id")).values_list("outcome", "n"))
    return open_alerts, actions


def viewers_present(room, start, end):
    """Viewer ids present in `room` at any moment of [start, end], from ViewerSession intervals.

    An interval still open (left_at NULL) ends at last_seen_at — the batched heartbeat — so a crashed
    web process never makes a viewer look present forever.
    """
    from django.db.models.functions import Coalesce

    from .models import ViewerSession

    # coalesce(left_at, last_seen_at) >= start, the expression of the index on (room, ended, joined_at).
    return (ViewerSession.objects.annotate(ended=Coalesce("left_at", "last_seen_at"))
            .filter(room=room, ended__gte=start, joined_at__lte=end)
            .values_list("viewer_id", flat=True).distinct())


def line_samples_since(room, line_role, since, until=None):
    """A line's health samples in [since, until (now)], oldest first (a line's graph): from (room, line_role, at).
    The upper bound lets PostgreSQL skip the partitions made ahead when it plans the query."""
    from django.utils import timezone

    from .models import HealthSample

    return (HealthSample.objects.filter(room=room, line_role=line_role, at__gte=since, at__lte=until or timezone.now())
            .order_by("at"))


def newest_sample(room, line_role, now=None):
    """The newest health sample of a line, or None.

    Looked for in the last day first: bounded in time, PostgreSQL reads one or two daily partitions; unbounded
    it must probe every partition's index (a default partition rules out reading them in order), ≈ 20 ms at
    40 partitions. Only a line silent for a day costs the unbounded look."""
    from datetime import timedelta

    from django.utils import timezone

    from .models import HealthSample

    now = now or timezone.now()
    samples = HealthSample.objects.filter(room=room, line_role=line_role).order_by("-at")
    return (samples.filter(at__gte=now - timedelta(days=1), at__lte=now + timedelta(minutes=1)).first()
            or samples.first())


def chat_count_since(room, since):
    """Chat messages of a room since `since` (the chat rate): from (room, created_at)."""
    from .models import ChatMessage

    return ChatMessage.objects.filter(room=room, created_at__gte=since).count()


def recent_alerts(limit=30, room=None):
    """The wall's alert feed (a room page's: that room's alerts): newest first."""
    from .models import Alert

    alerts = Alert.objects.select_related("room", "acknowledged_by")
    if room is not None:
        alerts = alerts.filter(room__slug=getattr(room, "slug", room))
    return alerts.order_by("-raised_at")[:limit]


SEVERITY_ORDER = ("critical", "warning", "info")


def active_snoozes(now=None):
    """{room_id: AlertSnooze} of the snoozes in force now."""
    from django.utils import timezone

    from .models import AlertSnooze

    now = now or timezone.now()
    return {s.room_id: s for s in AlertSnooze.objects.select_related("room", "live_session", "snoozed_by")
            if s.is_active(now)}


def room_is_snoozed(room_id):
    from .models import AlertSnooze

    snooze = AlertSnooze.objects.select_related("live_session").filter(room_id=room_id).first()
    return bool(snooze and snooze.is_active())


def alert_triage():
    """The alert sidebar: open alerts grouped by room (one entry per kind, with its repeat count), counts by
    severity and by kind, and each room's snooze. Rooms in name order, so the list does not jump around;
    two queries whatever the number of alerts."""
    from collections import Counter

    from .models import Alert, AlertSnooze

    snoozes = active_snoozes()
    alerts = list(Alert.objects.filter(acknowledged_at__isnull=True).select_related("room")
                  .order_by("room__name", "room_id", "-last_seen_at", "-id"))
    groups = {}
    for alert in alerts:
        group = groups.setdefault(alert.room_id, {"room": alert.room, "alerts": [], "occurrences": 0,
                                                  "severity": "info", "snooze": snoozes.get(alert.room_id)})
        group["alerts"].append(alert)
        group["occurrences"] += alert.count
        if SEVERITY_ORDER.index(alert.severity) < SEVERITY_ORDER.index(group["severity"]):
            group["severity"] = alert.severity
    snoozed_quiet = [s for room_id, s in snoozes.items() if room_id not in groups]  # snoozed, nothing open
    by_severity = Counter(a.severity for a in alerts)
    kinds = Counter(a.get_kind_display() for a in alerts)
    return {
        "groups": list(groups.values()),
        "snoozed_quiet": sorted(snoozed_quiet, key=lambda s: s.room.name) if snoozed_quiet else [],
        "total": len(alerts),
        "severity_counts": [(sev, Alert.Severity(sev).label, by_severity.get(sev, 0)) for sev in SEVERITY_ORDER],
        "kind_counts": sorted(kinds.items(), key=lambda kv: (-kv[1], str(kv[0]))),
        "rooms": len(groups),
        "snooze_choices": [(key, label) for key, (_minutes, label) in AlertSnooze.DURATIONS.items()],
    }


HISTORY_METRICS = ("fps", "bitrate_kbps", "jitter_ms", "loss_pct")


def line_history(room, minutes=15, now=None):
    """Each line's health history over the last `minutes` from HealthSample (one row per line per 10 s):
    {"primary": [(at, fps, bitrate_kbps, jitter_ms, loss_pct), ...], "backup": [...]}, oldest first.
    One query on (room, at), the columns the graphs need only."""
    from datetime import timedelta

    from django.utils import timezone

    from .models import HealthSample

    now = now or timezone.now()
    rows = (HealthSample.objects.filter(room=room, at__gte=now - timedelta(minutes=minutes)).order_by("at")
            .values_list("line_role", "at", *HISTORY_METRICS))
    history = {"primary": [], "backup": []}
    for role, *values in rows:
        if role in history:
            history[role].append(tuple(values))
    return history
def retention_jobs():
    """The data-lifecycle jobs' last runs (streams/retention.py), for /metrics."""
    from .models import RetentionJob

    return list(RetentionJob.objects.order_by("name"))
