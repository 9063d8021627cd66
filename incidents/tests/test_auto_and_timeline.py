"""Automatic incidents from the media worker's failovers and alerts, and the timeline each source fills."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from incidents import services
from incidents.models import Incident, IncidentTimelineEntry, TimelineKind
from streams import services as stream_services
from streams.models import Alert, HealthSample, LiveSession, Viewer, ViewerSession

# Reactions to streams signals run after commit: these tests commit.
pytestmark = pytest.mark.django_db(transaction=True)


def auto_failover(room, latency_ms=84.0):
    """Exactly what the media worker records when its watchdog fails over."""
    return stream_services.record_action(
        actor=None, actor_label="auto", action="switch_source", room=room, target="backup",
        reason="auto:input_loss", latency_ms=latency_ms,
        detail={"from": "primary", "to": "backup", "latency_ms": latency_ms})


@pytest.fixture
def on_air(room):
    """The room mid-show: 3 viewers watching (1 left, 1 stale open session of a dead process),
    health samples, an open live session."""
    now = timezone.now()
    LiveSession.objects.create(room=room, started_at=now - timedelta(hours=1))
    for n in range(4):
        viewer = Viewer.objects.create(device_id=f"dev-{n}")
        ViewerSession.objects.create(room=room, viewer=viewer, joined_at=now - timedelta(minutes=10),
                                     last_seen_at=now, left_at=now - timedelta(minutes=1) if n == 3 else None)
    stale = Viewer.objects.create(device_id="dev-crashed")
    ViewerSession.objects.create(room=room, viewer=stale, joined_at=now - timedelta(hours=2),
                                 last_seen_at=now - timedelta(minutes=30))
    HealthSample.objects.create(room=room, line_role="primary", at=now - timedelta(seconds=20), connected=True,
                                bitrate_kbps=2400, fps=30, loss_pct=0.1)
    HealthSample.objects.create(room=room, line_role="primary", at=now - timedelta(seconds=5), connected=False,
                                bitrate_kbps=0, fps=0, loss_pct=35.0, frozen=True)
    HealthSample.objects.create(room=room, line_role="backup", at=now - timedelta(seconds=5), connected=True,
                                bitrate_kbps=1800, fps=30, loss_pct=0.0)
    return room


def test_auto_failover_opens_incident_with_live_context_and_switch_latency(on_air):
    auto_failover(on_air)
    incident = Incident.objects.get(room=on_air)
    assert incident.source == "auto_failover" and incident.incident_type.slug == "stream-interruption"
    assert incident.status == "detected" and incident.created_by is None
    ctx = incident.context
    assert ctx["viewers"] == 3 and ctx["host"] == "小测" and ctx["room"]["merchant"] == "测试商家"
    assert ctx["lines"]["primary"]["loss_pct"] == 35.0 and ctx["lines"]["primary"]["frozen"] is True
    assert ctx["lines"]["backup"]["bitrate_kbps"] == 1800 and ctx["live_session_started_at"]
    switch = incident.timeline.get(kind=TimelineKind.SWITCH)
    assert switch.data["latency_ms"] == 84.0 and switch.actor_label == "auto"
    assert "主线路 → 备用线路" in switch.text and "84 毫秒" in switch.text
    detection = incident.timeline.get(kind=TimelineKind.DETECTION)
    assert detection.actor_label == "auto"
    # Runbook v1 copied as per-role checklists.
    assert set(incident.steps.values_list("role", flat=True)) == {"ops", "floor_control", "tech_support"}


def test_repeated_failovers_attach_to_the_open_incident(on_air):
    auto_failover(on_air)
    auto_failover(on_air, latency_ms=120.0)
    assert Incident.objects.filter(room=on_air).count() == 1
    incident = Incident.objects.get(room=on_air)
    assert incident.timeline.filter(kind=TimelineKind.SWITCH).count() == 2
    assert incident.timeline.filter(kind=TimelineKind.DETECTION, data__repeat=True).count() == 1


def test_manual_switch_and_failed_auto_switch_do_not_open_incidents(room, operator):
    stream_services.record_action(actor=operator, action="switch_source", room=room, target="backup",
                                  reason="manual: 测试", latency_ms=50, detail={"from": "primary"})
    stream_services.record_action(actor=None, actor_label="auto", action="switch_source", room=room,
                                  target="backup", reason="auto:input_loss", outcome="failed")
    assert not Incident.objects.exists()


def test_alerts_attach_to_the_open_incident(on_air):
    auto_failover(on_air)
    alert = stream_services.raise_alert(room=on_air, kind=Alert.Kind.LINE_DEGRADED, message="备用线路丢包 8%",
                                        line_role="backup")
    incident = Incident.objects.get(room=on_air)
    entry = incident.timeline.get(kind=TimelineKind.ALERT)
    assert entry.data["alert_id"] == alert.pk and "备用线路丢包 8%" in entry.text


def test_alert_acknowledged_as_incident_opens_and_acknowledges_it(room, tech_support):
    alert = stream_services.raise_alert(room=room, kind=Alert.Kind.LINE_DEGRADED, message="主线路码率骤降",
                                        line_role="primary")
    assert not Incident.objects.exists()  # a plain alert is not an incident
    stream_services.acknowledge_alert(alert_id=alert.pk, user=tech_support, as_=Alert.AckAs.INCIDENT)
    incident = Incident.objects.get(room=room)
    assert incident.incident_type.slug == "weak-network" and incident.source == "alert"
    assert incident.status == "acknowledged" and incident.owner == tech_support
    assert incident.timeline.filter(kind=TimelineKind.ALERT, data__alert_id=alert.pk).exists()


def test_line_down_longer_than_threshold_opens_incident_once(room):
    alert = stream_services.raise_alert(room=room, kind=Alert.Kind.LINE_DOWN, message="主线路中断",
                                        line_role="primary", severity=Alert.Severity.CRITICAL)
    assert not Incident.objects.exists()
    # Before the threshold nothing happens; after it the periodic check opens one incident.
    assert services.check_lines_down(now=alert.raised_at + timedelta(seconds=10), threshold_s=30) == []
    opened = services.check_lines_down(now=alert.raised_at + timedelta(seconds=31), threshold_s=30)
    assert len(opened) == 1 and opened[0].source == "line_down"
    assert opened[0].timeline.filter(data__alert_id=alert.pk).exists()
    # Checking again (next tick) does not open a second one, even after the first is closed.
    services.transition(incident=opened[0], to="cancelled", actor=None, reason="测试")
    assert services.check_lines_down(now=alert.raised_at + timedelta(seconds=60), threshold_s=30) == []
    assert Incident.objects.count() == 1


def test_line_that_recovers_within_threshold_opens_nothing(room):
    down = stream_services.raise_alert(room=room, kind=Alert.Kind.LINE_DOWN, message="主线路中断", line_role="primary")
    stream_services.raise_alert(room=room, kind=Alert.Kind.LINE_RECOVERED, message="主线路恢复", line_role="primary")
    assert services.check_lines_down(now=down.raised_at + timedelta(seconds=45), threshold_s=30) == []
    assert not Incident.objects.exists()


def test_line_down_alert_reporting_long_outage_opens_incident_at_once(room, settings):
    settings.INCIDENTS_LINE_DOWN_THRESHOLD_S = 30
    stream_services.raise_alert(room=room, kind=Alert.Kind.LINE_DOWN, message="主线路中断 45 秒", line_role="primary",
                                detail={"down_ms": 45000})
    assert Incident.objects.get(room=room).source == "line_down"


def test_timeline_collects_announcements_cues_steps_compensation_notes_and_milestones(room, operator,
                                                                                     floor_assistant):
    incident = services.open_incident(room=room, incident_type="host-emergency", actor=floor_assistant)
    stream_services.record_action(actor=operator, action="end_slate", room=room, target="primary",
                                  reason="manual: 替补就位", latency_ms=61.5, detail={"from": "slate"})
    if hasattr(stream_services, "pin_announcement"):
        stream_services.pin_announcement(room=room, actor=floor_assistant, text="主播临时有事,马上回来")
        stream_services.send_host_cue(room=room, actor=floor_assistant, text="请替补主播从 3 号商品开始")
    else:  # the wall's services are not there yet: the audit rows they will write
        stream_services.record_action(actor=floor_assistant, action="pin_announcement", room=room,
                                      detail={"text": "主播临时有事,马上回来"})
        stream_services.record_action(actor=floor_assistant, action="send_host_cue", room=room,
                                      detail={"text": "请替补主播从 3 号商品开始"})
    step = incident.steps.filter(role="floor_control", action="").first()
    services.complete_step(step=step, actor=floor_assistant)
    services.add_timeline_entry(incident=incident, kind="compensation", text="补偿活动:5 元无门槛券 × 1,203 人",
                                data={"campaign": 1})
    services.add_note(incident=incident, text="替补主播 2 分钟到场", actor=operator)
    services.transition(incident=incident, to="acknowledged", actor=operator)

    kinds = list(incident.timeline.values_list("kind", flat=True))
    for kind in ("detection", "switch", "announcement", "host_cue", "step", "compensation", "note", "milestone"):
        assert kind in kinds, kind
    announcement = incident.timeline.get(kind=TimelineKind.ANNOUNCEMENT)
    assert "主播临时有事" in announcement.text and announcement.actor == floor_assistant
    assert "替补主播从 3 号商品开始" in incident.timeline.get(kind=TimelineKind.HOST_CUE).text
    assert incident.timeline.get(kind=TimelineKind.SWITCH).data["latency_ms"] == 61.5
    step_entry = incident.timeline.get(kind=TimelineKind.STEP)
    assert step_entry.actor == floor_assistant and step.title in step_entry.text
    incident.refresh_from_db()
    assert incident.first_announcement_at == announcement.at


def test_timeline_is_append_only_but_pinnable(room, operator):
    incident = services.open_incident(room=room, incident_type="other", actor=operator)
    entry = services.add_note(incident=incident, text="关键:主播已离场", actor=operator)
    entry.text = "改写历史"
    with pytest.raises(ValidationError):
        entry.save()
    with pytest.raises(ValidationError):
        entry.delete()
    services.set_pinned(entry=entry, pinned=True, actor=operator)
    entry = IncidentTimelineEntry.objects.get(pk=entry.pk)
    assert entry.pinned and entry.text == "关键:主播已离场"


def test_drill_incident_is_separate_from_the_real_one(room, operator):
    real = services.open_incident(room=room, incident_type="stream-interruption", actor=operator)
    drill = services.open_incident(room=room, incident_type="stream-interruption", actor=operator, is_drill=True)
    assert real.pk != drill.pk and drill.is_drill
    # Alerts belong to the real incident only.
    stream_services.raise_alert(room=room, kind=Alert.Kind.LINE_DEGRADED, message="丢包", line_role="primary")
    assert real.timeline.filter(kind="alert").count() == 1 and drill.timeline.filter(kind="alert").count() == 0


def test_compensation_entry_links_to_the_campaign_but_never_offsite(client, room, operator, manager):
    incident = services.open_incident(room=room, incident_type="stream-interruption", actor=operator)
    services.add_timeline_entry(incident=incident, kind="compensation", text="补偿活动「断流补偿」",
                                data={"campaign": 7, "url": "/compensation/7/"})
    services.add_timeline_entry(incident=incident, kind="note", text="外链", data={"url": "//evil.example/x"})
    client.force_login(manager)
    html = client.get(f"/incidents/{incident.pk}/").content.decode()
    assert 'href="/compensation/7/"' in html and "evil.example" not in html
