"""Lifecycle rules: valid moves, refused moves with a clear message, closing needs the case record,
manager milestone corrections are audited."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from incidents import services
from incidents.models import Incident, TimelineKind
from streams.models import ControlAction

pytestmark = pytest.mark.django_db


@pytest.fixture
def incident(room, operator):
    return services.open_incident(room=room, incident_type="stream-interruption", actor=operator)


def test_operator_walks_incident_through_lifecycle_and_milestones_are_stamped(incident, operator, manager):
    assert incident.status == "detected" and incident.severity == 2  # stream interruption default SEV2
    services.transition(incident=incident, to="acknowledged", actor=operator)
    services.transition(incident=incident, to="mitigated", actor=operator)
    services.transition(incident=incident, to="resolved", actor=operator, cause="推流端网线松动",
                        handling="切到备用线路后重新插好网线", outcome="3 分钟后恢复主线路")
    incident.refresh_from_db()
    assert incident.status == "resolved"
    assert incident.detected_at <= incident.acknowledged_at <= incident.mitigated_at <= incident.resolved_at
    assert incident.owner == operator  # whoever acknowledges owns it
    milestones = [e.data["to"] for e in incident.timeline.filter(kind=TimelineKind.MILESTONE)]
    assert milestones == ["acknowledged", "mitigated", "resolved"]
    audited = ControlAction.objects.filter(action="incident_transition", target=str(incident.pk))
    assert audited.count() == 3 and all(a.actor == operator for a in audited)


def test_skipping_acknowledgement_is_refused_with_the_allowed_next_steps(incident, operator):
    with pytest.raises(services.IncidentRuleError) as exc:
        services.transition(incident=incident, to="mitigated", actor=operator)
    message = exc.value.messages[0]
    assert "不能从「已发现」变为「已缓解」" in message
    assert "已响应" in message and "已取消" in message
    incident.refresh_from_db()
    assert incident.status == "detected" and incident.mitigated_at is None


def test_closing_requires_cause_handling_and_outcome(incident, operator):
    services.transition(incident=incident, to="acknowledged", actor=operator)
    with pytest.raises(services.IncidentRuleError) as exc:
        services.transition(incident=incident, to="resolved", actor=operator, cause="网线松动")
    assert "结案前请填写" in exc.value.messages[0]
    assert "处理过程" in exc.value.messages[0] and "结果" in exc.value.messages[0]
    incident.refresh_from_db()
    assert incident.status == "acknowledged" and incident.resolved_at is None


def test_terminal_states_refuse_every_move(incident, operator):
    services.transition(incident=incident, to="cancelled", actor=operator, reason="误报:测试推流")
    with pytest.raises(services.IncidentRuleError) as exc:
        services.transition(incident=incident, to="acknowledged", actor=operator)
    assert "事故已「已取消」,不能再变为「已响应」" in exc.value.messages[0]


def test_cancel_needs_a_reason(incident, operator):
    with pytest.raises(services.IncidentRuleError, match="取消事故需要填写原因"):
        services.transition(incident=incident, to="cancelled", actor=operator)


def test_invalid_transition_over_http_shows_the_message(client, incident, operator):
    client.force_login(operator)
    response = client.post(f"/incidents/{incident.pk}/transition", {"to": "resolved"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 400
    assert "不能从「已发现」变为「已解决」" in response.content.decode()


def test_manager_corrects_a_milestone_and_the_correction_is_audited(incident, operator, manager):
    services.transition(incident=incident, to="acknowledged", actor=operator)
    incident.refresh_from_db()
    old = incident.acknowledged_at
    corrected = incident.detected_at + timedelta(seconds=40)
    services.correct_milestone(incident=incident, milestone="acknowledged_at", value=corrected,
                               reason="值班员先电话响应,系统晚点了", actor=manager)
    incident.refresh_from_db()
    assert incident.acknowledged_at == corrected
    audit = ControlAction.objects.get(action="incident_correct_milestone", target=str(incident.pk))
    assert audit.actor == manager and audit.reason == "值班员先电话响应,系统晚点了"
    assert audit.detail == {"milestone": "acknowledged_at", "old": old.isoformat(), "new": corrected.isoformat()}
    entry = incident.timeline.get(kind=TimelineKind.CORRECTION)
    assert entry.actor == manager and "值班员先电话响应" in entry.text and entry.data["old"] == old.isoformat()


def test_correction_needs_manager_reason_and_keeps_milestones_in_order(incident, operator, manager):
    services.transition(incident=incident, to="acknowledged", actor=operator)
    with pytest.raises(PermissionDenied):
        services.correct_milestone(incident=incident, milestone="acknowledged_at", value=timezone.now(),
                                   reason="x", actor=operator)
    with pytest.raises(services.IncidentRuleError, match="原因"):
        services.correct_milestone(incident=incident, milestone="acknowledged_at", value=timezone.now(),
                                   reason=" ", actor=manager)
    with pytest.raises(services.IncidentRuleError, match="时间顺序不正确"):
        services.correct_milestone(incident=incident, milestone="acknowledged_at",
                                   value=incident.detected_at - timedelta(minutes=5), reason="录错", actor=manager)
    with pytest.raises(services.IncidentRuleError, match="尚未发生"):
        services.correct_milestone(incident=incident, milestone="resolved_at", value=timezone.now(),
                                   reason="录错", actor=manager)
    assert not ControlAction.objects.filter(action="incident_correct_milestone").exists()


def test_correction_form_over_http_is_manager_only(client, incident, operator, manager):
    client.force_login(operator)
    url = f"/incidents/{incident.pk}/correct"
    value = timezone.localtime(incident.detected_at - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S")
    assert client.post(url, {"milestone": "detected_at", "value": value, "reason": "r"}).status_code == 403
    client.force_login(manager)
    response = client.post(url, {"milestone": "detected_at", "value": value, "reason": "告警延迟一分钟"})
    assert response.status_code == 302
    incident.refresh_from_db()
    assert timezone.localtime(incident.detected_at).strftime("%Y-%m-%dT%H:%M:%S") == value


def test_review_sign_off_moves_incident_to_reviewed(incident, operator, manager):
    services.transition(incident=incident, to="acknowledged", actor=operator)
    with pytest.raises(services.IncidentRuleError, match="解决后才能复盘"):
        services.save_review(incident=incident, actor=manager, root_cause="x", went_well="", to_improve="")
    services.transition(incident=incident, to="resolved", actor=operator, cause="c", handling="h", outcome="o")
    with pytest.raises(services.IncidentRuleError, match="负责人和截止日期"):
        services.save_review(incident=incident, actor=manager, root_cause="交换机老化", went_well="切换快",
                             to_improve="巡检", action_items=[{"text": "更换交换机"}], sign_off=True)
    incident.refresh_from_db()
    assert incident.status == "resolved"
    review = services.save_review(
        incident=incident, actor=manager, root_cause="交换机老化", went_well="自动切换 300 毫秒内生效",
        to_improve="每周巡检网络设备", sign_off=True,
        action_items=[{"text": "更换机房交换机", "owner": operator, "due_date": timezone.localdate() + timedelta(days=7)}])
    incident.refresh_from_db()
    assert incident.status == "reviewed" and incident.reviewed_at is not None
    assert review.signed_off_by == manager and review.action_items.get().owner == operator
    with pytest.raises(services.IncidentRuleError):
        services.transition(incident=incident, to="resolved", actor=manager)


def test_one_open_incident_per_room_and_type_even_when_declared_twice(room, operator, floor_assistant):
    first = services.open_incident(room=room, incident_type="weak-network", actor=operator)
    second = services.open_incident(room=room, incident_type="weak-network", actor=floor_assistant)
    assert first.pk == second.pk and second.deduplicated
    assert Incident.objects.filter(room=room, incident_type__slug="weak-network").count() == 1
    other_type = services.open_incident(room=room, incident_type="device-failure", actor=operator)
    assert other_type.pk != first.pk
    services.transition(incident=first, to="cancelled", actor=operator, reason="误报")
    third = services.open_incident(room=room, incident_type="weak-network", actor=operator)
    assert third.pk != first.pk and not third.deduplicated


def test_refused_close_keeps_what_was_typed(client, incident, operator):
    client.force_login(operator)
    response = client.post(f"/incidents/{incident.pk}/transition",
                           {"to": "resolved", "cause": "编码器崩溃", "handling": "", "outcome": ""}, follow=True)
    html = response.content.decode()
    assert "不能从「已发现」变为「已解决」" in html
    incident.refresh_from_db()
    assert incident.status == "detected" and incident.cause == "编码器崩溃"
    assert ">编码器崩溃</textarea>" in html
