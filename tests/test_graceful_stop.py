"""SIGTERM stops each process within 5 s; the media worker releases its leases so another takes the rooms at
once. (bench/shutdown_bench.py measures the same with publishers and viewers in flight.)"""

import asyncio
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT, free_port, wait_for_port
from streams.models import MediaWorkerLease

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

LIMIT_S = 5.0


def sigterm_exit_time(proc, limit=20.0):
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(limit)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"{proc.args[:4]} ignored SIGTERM for {limit} s")
    return time.monotonic() - started


def start(args, env, name):
    (ROOT / "test-artifacts").mkdir(exist_ok=True)
    log = open(ROOT / "test-artifacts" / f"graceful-stop-{name}.log", "w")
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def test_media_worker_exits_within_5s_and_releases_its_leases(subprocess_env, room, settings):
    if settings.MEDIA_WORKER_EMBEDDED:
        pytest.skip("process mode")
    proc = start([sys.executable, "manage.py", "mediaworker", "--worker-id", "stop-test"], subprocess_env,
                 "mediaworker")
    try:
        deadline = time.monotonic() + 40
        while not MediaWorkerLease.objects.filter(room=room, worker_id="stop-test").exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the worker never took the room"
            time.sleep(0.2)
        time.sleep(1.0)  # the room's engine is running
        took = sigterm_exit_time(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert took <= LIMIT_S
    assert not MediaWorkerLease.objects.filter(room=room).exists()  # free for another worker now


@pytest.mark.parametrize("program", [["worker", "--concurrency=2"], ["beat"]], ids=["worker", "beat"])
def test_celery_exits_within_5s(subprocess_env, settings, tmp_path, program):
    if settings.EMBEDDED:
        pytest.skip("needs REDIS_URL")
    name = f"celery-{program[0]}"
    proc = start([sys.executable, "-m", "celery", "-A", "controlroom", *program, "--loglevel=INFO",
                  "--schedule", str(tmp_path / "beat-schedule")], subprocess_env, name)
    try:
        deadline = time.monotonic() + 60
        log = ROOT / "test-artifacts" / f"graceful-stop-{name}.log"
        ready = "ready" if program[0] == "worker" else "beat: Starting"
        while ready not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, f"{name} never became ready"
            time.sleep(0.2)
        took = sigterm_exit_time(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert took <= LIMIT_S


def test_daphne_with_open_sockets_exits_within_5s(subprocess_env, room):
    import websockets

    port = free_port()
    proc = start([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                  "controlroom.asgi:application"], subprocess_env, "daphne")
    try:
        wait_for_port(port, proc=proc)

        async def hold_sockets():
            sockets = [await websockets.connect(f"ws://127.0.0.1:{port}/ws/live/{room.slug}/",
                                                origin=f"http://127.0.0.1:{port}") for _ in range(10)]
            await asyncio.sleep(1.0)
            took = await asyncio.to_thread(sigterm_exit_time, proc)
            for ws in sockets:
                await ws.close()
            return took

        took = asyncio.run(hold_sockets())
    finally:
        if proc.poll() is None:
            proc.kill()
    assert took <= LIMIT_S


def test_daphne_exits_within_5s_with_a_request_waiting_for_the_media_worker(subprocess_env, room, settings):
    """A WHEP request waits for a worker that holds the lease but does not answer: its thread waits on
    Daphne's loop, which stops on SIGTERM. Without the exit guard this process never ended (killed at 30 s)."""
    if settings.MEDIA_WORKER_EMBEDDED:
        pytest.skip("process mode")
    import threading
    import urllib.request
    from datetime import timedelta

    from django.utils import timezone

    from streams.media import ice
    from streams.tests.media_support import offer_for

    MediaWorkerLease.objects.create(room=room, worker_id="silent-worker", expires_at=timezone.now() + timedelta(minutes=5))

    async def make_offer():
        from streams.mediaworker import ice as ice_settings
        ice_settings.configure_from_settings()
        pc = ice.new_peer_connection()
        pc.addTransceiver("video", direction="recvonly")
        sdp = await offer_for(pc)
        await pc.close()
        return sdp

    sdp = asyncio.run(make_offer())
    port = free_port()
    proc = start([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                  "controlroom.asgi:application"], subprocess_env, "daphne-inflight")
    try:
        wait_for_port(port, proc=proc)
        request = urllib.request.Request(f"http://127.0.0.1:{port}/whep/{room.slug}", data=sdp.encode(),
                                         method="POST", headers={"Content-Type": "application/sdp"})

        def post():
            try:
                urllib.request.urlopen(request, timeout=20).close()
            except Exception:  # noqa: BLE001 - the server goes away under it: expected
                pass

        client = threading.Thread(target=post, daemon=True)
        client.start()
        time.sleep(2.0)  # the request now waits for the silent worker's reply
        assert client.is_alive()
        took = sigterm_exit_time(proc, limit=30.0)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert took <= LIMIT_S
