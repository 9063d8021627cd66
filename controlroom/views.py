import time
import uuid

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

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
