"""Bad input gets a clear error and nothing is lost; every action is authorised server-side."""

import pytest

from incidents import services
from incidents.models import Incident
from streams.models import ControlAction

pytestmark = pytest.mark.django_db


def test_outsider_can_neither_see_nor_declare_incidents(client, room, operator, outsider):
    incident = services.open_incident(room=room, incident_type="other", actor=operator)
    client.force_login(outsider)
    assert client.get(f"/incidents/{incident.pk}/").status_code == 403
    assert client.post("/incidents/declare", {"room": room.slug, "incident_type": "other"}).status_code == 403
    assert client.post(f"/incidents/{incident.pk}/notes", {"text": "x"}).status_code == 403
    assert client.post(f"/incidents/{incident.pk}/transition", {"to": "acknowledged"}).status_code == 403
    assert Incident.objects.count() == 1 and incident.timeline.filter(kind="note").count() == 0


def test_anonymous_is_sent_to_login(client, room):
    response = client.get("/incidents/")
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_declare_with_unknown_room_or_type_says_what_is_wrong(client, floor_assistant):
    client.force_login(floor_assistant)
    response = client.post("/incidents/declare", {"room": "no-such-room", "incident_type": "other"},
                           HTTP_HX_REQUEST="true")
    assert response.status_code == 400 and "room" in response.content.decode()
    response = client.post("/incidents/declare", {"room": "no-such-room", "incident_type": "nope"}, follow=True)
    assert "选择一个有效的选项" in response.content.decode() or "valid choice" in response.content.decode()
    assert not Incident.objects.exists()


def test_floor_assistant_declares_from_the_form_and_lands_on_the_case(client, room, floor_assistant):
    client.force_login(floor_assistant)
    response = client.post("/incidents/declare", {"room": room.slug, "incident_type": "host-emergency",
                                                  "severity": "1", "title": "主播晕倒"})
    incident = Incident.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/incidents/{incident.pk}/"
    assert incident.severity == 1 and incident.title == "主播晕倒" and incident.created_by == floor_assistant
    audit = ControlAction.objects.get(action="open_incident")
    assert audit.actor == floor_assistant and audit.target == str(incident.pk)
    # Declaring again attaches instead of duplicating, and says so.
    response = client.post("/incidents/declare", {"room": room.slug, "incident_type": "host-emergency"}, follow=True)
    assert Incident.objects.count() == 1 and "已并入" in response.content.decode()


def test_empty_note_and_unknown_status_are_refused_clearly(client, room, operator):
    incident = services.open_incident(room=room, incident_type="other", actor=operator)
    client.force_login(operator)
    response = client.post(f"/incidents/{incident.pk}/notes", {"text": "  "}, HTTP_HX_REQUEST="true")
    assert response.status_code == 400 and "备注内容不能为空" in response.content.decode()
    response = client.post(f"/incidents/{incident.pk}/transition", {"to": "exploded"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 400 and "未知状态" in response.content.decode()
    response = client.post(f"/incidents/{incident.pk}/meta", {"severity": "9"})
    assert response.status_code == 400


def test_get_on_actions_is_not_allowed(client, room, operator):
    incident = services.open_incident(room=room, incident_type="other", actor=operator)
    client.force_login(operator)
    assert client.get(f"/incidents/{incident.pk}/transition").status_code == 405
    step = incident.steps.first()
    assert client.get(f"/incidents/{incident.pk}/steps/{step.pk}/complete").status_code == 405


def test_step_of_another_incident_is_not_found(client, room, operator):
    first = services.open_incident(room=room, incident_type="other", actor=operator)
    second = services.open_incident(room=room, incident_type="weak-network", actor=operator)
    step = second.steps.filter(role="ops").first()
    client.force_login(operator)
    assert client.post(f"/incidents/{first.pk}/steps/{step.pk}/complete").status_code == 404


def test_manager_takes_ownership_and_raises_severity(client, room, operator, manager):
    incident = services.open_incident(room=room, incident_type="weak-network", actor=operator)
    client.force_login(manager)
    response = client.post(f"/incidents/{incident.pk}/meta", {"severity": "1", "take_ownership": "1"},
                           HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and 'id="incident-header"' in response.content.decode()
    incident.refresh_from_db()
    assert incident.severity == 1 and incident.owner == manager
    entry = incident.timeline.get(kind="update")
    assert "SEV3 → SEV1" in entry.text and "mia_manager" in entry.text


def test_manager_pages_render(client, room, operator, manager):
    incident = services.open_incident(room=room, incident_type="other", actor=operator)
    client.force_login(manager)
    for url in ("/incidents/", "/incidents/types/", "/incidents/new?drill=1&room=test-room",
                f"/incidents/{incident.pk}/review", f"/incidents/{incident.pk}/drill-report",
                "/incidents/analytics/?days=30", "/incidents/types/host-emergency/"):
        response = client.get(url)
        assert response.status_code == 200, url
    html = client.get("/incidents/new?drill=1&room=test-room").content.decode()
    # demo rooms by name, never by slug
    assert 'name="is_drill"' in html and "checked" in html and "美妆专场 · 小鹿" in html and "beauty-01" not in html


def test_review_over_http_signs_off(client, room, operator, manager):
    incident = services.open_incident(room=room, incident_type="weak-network", actor=operator)
    services.transition(incident=incident, to="acknowledged", actor=operator)
    services.transition(incident=incident, to="resolved", actor=operator, cause="弱网", handling="切备用",
                        outcome="恢复")
    client.force_login(manager)
    data = {"root_cause": "直播间 Wi-Fi 信道拥堵", "went_well": "3 分钟内切到备用", "to_improve": "改用有线",
            "items-TOTAL_FORMS": "2", "items-INITIAL_FORMS": "0", "items-MIN_NUM_FORMS": "0",
            "items-MAX_NUM_FORMS": "1000", "items-0-text": "布有线网络", "items-0-owner": str(operator.pk),
            "items-0-due_date": "2026-12-01", "items-1-text": "", "sign_off": "1"}
    response = client.post(f"/incidents/{incident.pk}/review", data)
    assert response.status_code == 302
    incident.refresh_from_db()
    assert incident.status == "reviewed" and incident.review.action_items.get().text == "布有线网络"
    html = client.get(f"/incidents/{incident.pk}/").content.decode()
    assert "直播间 Wi-Fi 信道拥堵" in html and "已签核" in html
