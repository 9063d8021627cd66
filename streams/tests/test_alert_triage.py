"""The alert sidebar on every page: counts, grouping by room and kind, acknowledge all for a room, snooze a
room for a while (audited; its alerts are still recorded but neither beep nor flash), live over websockets."""

import datetime

import pytest
from asgiref.sync import sync_to_async
from django.urls import reverse
from django.utils import timezone

from conftest import PASSWORD
from streams import services
from streams.models import Alert, AlertSnooze, ControlAction, LiveRoom, LiveSession
from streams.selectors import alert_triage, room_is_snoozed

from .wall_support import stop_hubs  # noqa: F401
from .wall_support import communicator, receive_frames, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


def login(client, user):
    assert client.login(username=user.username, password=PASSWORD)
    return client


def raise_(room, kind, severity=Alert.Severity.WARNING, message="x"):
    return services.raise_alert(room=room, kind=kind, message=message, severity=severity)


@pytest.fixture
def second_room(db):
    return LiveRoom.objects.create(name="另一间", slug="second-room", merchant="别家", status=LiveRoom.Status.LIVE)


def test_triage_groups_open_alerts_by_room_and_kind_with_counts(room, second_room):
    for _ in range(3):
        raise_(room, Alert.Kind.LINE_DEGRADED)
    raise_(room, Alert.Kind.LINE_DOWN, Alert.Severity.CRITICAL)
    raise_(second_room, Alert.Kind.LINE_DEGRADED)
    acked = raise_(second_room, Alert.Kind.PUSH_FAILED)
    services.acknowledge_alert(alert_id=acked.pk, user=None)

    triage = alert_triage()
    assert triage["total"] == 3 and triage["rooms"] == 2
    # rooms by name (a stable list), each room's kinds with their repeat counts
    assert [g["room"].slug for g in triage["groups"]] == ["second-room", "test-room"]
    mine = triage["groups"][1]
    assert {a.kind: a.count for a in mine["alerts"]} == {"line_degraded": 3, "line_down": 1}
    assert mine["occurrences"] == 4 and mine["severity"] == "critical"
    assert [(sev, n) for sev, _label, n in triage["severity_counts"]] == [("critical", 1), ("warning", 2), ("info", 0)]
    assert dict((str(k), n) for k, n in triage["kind_counts"])["线路劣化"] == 2


@pytest.mark.parametrize("page", ["incidents:new", "compensation:list", "audit"])
def test_the_sidebar_is_on_pages_without_a_wall_and_has_its_own_socket(client, room, manager, page):
    raise_(room, Alert.Kind.LINE_DOWN, Alert.Severity.CRITICAL)
    html = login(client, manager).get(reverse(page)).content.decode()
    assert 'id="alert-triage"' in html and 'ws-connect="/ws/alerts/"' in html
    assert 'id="triage-test-room"' in html and "线路中断" in html and "全部确认" in html


def test_the_wall_page_carries_the_sidebar_on_its_own_socket(client, room, operator):
    raise_(room, Alert.Kind.LINE_DOWN)
    html = login(client, operator).get("/").content.decode()
    assert 'id="alert-triage"' in html and 'id="triage-test-room"' in html
    assert 'ws-connect="/ws/alerts/"' not in html  # the wall's socket brings the sidebar's updates too
    assert html.count('id="wall-seq"') == 1


def test_acknowledge_all_for_a_room_from_the_sidebar_is_one_audited_action(client, room, second_room, operator):
    for kind in (Alert.Kind.LINE_DOWN, Alert.Kind.LINE_DEGRADED, Alert.Kind.AUTO_FAILOVER):
        raise_(room, kind)
    other = raise_(second_room, Alert.Kind.LINE_DOWN)
    response = login(client, operator).post(reverse("acknowledge_room_alerts", args=[room.slug]))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="triage-test-room"' not in html and 'id="triage-second-room"' in html
    assert not Alert.objects.filter(room=room, acknowledged_at__isnull=True).exists()
    other.refresh_from_db()
    assert other.acknowledged_at is None
    row = ControlAction.objects.get(action="acknowledge_room_alerts")
    assert row.actor == operator and row.target == "3"


def test_snooze_until_a_time_is_audited_shown_in_shanghai_time_and_lifted(client, room, operator):
    raise_(room, Alert.Kind.LINE_DOWN)
    login(client, operator)
    before = timezone.now()
    html = client.post(reverse("snooze_room_alerts", args=[room.slug]), {"duration": "15m"}).content.decode()
    snooze = AlertSnooze.objects.get(room=room)
    assert datetime.timedelta(minutes=14) < snooze.until - before <= datetime.timedelta(minutes=15, seconds=5)
    shanghai = timezone.localtime(snooze.until, timezone=datetime.timezone(datetime.timedelta(hours=8)))
    assert f"已静音至 {shanghai:%H:%M}" in html and "取消静音" in html
    assert room_is_snoozed(room.pk)
    row = ControlAction.objects.get(action="snooze_room_alerts")
    assert row.actor == operator and row.target == "15m" and row.detail["until"]

    # still recorded and listed while snoozed
    raise_(room, Alert.Kind.LINE_DEGRADED)
    assert alert_triage()["total"] == 2

    html = client.post(reverse("unsnooze_room_alerts", args=[room.slug])).content.decode()
    assert "已静音至" not in html and not room_is_snoozed(room.pk)
    assert ControlAction.objects.filter(action="unsnooze_room_alerts", actor=operator).exists()


def test_snooze_until_the_end_of_the_show_ends_with_the_show(client, room, operator):
    LiveSession.objects.create(room=room, started_at=timezone.now())
    html = login(client, operator).post(reverse("snooze_room_alerts", args=[room.slug]),
                                        {"duration": "show"}).content.decode()
    assert "已静音至本场结束" in html and room_is_snoozed(room.pk)
    services.set_room_status(room=room, status=LiveRoom.Status.ENDED, actor=operator)
    assert not room_is_snoozed(room.pk)


def test_snooze_refuses_bad_input_and_people_without_the_capability(client, room, operator, outsider):
    login(client, operator)
    assert client.post(reverse("snooze_room_alerts", args=[room.slug]), {"duration": "forever"}).status_code == 400
    assert client.post(reverse("snooze_room_alerts", args=[room.slug]), {"duration": "show"}).status_code == 409
    assert client.post(reverse("snooze_room_alerts", args=["no-such-room"]), {"duration": "1h"}).status_code == 404
    client.logout()
    login(client, outsider)
    assert client.post(reverse("snooze_room_alerts", args=[room.slug]), {"duration": "1h"}).status_code == 403
    assert client.post(reverse("acknowledge_room_alerts", args=[room.slug])).status_code == 403
    assert not AlertSnooze.objects.exists()


@pytest.mark.usefixtures("stop_hubs")
async def test_the_alert_socket_brings_triage_updates_and_a_snoozed_room_does_not_beep(room, manager):
    cookie = await sync_to_async(session_cookie)(manager)
    comm = communicator("/ws/alerts/", cookie)
    connected, _ = await comm.connect(timeout=10)
    assert connected
    first = await comm.receive_from(timeout=5)
    assert 'id="alert-triage"' in first and "tile-" not in first  # the summary, no tiles

    alert = await sync_to_async(raise_)(room, Alert.Kind.LINE_DOWN, Alert.Severity.CRITICAL)
    joined = "".join(await receive_frames(comm, 1.5))
    assert f'id="alert-{alert.pk}"' in joined and " fresh" in joined  # a new alert beeps and flashes
    assert 'id="alert-triage" class="triage" hx-swap-oob="true"' in joined and 'id="triage-test-room"' in joined

    await sync_to_async(services.snooze_room_alerts)(room=room, user=manager, duration="1h")
    joined = "".join(await receive_frames(comm, 1.5))
    assert "已静音至" in joined

    second = await sync_to_async(raise_)(room, Alert.Kind.LINE_DEGRADED)
    joined = "".join(await receive_frames(comm, 1.5))
    assert f'id="alert-{second.pk}"' in joined and "afterbegin:#alert-list" in joined  # listed on top...
    assert " fresh" not in joined  # ...silently
    await comm.disconnect()
