"""A signed-off (reviewed) case is read-only: only a manager's correction with a reason changes it, and it
shows on the timeline. Case text, severity and owner changes always land on the timeline."""

import pytest
from django.core.exceptions import PermissionDenied

from incidents import services
from incidents.models import Incident, TimelineKind
from streams.models import ControlAction

pytestmark = pytest.mark.django_db


@pytest.fixture
def reviewed(room, operator, manager):
    incident = services.open_incident(room=room, incident_type="stream-interruption", actor=operator, severity=3)
    services.transition(incident=incident, to="acknowledged", actor=operator)
    services.transition(incident=incident, to="resolved", actor=operator, cause="交换机老化", handling="切备用",
                        outcome="恢复")
    services.save_review(incident=incident, actor=manager, root_cause="交换机老化", went_well="", to_improve="",
                         sign_off=True)
    incident.refresh_from_db()
    assert incident.status == "reviewed"
    return incident


def test_a_floor_assistant_cannot_rewrite_a_signed_off_case_over_http(client, reviewed, floor_assistant):
    client.force_login(floor_assistant)
    response = client.post(f"/incidents/{reviewed.pk}/case", {"cause": "别人的错", "handling": "", "outcome": ""},
                           HTTP_HX_REQUEST="true")
    assert response.status_code == 403 and "只读" in response.content.decode()
    meta = client.post(f"/incidents/{reviewed.pk}/meta", {"severity": "1", "take_ownership": "1"},
                       HTTP_HX_REQUEST="true")
    assert meta.status_code == 403
    reviewed.refresh_from_db()
    assert (reviewed.cause, reviewed.handling, reviewed.outcome) == ("交换机老化", "切备用", "恢复")
    assert reviewed.severity == 3 and reviewed.owner.username == "olivia_ops"


def test_a_manager_corrects_a_signed_off_case_only_with_a_reason_and_it_is_on_the_timeline(reviewed, manager):
    with pytest.raises(services.IncidentRuleError, match="原因"):
        services.update_case_record(incident=reviewed, actor=manager, cause="光模块故障", handling="切备用",
                                    outcome="恢复")
    services.update_case_record(incident=reviewed, actor=manager, cause="光模块故障", handling="切备用",
                                outcome="恢复", reason="厂商报告确认")
    reviewed.refresh_from_db()
    assert reviewed.cause == "光模块故障"
    entry = reviewed.timeline.filter(kind=TimelineKind.CORRECTION).get()
    assert "厂商报告确认" in entry.text and entry.data["case"]["cause"] == ["交换机老化", "光模块故障"]
    assert ControlAction.objects.get(action="incident_correct_case").reason == "厂商报告确认"

    services.set_severity_and_owner(incident=reviewed, actor=manager, severity=2, reason="影响面重新评估")
    entry = reviewed.timeline.filter(kind=TimelineKind.CORRECTION).latest("at")
    assert "SEV3 → SEV2" in entry.text and "影响面重新评估" in entry.text


def test_operator_is_refused_even_through_the_service(reviewed, operator):
    with pytest.raises(PermissionDenied):
        services.set_severity_and_owner(incident=reviewed, actor=operator, severity=1, reason="我想改")
    with pytest.raises(PermissionDenied):
        services.update_case_record(incident=reviewed, actor=operator, cause="", handling="", outcome="",
                                    reason="x")


def test_case_edits_on_an_open_incident_show_on_the_timeline(client, room, operator):
    incident = services.open_incident(room=room, incident_type="stream-interruption", actor=operator)
    client.force_login(operator)
    client.post(f"/incidents/{incident.pk}/case", {"cause": "推流机断网", "handling": "", "outcome": ""})
    entry = Incident.objects.get(pk=incident.pk).timeline.filter(kind=TimelineKind.UPDATE).get()
    assert "原因" in entry.text and entry.data["case"]["cause"] == ["", "推流机断网"]
    # A partial post never blanks what it did not send.
    client.post(f"/incidents/{incident.pk}/case", {"handling": "重启推流机"})
    incident.refresh_from_db()
    assert (incident.cause, incident.handling) == ("推流机断网", "重启推流机")


def test_severity_and_owner_changes_land_on_the_timeline(client, room, operator, floor_assistant):
    incident = services.open_incident(room=room, incident_type="stream-interruption", actor=operator, severity=3)
    client.force_login(floor_assistant)
    client.post(f"/incidents/{incident.pk}/meta", {"severity": "1", "take_ownership": "1"})
    entry = incident.timeline.filter(kind=TimelineKind.UPDATE).get()
    assert "SEV3 → SEV1" in entry.text and floor_assistant.username in entry.text


def test_refusal_messages_are_escaped(client, room, operator):
    incident = services.open_incident(room=room, incident_type="stream-interruption", actor=operator)
    client.force_login(operator)
    response = client.post(f"/incidents/{incident.pk}/transition", {"to": "<img src=x onerror=alert(1)>"},
                           HTTP_HX_REQUEST="true")
    assert response.status_code == 400
    assert "<img" not in response.content.decode() and "&lt;img" in response.content.decode()
