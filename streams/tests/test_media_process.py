"""With Redis, `manage.py mediaworker` runs as its own process: the web process forwards WHIP/WHEP and
commands over the channel layer; rooms are leased, and a dead worker's rooms move to a live one."""

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest
import redis
from asgiref.sync import sync_to_async
from django.conf import settings

from conftest import ROOT
from streams import services
from streams.models import IngestLine, LiveRoom, MediaWorkerLease
from streams.selectors import media_worker_status

from .media_support import Http, Publisher, Viewer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def start_worker(env, worker_id, *extra):
    env = {**env, "MEDIA_OUTPUT_WIDTH": "160", "MEDIA_OUTPUT_HEIGHT": "120", "MEDIA_OUTPUT_BITRATE": "300000",
           "MEDIA_WORKER_LEASE_SECONDS": "3", "LOG_LEVEL": "WARNING"}
    os.makedirs(ROOT / "test-artifacts", exist_ok=True)
    log = open(ROOT / "test-artifacts" / f"mediaworker-{worker_id}.log", "w")
    return subprocess.Popen([sys.executable, "manage.py", "mediaworker", "--worker-id", worker_id, *extra],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def stop(proc, sig=signal.SIGTERM):
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def wait_lease(slug, worker_id=None, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        owner = await sync_to_async(
            lambda: MediaWorkerLease.objects.filter(room__slug=slug).values_list("worker_id", flat=True).first())()
        if owner and (worker_id is None or owner == worker_id):
            return owner
        await asyncio.sleep(0.2)
    raise AssertionError(f"no lease for {slug} (wanted {worker_id})")


@pytest.fixture
def clean_heartbeats():
    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter("controlroom:mediaworker:heartbeat:test-*"):
        client.delete(key)
    yield
    client.close()


async def test_mediaworker_process_serves_a_room_end_to_end(room, operator, subprocess_env, clean_heartbeats):
    assert not settings.MEDIA_WORKER_EMBEDDED
    worker = start_worker(subprocess_env, "test-w1")
    http = Http()
    try:
        await wait_lease(room.slug, "test-w1")
        assert "test-w1" in (await sync_to_async(media_worker_status)())["workers"]
        primary = await Publisher(http, room.slug, "primary", room.tokens["primary"], "red").start()
        backup = await Publisher(http, room.slug, "backup", room.tokens["backup"], "green").start()
        viewer = await Viewer(http, room.slug).start()
        await viewer.wait_for("red", timeout=15)
        started = time.monotonic()
        action = await sync_to_async(services.switch_source)(room=room, source="backup", actor=operator)
        await viewer.wait_for("green", since=started, timeout=5)
        assert action.outcome == "ok" and action.latency_ms is not None
        # the worker writes line states in the background: wait for it rather than race it
        deadline = time.monotonic() + 10
        while (state := (await sync_to_async(IngestLine.objects.get)(room=room, role="primary")).state) not in (
                "connecting", "connected") and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert state in ("connecting", "connected")
        # a fault on the backup line fails over automatically inside the worker process
        started = time.monotonic()
        backup.set_fault("stall")
        await viewer.wait_for("red", since=started, timeout=5)
        for peer in (viewer, primary, backup):
            await peer.close()
    finally:
        stop(worker)


async def test_second_worker_takes_other_rooms_and_a_dead_workers_rooms(room, subprocess_env, clean_heartbeats):
    other = await sync_to_async(LiveRoom.objects.create)(name="第二间", slug="second-room", merchant="m",
                                                          status=LiveRoom.Status.LIVE)
    first = start_worker(subprocess_env, "test-a", "--max-rooms", "1")
    try:
        await wait_lease(room.slug)  # the first worker holds one room (--max-rooms 1)
        second = start_worker(subprocess_env, "test-b")
        try:
            owners = {await wait_lease(room.slug), await wait_lease(other.slug)}
            deadline = time.monotonic() + 15
            while owners != {"test-a", "test-b"} and time.monotonic() < deadline:
                await asyncio.sleep(0.3)
                owners = {await _owner(room.slug), await _owner(other.slug)}
            assert owners == {"test-a", "test-b"}
            room_of_a = room.slug if await _owner(room.slug) == "test-a" else other.slug
            stop(first, signal.SIGKILL)  # dies without releasing its lease
            await wait_lease(room_of_a, "test-b", timeout=20)
            http = Http()
            viewer = await Viewer(http, room_of_a).start()  # served by the surviving worker
            await viewer.wait_for("other", timeout=10)  # slate filler: no publisher yet
            await viewer.close()
        finally:
            stop(second)
    finally:
        stop(first)


async def _owner(slug):
    return await sync_to_async(
        lambda: MediaWorkerLease.objects.filter(room__slug=slug).values_list("worker_id", flat=True).first())()
