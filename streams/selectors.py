"""Reads for the streams app."""

from django.conf import settings

# The media worker process refreshes this key (with a TTL) while it runs (Redis mode).
MEDIA_WORKER_HEARTBEAT_PREFIX = "controlroom:mediaworker:heartbeat:"


def media_worker_status():
    if settings.MEDIA_WORKER_EMBEDDED:
        return {"ok": True, "mode": "embedded"}
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        workers = [k.decode().rsplit(":", 1)[-1] for k in client.scan_iter(MEDIA_WORKER_HEARTBEAT_PREFIX + "*")]
    finally:
        client.close()
    return {"ok": bool(workers), "mode": "process", "workers": sorted(workers)}


def viewers_present(room, start, end):
    """Viewer ids present in `room` at any moment of [start, end], from ViewerSession intervals.

    An interval still open (left_at NULL) ends at last_seen_at — the batched heartbeat — so a crashed
    web process never makes a viewer look present forever.
    """
    from django.db.models import Q

    from .models import ViewerSession

    return (ViewerSession.objects.filter(room=room, joined_at__lte=end)
            .filter(Q(left_at__gte=start) | Q(left_at__isnull=True, last_seen_at__gte=start))
            .values_list("viewer_id", flat=True).distinct())


def recent_alerts(limit=30, room=None):
    """The wall's alert feed (a room page's: that room's alerts): newest first."""
    from .models import Alert

    alerts = Alert.objects.select_related("room", "acknowledged_by")
    if room is not None:
        alerts = alerts.filter(room__slug=getattr(room, "slug", room))
    return alerts.order_by("-raised_at")[:limit]
