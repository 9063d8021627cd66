"""Automatic failover: when a line stalls, goes black or silent, viewers see the backup or the slate."""

import asyncio
import time

import pytest
from asgiref.sync import sync_to_async

from streams.models import Alert, ControlAction, LiveRoom

from streams.mediaworker import client

from .media_fixtures import media, stop_media  # noqa: F401
from .media_support import Http, Publisher, Viewer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def configure(room, **fields):
    for key, value in fields.items():
        setattr(room, key, value)
    room.save()
    return room


async def reconfigure(room, **fields):
    """Change the room's failover settings while it is on air (the worker reloads them)."""
    await sync_to_async(configure)(room, **fields)
    await client.call("reload", room.slug)


@pytest.fixture
async def on_air(media, room):
    """Red primary on air, green backup on standby, one viewer; fast failover thresholds."""
    # input_loss_ms 500 rather than 300: the shared 2-core test machine can starve a line for 300 ms
    await sync_to_async(configure)(room, input_loss_ms=500, black_ms=400, silence_ms=400, frozen_ms=600,
                                   revert_after_s=1, max_auto_switches=2, auto_switch_window_s=60)
    http = Http()
    primary = await Publisher(http, room.slug, "primary", room.tokens["primary"], "red").start()
    backup = await Publisher(http, room.slug, "backup", room.tokens["backup"], "green").start()
    viewer = await Viewer(http, room.slug).start()
    await viewer.wait_for("red", timeout=10)
    await asyncio.sleep(0.3)  # both lines decoded and healthy
    yield room, primary, backup, viewer
    for peer in (viewer, primary, backup):
        await peer.close()
    await stop_media()


async def auto_switches(room):
    return await sync_to_async(list)(
        ControlAction.objects.filter(room=room, action="switch_source").order_by("created_at")
        .values_list("target", "reason", "actor_label"))


# Waits are generous: a loaded host delays everything (the worker's own timing is asserted separately,
# e.g. input_gap_ms); a wait only bounds how long a broken build takes to fail.
async def wait_rows(query, count=1, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = await sync_to_async(lambda: list(query.all()))()
        if len(rows) >= count:
            return rows
        await asyncio.sleep(0.05)
    raise AssertionError(f"expected {count} rows of {query.model.__name__}, got {len(rows)}")


@pytest.mark.parametrize("fault,trigger", [("stall", "input_loss"), ("black", "black"), ("silence", "silence"),
                                           ("frozen", "frozen")])
async def test_primary_fault_fails_over_to_backup(on_air, fault, trigger):
    room, primary, backup, viewer = on_air
    started = time.monotonic()
    primary.set_fault(fault)
    seen_at = await viewer.wait_for("green", since=started, timeout=10)
    rows = await wait_rows(ControlAction.objects.filter(room=room, action="switch_source"))
    action = rows[0]
    assert (action.target, action.reason, action.actor_label) == ("backup", f"auto:{trigger}", "auto")
    assert action.detail["from"] == "primary" and action.detail["first_frame_at"]
    alert = (await wait_rows(Alert.objects.filter(room=room, kind=Alert.Kind.AUTO_FAILOVER)))[0]
    assert alert.detail["trigger"] == trigger and alert.detail["action_id"] == action.pk
    assert (await sync_to_async(LiveRoom.objects.get)(pk=room.pk)).program_source == "backup"
    if fault == "stall":
        # Not too early: the worker switched only after input_loss_ms (500) without a picture.
        assert 500 <= action.detail["input_gap_ms"] < 500 + 400
        # Not too late: the freeze the viewer sees (last moving red frame → first green frame) stays
        # within input_loss_ms + margin. No lower bound here: under CPU load the last red frames can reach
        # the viewer late and bunched, which makes the freeze it sees look shorter than it was.
        last_moving_red = viewer.last_fresh_before("red", seen_at)
        assert seen_at - last_moving_red < 0.5 + 0.4


async def test_primary_preferred_reverts_after_primary_is_healthy_again(on_air):
    room, primary, backup, viewer = on_air
    primary.set_fault("stall")
    await viewer.wait_for("green", timeout=10)
    recovered = time.monotonic()
    primary.set_fault(None)
    seen = await viewer.wait_for("red", since=recovered, timeout=6)
    assert seen - recovered >= 0.9  # held on backup for revert_after_s (1 s)
    await wait_rows(ControlAction.objects.filter(room=room, action="switch_source"), count=2)
    assert [r[:2] for r in await auto_switches(room)] == [("backup", "auto:input_loss"), ("primary", "auto:revert")]


async def test_sticky_stays_on_backup(on_air):
    room, primary, backup, viewer = on_air
    await reconfigure(room, revert_mode="sticky")
    primary.set_fault("stall")
    await viewer.wait_for("green", timeout=10)
    primary.set_fault(None)
    await asyncio.sleep(2.0)
    assert viewer.colour == "green"
    assert [r[:2] for r in await auto_switches(room)] == [("backup", "auto:input_loss")]


async def test_both_lines_down_goes_to_slate_and_comes_back(on_air):
    room, primary, backup, viewer = on_air
    primary.set_fault("stall")
    await viewer.wait_for("green", timeout=10)
    started = time.monotonic()
    backup.set_fault("stall")
    await viewer.wait_for("other", since=started, timeout=10)  # the slate
    rows = await wait_rows(ControlAction.objects.filter(room=room, action="switch_source"), count=2)
    assert [(r.target, r.reason) for r in sorted(rows, key=lambda r: r.pk)] == [
        ("backup", "auto:input_loss"), ("slate", "auto:input_loss")]
    room_row = await sync_to_async(LiveRoom.objects.get)(pk=room.pk)
    assert room_row.program_source == "slate" and room_row.source_before_slate == "backup"


async def test_anti_flap_holds_and_alerts(on_air):
    room, primary, backup, viewer = on_air
    await reconfigure(room, max_auto_switches=1)
    primary.set_fault("stall")
    await viewer.wait_for("green", timeout=10)
    backup.set_fault("black")
    hold = (await wait_rows(ControlAction.objects.filter(room=room, action="failover_hold"), timeout=10))[0]
    assert hold.actor_label == "auto" and hold.reason == "auto:black"
    alert = (await wait_rows(Alert.objects.filter(room=room, kind=Alert.Kind.FAILOVER_HOLD)))[0]
    assert alert.severity == "critical"
    await asyncio.sleep(0.5)
    assert [r[:2] for r in await auto_switches(room)] == [("backup", "auto:input_loss")]  # held: no second switch
    assert (await sync_to_async(LiveRoom.objects.get)(pk=room.pk)).program_source == "backup"


async def test_auto_failover_off_keeps_the_source(on_air):
    room, primary, backup, viewer = on_air
    await reconfigure(room, auto_failover=False)
    primary.set_fault("black")
    await asyncio.sleep(1.2)
    assert viewer.colour == "black"
    assert await auto_switches(room) == []
