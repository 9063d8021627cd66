"""Ownership: everyone on duty sees open incidents, takes command, merges duplicates; the timeline is
newest first and can hide system noise."""

import pytest

from incidents import selectors, services
from incidents.models import Incident, TimelineKind
from streams.models import ControlAction, LiveRoom

pytestmark = pytest.mark.django_db


@pytest.fixture
def other_room(db):
    return LiveRoom.objects.create(name="第二直播间", slug="second-room", merchant="测试商家", status=LiveRoom.Status.LIVE)


def test_every_on_duty_role_sees_open_incidents(client, room, operator, floor_assistant, tech_support, manager,
                                                outsider):
    incident = services.open_incident(room=room, incident_type="stream-interruption", actor=None)
    closed = services.open_incident(room=room, incident_type="other", actor=operator, title="已取消的")
    services.transition(incident=closed, to="cancelled", actor=operator, reason="误报")
    for person in (operator, floor_assistant, tech_support, manager):
        client.force_login(person)
        response = client.get("/incidents/open/")
        assert response.status_code == 200, person
        html = response.content.decode()
        assert f"#{incident.pk}" in html and "已取消的" not in html and "我来处理" in html
        assert client.get(f"/incidents/{incident.pk}/").status_code == 200
    client.force_login(outsider)
    assert client.get("/incidents/open/").status_code == 403


def test_take_command_from_the_page_acknowledges_and_is_audited(client, room, operator, tech_support):
    incident = services.open_incident(room=room, incident_type="stream-interruption", actor=None)
    client.force_login(operator)
    response = client.post(f"/incidents/{incident.pk}/take", HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "olivia_ops" in response.content.decode()
    incident.refresh_from_db()
    assert incident.commander == operator and incident.owner == operator and incident.status == "acknowledged"
    # Handing over: another person takes command; both changes are on the timeline and audited.
    services.take_command(incident=incident, actor=tech_support)
    incident.refresh_from_db()
    assert incident.commander == tech_support and incident.owner == operator
    texts = [e.text for e in incident.timeline.filter(kind=TimelineKind.OWNERSHIP).order_by("at", "id")]
    assert texts == ["olivia_ops 接手指挥(我来处理)", "指挥:olivia_ops → tom_tech"]
    assert ControlAction.objects.filter(action="incident_take_command", target=str(incident.pk)).count() == 2
    # Taking again is a no-op.
    services.take_command(incident=incident, actor=tech_support)
    assert incident.timeline.filter(kind=TimelineKind.OWNERSHIP).count() == 2


def test_closed_incidents_cannot_be_taken(room, operator):
    incident = services.open_incident(room=room, incident_type="other", actor=operator)
    services.transition(incident=incident, to="cancelled", actor=operator, reason="误报")
    with pytest.raises(services.IncidentRuleError):
        services.take_command(incident=incident, actor=operator)


def test_merge_a_duplicate_links_its_timeline_and_closes_it(client, room, other_room, operator):
    primary = services.open_incident(room=room, incident_type="platform-outage", actor=operator, title="CDN 故障")
    duplicate = services.open_incident(room=other_room, incident_type="platform-outage", actor=operator,
                                       title="第二直播间也黑屏")
    services.add_note(incident=duplicate, text="第二直播间观众反馈黑屏", actor=operator)
    client.force_login(operator)
    response = client.post(f"/incidents/{duplicate.pk}/merge", {"into": primary.pk, "reason": "同一 CDN 故障"})
    assert response.status_code == 302 and response["Location"] == f"/incidents/{primary.pk}/"
    duplicate.refresh_from_db()
    assert duplicate.duplicate_of == primary and duplicate.status == "cancelled"
    timeline = selectors.timeline(primary)
    assert any(e.incident_id == duplicate.pk and e.text == "第二直播间观众反馈黑屏" for e in timeline)
    assert any(e.kind == TimelineKind.MERGE and f"#{duplicate.pk}" in e.text for e in timeline)
    assert ControlAction.objects.filter(action="incident_merge_duplicate", target=str(duplicate.pk)).exists()
    html = client.get(f"/incidents/{primary.pk}/").content.decode()
    assert "第二直播间观众反馈黑屏" in html and f'href="/incidents/{duplicate.pk}/"' in html
    # Not deletable while linked; a duplicate is left out of the open list.
    from django.db.models import ProtectedError

    with pytest.raises(ProtectedError):
        Incident.objects.filter(pk=primary.pk).delete()
    assert f"#{duplicate.pk}" not in client.get("/incidents/open/").content.decode()


def test_merge_refusals(room, other_room, operator):
    a = services.open_incident(room=room, incident_type="platform-outage", actor=operator)
    b = services.open_incident(room=other_room, incident_type="platform-outage", actor=operator)
    with pytest.raises(services.IncidentRuleError):
        services.merge_duplicate(duplicate=a, into=a, actor=operator)
    services.merge_duplicate(duplicate=b, into=a, actor=operator)
    with pytest.raises(services.IncidentRuleError):  # b is closed now
        services.merge_duplicate(duplicate=b, into=a, actor=operator)
    with pytest.raises(services.IncidentRuleError):  # into b means into a, which is a itself
        services.merge_duplicate(duplicate=a, into=b, actor=operator)


def test_timeline_is_newest_first_and_the_quiet_filter_hides_system_noise(client, room, operator):
    incident = services.open_incident(room=room, incident_type="stream-interruption", actor=None)
    services.add_timeline_entry(incident=incident, kind=TimelineKind.ALERT, text="告警[线路中断]主线路无数据",
                                actor_label="mediaworker")
    services.add_timeline_entry(incident=incident, kind=TimelineKind.SWITCH, text="切换节目源 主线路 → 备用线路",
                                actor_label="auto")
    services.add_note(incident=incident, text="现场在查网线", actor=operator)
    services.add_timeline_entry(incident=incident, kind=TimelineKind.CONTROL, text="请求关键帧 · olivia_ops",
                                actor=operator)
    entries = selectors.timeline(incident)
    assert [e.at for e in entries] == sorted((e.at for e in entries), reverse=True)
    quiet = selectors.timeline(incident, hide_noise=True)
    kinds = {e.kind for e in quiet}
    assert "alert" not in kinds and "switch" not in kinds
    assert {"note", "detection", "control"} <= kinds  # people's actions and the detection stay
    client.force_login(operator)
    html = client.get(f"/incidents/{incident.pk}/timeline", {"quiet": "1"}, HTTP_HX_REQUEST="true").content.decode()
    assert "现场在查网线" in html and "主线路无数据" not in html
    html = client.get(f"/incidents/{incident.pk}/timeline", HTTP_HX_REQUEST="true").content.decode()
    assert "主线路无数据" in html and 'class="tl alert noise"' in html
