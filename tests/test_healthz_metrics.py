"""/healthz tells the truth about rooms (expected vs served by a current lease of a live worker), and /metrics
exposes the same in Prometheus text format to loopback or a bearer token only."""

import asyncio

import pytest
from asgiref.sync import sync_to_async

from streams.mediaworker.worker import MediaWorker
from streams.models import Alert, HealthSample, MediaWorkerLease

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def process_mode(settings):
    if settings.MEDIA_WORKER_EMBEDDED:
        pytest.skip("process mode (REDIS_URL)")


async def wait_for(predicate, seconds=10.0):
    for _ in range(int(seconds / 0.1)):
        if await sync_to_async(predicate)():
            return True
        await asyncio.sleep(0.1)
    return False


async def test_healthz_is_503_while_a_room_is_unserved_even_with_a_live_heartbeat(client, room, process_mode):
    # A worker that is alive (heartbeat) but holds no lease: exactly what the old check called "ok".
    idle = MediaWorker(worker_id="healthz-idle", max_rooms=0, lease_seconds=2)
    stop_idle = asyncio.Event()
    running_idle = asyncio.ensure_future(idle.run(stop_idle))
    try:
        await asyncio.sleep(1.0)
        response = await sync_to_async(client.get)("/healthz")
        media = response.json()["checks"]["media_worker"]
        assert response.status_code == 503
        assert "healthz-idle" in media["workers"]
        assert media["rooms"] == {"expected": 1, "served": 0, "unserved": ["test-room"]}

        serving = MediaWorker(worker_id="healthz-serving", lease_seconds=2)
        stop = asyncio.Event()
        running = asyncio.ensure_future(serving.run(stop))
        try:
            assert await wait_for(lambda: MediaWorkerLease.objects.filter(worker_id="healthz-serving").exists())
            response = await sync_to_async(client.get)("/healthz")
            media = response.json()["checks"]["media_worker"]
            assert response.status_code == 200, media
            assert media["rooms"] == {"expected": 1, "served": 1, "unserved": []}
            worker = media["lag"]["healthz-serving"]
            assert worker["rooms"] == 1 and worker["heartbeat_age_s"] < 3 and worker["loop_lag_ms"] is not None
        finally:
            stop.set()
            await asyncio.wait_for(running, 10)
        # stopped: lease released, the room is unserved again at once (not after the lease expires)
        response = await sync_to_async(client.get)("/healthz")
        assert response.status_code == 503
        assert response.json()["checks"]["media_worker"]["rooms"]["unserved"] == ["test-room"]
    finally:
        stop_idle.set()
        await asyncio.wait_for(running_idle, 10)


def test_metrics_are_prometheus_text_for_loopback_only_without_a_token(client, room, settings):
    from django.utils import timezone

    settings.METRICS_TOKEN = ""
    HealthSample.objects.create(room=room, line_role="primary", at=timezone.now(), connected=True, fps=29.5,
                                bitrate_kbps=1200)
    from streams.services import raise_alert

    raise_alert(room=room, kind=Alert.Kind.LINE_DOWN, message="x")
    raise_alert(room=room, kind=Alert.Kind.LINE_DOWN, message="x")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert 'controlroom_line_fps{line="primary",room="test-room",state="idle"} 29.5' in text
    assert 'controlroom_line_bitrate_kbps{line="primary",room="test-room",state="idle"} 1200.0' in text
    assert 'controlroom_alerts_open{kind="line_down"} 1.0' in text
    assert "controlroom_media_ok" in text
    if not settings.MEDIA_WORKER_EMBEDDED:
        assert "controlroom_rooms_expected 1.0" in text and "controlroom_rooms_served 0.0" in text

    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 403


def test_metrics_with_a_token_need_the_bearer_header(client, room, settings):
    settings.METRICS_TOKEN = "s3cret-scrape-token"
    assert client.get("/metrics").status_code == 403  # loopback is not enough once a token is set
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    ok = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-scrape-token", REMOTE_ADDR="203.0.113.9")
    assert ok.status_code == 200 and b"controlroom_alerts_open" in ok.content
