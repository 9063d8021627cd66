import time
import uuid

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from streams import selectors
from streams.selectors import media_worker_status


def _check_database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"ok": True, "engine": connection.vendor}


def _check_channel_layer():
    layer = get_channel_layer()

    async def round_trip():
        channel = await layer.new_channel()  # default prefix: see streams/mediaworker/client.py
        nonce = uuid.uuid4().hex
        await layer.send(channel, {"type": "healthz", "nonce": nonce})
        message = await layer.receive(channel)
        return message.get("nonce") == nonce

    import asyncio

    async def bounded():
        return await asyncio.wait_for(round_trip(), timeout=2)

    ok = async_to_sync(bounded)()
    return {"ok": ok, "backend": type(layer).__name__}


def _check_broker():
    if settings.EMBEDDED:
        return {"ok": True, "mode": "in-process"}
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        return {"ok": bool(client.ping()), "mode": "redis"}
    finally:
        client.close()


@never_cache
@require_GET
def healthz(request):
    """Database, channel layer, broker and media-worker status; 503 if any is down."""
    report = {}
    for name, check in (
        ("database", _check_database),
        ("channel_layer", _check_channel_layer),
        ("broker", _check_broker),
        ("media_worker", media_worker_status),
    ):
        started = time.perf_counter()
        try:
            result = check()
        except Exception as exc:  # a health check reports failures, it does not raise them
            result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
        result["ms"] = round((time.perf_counter() - started) * 1000, 1)
        report[name] = result
    ok = all(part["ok"] for part in report.values())
    return JsonResponse({"ok": ok, "checks": report}, status=200 if ok else 503)


LOOPBACK = {"127.0.0.1", "::1"}


def metrics_allowed(request):
    """/metrics is not public: a bearer METRICS_TOKEN when one is set, otherwise loopback clients only."""
    import hmac

    token = settings.METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())
    return request.META.get("REMOTE_ADDR") in LOOPBACK


@never_cache
@require_GET
def metrics(request):
    """Prometheus text format: rooms expected/served, lease ages, worker lag, line health, alerts, actions."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, generate_latest

    if not metrics_allowed(request):
        return HttpResponse("forbidden\n", status=403, content_type="text/plain")
    registry = CollectorRegistry()

    def gauge(name, doc, labels=()):
        return Gauge(name, doc, labels, registry=registry)

    status = media_worker_status()
    up = gauge("controlroom_media_ok", "1 when every room that should be served is served (see /healthz)")
    up.set(1 if status.get("ok") else 0)
    if status.get("mode") == "process":
        now, expected, leases = selectors.room_service()
        gauge("controlroom_rooms_expected", "Rooms not ended, which a media worker should serve").set(len(expected))
        gauge("controlroom_rooms_served", "Rooms with a current lease of a worker whose heartbeat is alive").set(
            status["rooms"]["served"])
        lease_age = gauge("controlroom_room_lease_age_seconds", "Time since the room's lease was last renewed",
                          ("room", "worker"))
        for slug, (worker, expires_at) in leases.items():
            renewed_ago = settings.MEDIA_WORKER_LEASE_SECONDS - (expires_at - now).total_seconds()
            lease_age.labels(slug, worker).set(max(0.0, renewed_ago))
        beat_age = gauge("controlroom_mediaworker_heartbeat_age_seconds", "Age of the worker's heartbeat", ("worker",))
        lag = gauge("controlroom_mediaworker_loop_lag_seconds", "How late the worker's event loop woke", ("worker",))
        for worker_id, worker in status["lag"].items():
            if worker["heartbeat_age_s"] is not None:
                beat_age.labels(worker_id).set(worker["heartbeat_age_s"])
            if worker["loop_lag_ms"] is not None:
                lag.labels(worker_id).set(worker["loop_lag_ms"] / 1000)
    elif status.get("loop_lag_ms") is not None:
        gauge("controlroom_mediaworker_loop_lag_seconds", "How late the worker's event loop answered",
              ("worker",)).labels("embedded").set(status["loop_lag_ms"] / 1000)
    fps = gauge("controlroom_line_fps", "Frames per second of a line (newest 10 s sample)", ("room", "line", "state"))
    kbps = gauge("controlroom_line_bitrate_kbps", "Bitrate of a line (newest 10 s sample)", ("room", "line", "state"))
    for line in selectors.line_metrics():
        if line["fps"] is not None:
            fps.labels(line["room"], line["line"], line["state"]).set(line["fps"])
        if line["bitrate_kbps"] is not None:
            kbps.labels(line["room"], line["line"], line["state"]).set(line["bitrate_kbps"])
    open_alerts, actions = selectors.alert_and_action_counts()
    alerts = gauge("controlroom_alerts_open", "Open (unacknowledged) alerts", ("kind",))
    for kind, n in open_alerts.items():
        alerts.labels(kind).set(n)
    counter = Counter("controlroom_control_actions", "Audited control actions", ("outcome",), registry=registry)
    for outcome, n in actions.items():
        counter.labels(outcome).inc(n)
    retention_metrics(gauge)
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def retention_metrics(gauge):
    """What the data-lifecycle jobs did last (streams/retention.py): when, how long, and rows/partitions."""
    last_ok = gauge("controlroom_retention_last_ok", "1 if the job's last run succeeded, 0 if it failed or "
                    "is running (or died)", ("job",))
    finished = gauge("controlroom_retention_last_finished_timestamp_seconds", "When the job's last run ended",
                     ("job",))
    seconds = gauge("controlroom_retention_last_run_seconds", "How long the job's last run took", ("job",))
    done = gauge("controlroom_retention_last_run_items", "What the job's last run did, per table",
                 ("job", "table", "what"))
    for job in selectors.retention_jobs():
        last_ok.labels(job.name).set(1 if job.ok else 0)
        if job.finished_at:
            finished.labels(job.name).set(job.finished_at.timestamp())
        if job.seconds is not None:
            seconds.labels(job.name).set(job.seconds)
        for table, what, value in _report_items(job.report):
            done.labels(job.name, table, what).set(value)


def _report_items(report):
    for key, value in (report or {}).items():
        if isinstance(value, dict):
            for what, n in value.items():
                if isinstance(n, (int, float)) and not isinstance(n, bool):
                    yield key, what, n
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            yield "", key, value
