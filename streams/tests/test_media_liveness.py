"""Liveness never waits behind business work: leases are renewed on their own thread and connection while
the business database thread is stuck for longer than a lease; repeated business jobs are coalesced."""

import asyncio
import threading
import time

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from streams.mediaworker import bridge
from streams.mediaworker.worker import MediaWorker
from streams.models import MediaWorkerLease

pytestmark = pytest.mark.django_db(transaction=True)


def lease_row(room):
    return MediaWorkerLease.objects.filter(room=room).values("worker_id", "expires_at").first()


async def test_leases_are_renewed_while_the_business_thread_is_blocked_longer_than_a_lease(room, settings):
    if settings.MEDIA_WORKER_EMBEDDED:
        pytest.skip("process mode (REDIS_URL) runs the lease loop")
    worker = MediaWorker(worker_id="liveness-test", lease_seconds=2)
    stop = asyncio.Event()
    running = asyncio.ensure_future(worker.run(stop))
    release = threading.Event()
    try:
        for _ in range(100):
            if await sync_to_async(lease_row)(room):
                break
            await asyncio.sleep(0.1)
        assert await sync_to_async(lease_row)(room), "the worker never took the room"

        # A slow business job (e.g. a storm of alert writes) holds the business thread for 3 leases.
        blocked = asyncio.ensure_future(bridge.run_db(release.wait, 10))
        lapses, expiries = 0, []
        started = time.monotonic()
        while time.monotonic() - started < 6.0:
            row = await sync_to_async(lease_row)(room)
            if row is None or row["worker_id"] != "liveness-test" or row["expires_at"] <= timezone.now():
                lapses += 1
            else:
                expiries.append(row["expires_at"])
            await asyncio.sleep(0.25)
        assert not blocked.done(), "the business thread was not blocked during the check"
        assert lapses == 0
        assert max(expiries) - min(expiries) >= timezone.timedelta(seconds=3), "the lease was not renewed"
        assert worker.lease_renewed_at is not None and time.time() - worker.lease_renewed_at < 2.0
    finally:
        release.set()
        stop.set()
        await asyncio.wait_for(running, 10)
    assert await sync_to_async(lease_row)(room) is None  # released on stop


async def test_line_states_and_holds_waiting_for_a_busy_thread_are_coalesced(room):
    hooks = bridge.DjangoHooks()
    release = threading.Event()
    blocked = asyncio.ensure_future(bridge.run_db(release.wait, 10))
    calls = []

    def record(*args):
        calls.append(args)

    first = asyncio.ensure_future(hooks._run_coalesced(("line", "r", "primary"), record, "connected"))
    await asyncio.sleep(0.05)
    for state in ("idle", "connected", "idle"):  # superseded while the first waits: the newest wins
        await hooks._run_coalesced(("line", "r", "primary"), record, state)
    assert hooks.shed == 3
    release.set()
    await asyncio.wait_for(asyncio.gather(blocked, first), 10)
    assert calls == [("idle",)]

    # after it ran, the next call queues a new job
    await hooks._run_coalesced(("line", "r", "primary"), record, "connected")
    assert calls == [("idle",), ("connected",)]
    await bridge.close_db()
