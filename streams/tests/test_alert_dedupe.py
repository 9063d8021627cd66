"""One open alert per room and kind: repeats count in place (row, wall entry, incident timeline), the
anti-flap hold is one alert that says how many switches it refused, "acknowledge all for this room" is one
audited action; reactions of other apps run after commit and cannot undo an automatic switch."""

import threading

import pytest
from asgiref.sync import sync_to_async
from django.db import IntegrityError, close_old_connections, connection, transaction
from django.utils import translation

from streams import services
from streams.actions import perform_action
from streams.mediaworker import bridge
from streams.models import Alert, ControlAction, LiveRoom
from streams.signals import control_action_recorded

from .wall_support import stop_hubs  # noqa: F401
from .wall_support import action, communicator, receive_frames, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


def line_down(room, n=1):
    return services.raise_alert(room=room, kind=Alert.Kind.LINE_DOWN, message=f"主线路中断 #{n}",
                                severity=Alert.Severity.WARNING, line_role="primary")


def test_a_repeat_updates_the_open_alert_and_a_new_one_opens_after_acknowledgement(room, operator):
    first = line_down(room, 1)
    second = line_down(room, 2)
    assert first.repeated is False and second.repeated is True and second.pk == first.pk
    alert = Alert.objects.get(room=room, kind=Alert.Kind.LINE_DOWN)
    assert alert.count == 2 and alert.message == "主线路中断 #2" and alert.last_seen_at >= alert.raised_at
    # another kind is its own alert
    services.raise_alert(room=room, kind=Alert.Kind.LINE_DEGRADED, message="劣化")
    assert Alert.objects.filter(room=room).count() == 2

    services.acknowledge_alert(alert_id=alert.pk, user=operator)
    third = line_down(room, 3)
    assert third.pk != alert.pk and third.count == 1 and third.repeated is False


def test_the_database_refuses_a_second_open_alert_of_a_kind(room):
    line_down(room)
    with pytest.raises(IntegrityError), transaction.atomic():
        Alert.objects.create(room=room, kind=Alert.Kind.LINE_DOWN, message="绕过服务")


def test_concurrent_raises_of_one_alert_leave_one_row_counting_all(room):
    barrier = threading.Barrier(6)
    errors = []

    def raise_it(n):
        try:
            barrier.wait(5)
            for _ in range(5):
                line_down(room, n)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=raise_it, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    alerts = list(Alert.objects.filter(room=room, kind=Alert.Kind.LINE_DOWN))
    assert len(alerts) == 1 and alerts[0].count == 30


def test_anti_flap_hold_is_one_alert_and_one_audit_row_that_count_refusals(room):
    detail = {"source": "backup", "wanted": "primary", "switches_in_window": 2, "window_s": 60, "line": "backup"}
    for _ in range(4):
        bridge.record_failover_hold(room.slug, "input_loss", detail)
    bridge.record_failover_hold(room.slug, "input_loss", detail, refused=3)  # coalesced while the thread was busy
    hold = Alert.objects.get(room=room, kind=Alert.Kind.FAILOVER_HOLD)
    assert hold.count == 7 and hold.detail["refused"] == 7
    with translation.override("zh-hans"):
        assert "已拒绝 7 次自动切换" in hold.text
    assert ControlAction.objects.filter(room=room, action="failover_hold").count() == 1


async def test_the_engines_hold_reports_count_into_the_one_open_hold(room):
    """The engine raises a hold once per episode, then reports its refusals so far (ongoing, ended)."""
    hooks = bridge.DjangoHooks()
    detail = {"source": "backup", "wanted": "primary", "switches_in_window": 2, "window_s": 60, "line": "backup"}
    await hooks.failover_hold(room.slug, "input_loss", detail)
    await hooks.failover_hold_report(room.slug, "input_loss", {"phase": "ongoing", "refused": 5})
    await hooks.failover_hold_report(room.slug, "input_loss", {"phase": "ongoing", "refused": 5})
    await hooks.failover_hold_report(room.slug, "input_loss", {"phase": "ended", "refused": 9})
    await hooks.failover_hold_report(room.slug, "input_loss", {"phase": "ended", "refused": 12})  # episode over
    hold = await sync_to_async(Alert.objects.get)(room=room, kind=Alert.Kind.FAILOVER_HOLD)
    assert hold.count == 9 and hold.detail["refused"] == 9 and hold.detail["window_s"] == 60
    assert await sync_to_async(ControlAction.objects.filter(room=room, action="failover_hold").count)() == 1
    await bridge.close_db()


def test_a_repeated_alert_updates_its_incident_timeline_entry_in_place(room, operator):
    from incidents.models import Incident, TimelineKind
    from incidents.services import open_incident

    incident = open_incident(room=room, incident_type="stream-interruption", actor=operator, source="manual",
                             title="断流")
    with translation.override("zh-hans"):  # the receiver writes the entry in the active language
        for n in range(3):
            line_down(room, n)
    entries = list(Incident.objects.get(pk=incident.pk).timeline.filter(kind=TimelineKind.ALERT))
    assert len(entries) == 1
    assert entries[0].data["count"] == 3 and "共 3 次" in entries[0].text


def test_acknowledge_all_for_a_room_is_one_audited_role_checked_action(room, operator, outsider):
    line_down(room)
    services.raise_alert(room=room, kind=Alert.Kind.LINE_DEGRADED, message="劣化")
    refused = perform_action(outsider, _message("acknowledge_room_alerts", room.slug))
    assert refused.outcome == "refused"
    assert Alert.objects.filter(room=room, acknowledged_at__isnull=True).count() == 2

    done = perform_action(operator, _message("acknowledge_room_alerts", room.slug))
    assert done.outcome == "ok"
    assert not Alert.objects.filter(room=room, acknowledged_at__isnull=True).exists()
    assert set(Alert.objects.filter(room=room).values_list("acknowledged_by", flat=True)) == {operator.pk}
    audit = ControlAction.objects.get(room=room, action="acknowledge_room_alerts", outcome="ok")
    assert audit.actor_id == operator.pk and audit.target == "2" and len(audit.detail["alerts"]) == 2


def _message(name, slug):
    import json

    return json.loads(action(name, slug))


def test_a_failing_receiver_cannot_undo_an_automatic_switch(room):
    """Receivers run after the commit (send_robust): the audit row and program_source stay, the error is logged."""
    calls = []

    def broken_receiver(sender, action, **kwargs):
        calls.append(action.pk)
        raise RuntimeError("an incidents receiver blew up")

    control_action_recorded.connect(broken_receiver, dispatch_uid="test.broken_receiver")
    try:
        action_id = bridge.record_auto_switch(room.slug, {"from": "primary", "to": "backup", "latency_ms": 40.0,
                                                          "first_frame_at": None}, "input_loss")
    finally:
        control_action_recorded.disconnect(dispatch_uid="test.broken_receiver")
    assert action_id in calls  # it ran (after the commit), and raised
    assert ControlAction.objects.filter(pk=action_id, action="switch_source", outcome="ok").exists()
    assert LiveRoom.objects.get(pk=room.pk).program_source == "backup"
    assert Alert.objects.filter(room=room, kind=Alert.Kind.AUTO_FAILOVER).exists()


def test_receivers_do_not_run_inside_the_senders_transaction(room):
    seen = []

    def receiver(sender, action, **kwargs):
        seen.append(connection.in_atomic_block)

    control_action_recorded.connect(receiver, dispatch_uid="test.where_receivers_run")
    try:
        with transaction.atomic():
            services.record_action(actor=None, actor_label="auto", action="switch_source", room=room, target="backup")
            assert seen == []  # not yet: the action has not committed
        assert seen == [False]
    finally:
        control_action_recorded.disconnect(dispatch_uid="test.where_receivers_run")


@pytest.mark.usefixtures("stop_hubs")
async def test_only_a_new_alert_beeps_on_the_wall_a_repeat_updates_its_entry(room, operator):
    cookie = await sync_to_async(session_cookie)(operator)
    comm = communicator("/ws/wall/", cookie)
    connected, _ = await comm.connect(timeout=10)
    assert connected
    await comm.receive_from(timeout=5)
    alert = await sync_to_async(line_down)(room, 1)
    joined = "".join(await receive_frames(comm, 1.5))
    assert "afterbegin:#alert-list" in joined and " fresh" in joined  # new: added on top, flashes and beeps
    for n in range(2, 6):
        await sync_to_async(line_down)(room, n)
    joined = "".join(await receive_frames(comm, 1.5))
    assert f'id="alert-{alert.pk}"' in joined and 'data-count="5"' in joined
    assert "afterbegin:#alert-list" not in joined and " fresh" not in joined  # replaced in place, silent
    await comm.disconnect()
