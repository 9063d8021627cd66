"""A loaded host is normal: with both cores busy, healthy publishers are not failed over (the worker knows
its own lateness from a dead line), and a line that really stops is still switched in bounded time."""

import asyncio
import shutil
import subprocess
import time

import pytest
from asgiref.sync import sync_to_async

from streams.models import Alert, ControlAction
from streams.mediaworker import client
from streams.mediaworker.bridge import record_worker_overloaded

from .media_fixtures import media, stop_media  # noqa: F401
from .media_support import Http, Publisher, Viewer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

QUIET_S = 25  # healthy publishers under load, no switch expected
STALL_S, STALL_EVERY_S = 0.45, 2.0  # the worker's own loop stalls like the 300-570 ms gaps seen on busy hosts
DEAD_LINE_BOUND_S = 6.0  # input_loss_ms + the bounded overload hold + the loaded host's own delays


@pytest.fixture
def cpu_hog():
    """Both cores saturated from outside the process, like a busy host (stress-ng, bounded by --timeout)."""
    if shutil.which("stress-ng") is None:
        pytest.skip("stress-ng is not installed")
    hog = subprocess.Popen(["stress-ng", "--cpu", "2", "--timeout", "90s", "--quiet"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    yield hog
    hog.terminate()
    try:
        hog.wait(10)
    except subprocess.TimeoutExpired:
        hog.kill()
        hog.wait(5)


async def stall_the_loop_now_and_then(stop):
    """Block this process's event loop (the worker's, embedded) for STALL_S every STALL_EVERY_S: what a
    starved process looks like from inside, on top of the outside hog."""
    while not stop.is_set():
        await asyncio.sleep(STALL_EVERY_S)
        until = time.monotonic() + STALL_S
        while time.monotonic() < until:
            pass


async def switches(room):
    return await sync_to_async(list)(
        ControlAction.objects.filter(room=room, action="switch_source").order_by("created_at")
        .values_list("target", "reason", "detail"))


async def test_healthy_lines_on_a_saturated_host_are_not_failed_over_and_a_dead_one_still_is(media, room, cpu_hog):
    # the product's defaults (input_loss_ms 300): the point is that they survive a busy host
    http = Http()
    primary = await Publisher(http, room.slug, "primary", room.tokens["primary"], "red").start()
    backup = await Publisher(http, room.slug, "backup", room.tokens["backup"], "green").start()
    viewer = await Viewer(http, room.slug).start()
    stop, staller = asyncio.Event(), None
    try:
        await viewer.wait_for("red", timeout=20)
        engine = client._local["engine"]
        worst_lag = 0.0
        staller = asyncio.ensure_future(stall_the_loop_now_and_then(stop))
        deadline = time.monotonic() + QUIET_S
        while time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            worst_lag = max(worst_lag, engine.monitor.max_lag(time.monotonic(), 1.0))
        assert await switches(room) == [], f"switched on a healthy line (worst loop lag {worst_lag * 1000:.0f} ms)"
        assert engine.rooms[room.slug].source == "primary"

        overloaded = engine.rooms[room.slug].policy.overloaded or await sync_to_async(
            Alert.objects.filter(room=room, kind=Alert.Kind.WORKER_OVERLOADED).exists)()
        assert overloaded, "the worker's own stalls were never recognised as overload"
        stalled = time.monotonic()
        primary.set_fault("stall")  # the publisher stops sending, as if killed without a goodbye
        seen = await viewer.wait_for("green", since=stalled, timeout=DEAD_LINE_BOUND_S + 4)
        rows = await switches(room)
        for _ in range(60):  # the audit row is written after the switch, on the DB thread
            if rows:
                break
            await asyncio.sleep(0.1)
            rows = await switches(room)
        assert [(t, r) for t, r, _ in rows] == [("backup", "auto:input_loss")]
        assert seen - stalled < DEAD_LINE_BOUND_S, f"a dead primary took {seen - stalled:.1f} s to be replaced"
        print(f"\nworst loop lag while healthy: {worst_lag * 1000:.0f} ms; dead primary replaced at the viewer "
              f"after {(seen - stalled) * 1000:.0f} ms; switch detail {rows[0][2]}")
    finally:
        stop.set()
        if staller is not None:
            await staller
        for peer in (viewer, primary, backup):
            await peer.close()
        await stop_media()


def test_an_overload_episode_becomes_one_warning_alert(room):
    record_worker_overloaded(room.slug, "input_loss", {"phase": "started", "line": "primary", "lag_ms": 420,
                                                       "backlog": 3})
    alert = Alert.objects.get(room=room)
    assert alert.kind == Alert.Kind.WORKER_OVERLOADED and alert.severity == Alert.Severity.WARNING
    assert alert.line_role == "primary" and "420" in str(alert.text)
