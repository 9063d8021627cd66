"""Per-role SOP checklists: seeded runbooks, versioning, completion with permission checks, one-click actions."""

import pytest

from incidents import services
from incidents.models import IncidentStep, IncidentType, Runbook, TimelineKind
from streams import services as stream_services
from streams.models import ControlAction

pytestmark = pytest.mark.django_db

SEEDED = ["weak-network", "stream-interruption", "device-failure", "host-emergency", "content-violation",
          "platform-outage", "av-desync", "other"]


def test_every_seeded_type_has_a_runbook_for_every_role():
    assert sorted(IncidentType.objects.values_list("slug", flat=True)) == sorted(SEEDED)
    for itype in IncidentType.objects.all():
        runbook = itype.current_runbook()
        assert runbook.version == 1
        assert set(runbook.steps.values_list("role", flat=True)) == {"ops", "floor_control", "tech_support"}
    host = IncidentType.objects.get(slug="host-emergency").current_runbook()
    actions = {s.action for s in host.steps.all()}
    assert {"switch_source:slate", "pin_announcement"} <= actions
    assert host.steps.filter(title__contains="替补主播").exists()
    violation = IncidentType.objects.get(slug="content-violation").current_runbook()
    first_ops = violation.steps.filter(role="ops").order_by("position").first()
    assert first_ops.action == "switch_source:slate" and "立即" in first_ops.title
    assert violation.steps.filter(title__contains="合规负责人").exists()
    assert violation.steps.filter(title__contains="录像").exists()


def test_editing_a_runbook_creates_a_version_and_open_incidents_keep_theirs(room, operator, manager):
    itype = IncidentType.objects.get(slug="weak-network")
    running = services.open_incident(room=room, incident_type=itype, actor=operator)
    v1_titles = list(running.steps.order_by("role", "position").values_list("title", flat=True))

    v2 = services.publish_runbook_version(incident_type=itype, actor=manager, summary="加一步:通知商家", steps=[
        {"role": "ops", "title": "一键切到备用线路", "action": "switch_source:backup"},
        {"role": "ops", "title": "通知商家运营负责人"},
        {"role": "floor_control", "title": "置顶网络公告", "action": "pin_announcement", "action_param": "网络波动,稍候"},
        {"role": "tech_support", "title": "检查线路", "action": ""},
    ])
    assert v2.version == 2 and Runbook.objects.filter(incident_type=itype).count() == 2
    assert itype.current_runbook() == v2
    assert list(v2.steps.filter(role="ops").values_list("position", flat=True)) == [1, 2]
    running.refresh_from_db()
    assert running.runbook.version == 1
    assert list(running.steps.order_by("role", "position").values_list("title", flat=True)) == v1_titles
    # Version 1 rows are untouched.
    assert Runbook.objects.get(incident_type=itype, version=1).steps.count() == len(v1_titles)

    other_room_incident = services.open_incident(room=room, incident_type=itype, actor=operator, is_drill=True)
    assert other_room_incident.runbook == v2 and other_room_incident.steps.count() == 4
    assert ControlAction.objects.filter(action="runbook_publish", target="weak-network").exists()


def test_runbook_editor_over_http_publishes_new_version(client, manager, operator):
    itype = IncidentType.objects.get(slug="other")
    url = f"/incidents/types/{itype.slug}/"
    client.force_login(operator)
    assert client.get(url).status_code == 403
    client.force_login(manager)
    page = client.get(url)
    assert page.status_code == 200 and "评估影响范围" in page.content.decode()
    form = page.context["steps"]
    data = {"name": "其他", "default_severity": "3", "description": "其他情况", "summary": "改级别并加步骤",
            "steps-TOTAL_FORMS": str(len(form.forms)), "steps-INITIAL_FORMS": str(form.initial_form_count()),
            "steps-MIN_NUM_FORMS": "0", "steps-MAX_NUM_FORMS": "1000"}
    for i, f in enumerate(form.forms):
        initial = f.initial or {}
        for key in ("role", "title", "instructions", "action", "action_param"):
            data[f"steps-{i}-{key}"] = initial.get(key, "ops" if key == "role" else "")
    data[f"steps-{len(form.forms) - 1}-title"] = "通知值班经理"
    response = client.post(url, data)
    assert response.status_code == 302
    itype.refresh_from_db()
    assert itype.default_severity == 3
    assert itype.current_runbook().version == 2
    assert itype.current_runbook().steps.filter(title="通知值班经理").exists()


def _step(incident, role, action=None):
    qs = IncidentStep.objects.filter(incident=incident, role=role)
    if action is not None:
        qs = qs.filter(action=action)
    return qs.order_by("position").first()


def test_each_role_completes_only_its_own_checklist(client, room, operator, floor_assistant, tech_support,
                                                     outsider, manager):
    incident = services.open_incident(room=room, incident_type="stream-interruption", actor=operator)
    tech_step = _step(incident, "tech_support", action="")
    url = f"/incidents/{incident.pk}/steps/{tech_step.pk}/complete"

    for person in (floor_assistant, operator):
        client.force_login(person)
        assert client.post(url, {"run_action": "0"}).status_code == 403
    client.force_login(outsider)
    assert client.post(url, {"run_action": "0"}).status_code == 403
    tech_step.refresh_from_db()
    assert tech_step.completed_at is None

    client.force_login(tech_support)
    response = client.post(url, {"run_action": "0"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="checklist-tech_support"' in html and "tom_tech" in html
    tech_step.refresh_from_db()
    assert tech_step.completed_by == tech_support and tech_step.duration_ms >= 0
    entry = incident.timeline.get(kind=TimelineKind.STEP)
    assert entry.actor == tech_support and entry.data["step"] == tech_step.pk

    # A double click is harmless: still one completion, one timeline entry.
    client.post(url, {"run_action": "0"}, HTTP_HX_REQUEST="true")
    assert incident.timeline.filter(kind=TimelineKind.STEP).count() == 1


def test_incident_page_shows_each_role_its_own_checklist(client, room, operator, floor_assistant, manager):
    incident = services.open_incident(room=room, incident_type="host-emergency", actor=operator)
    client.force_login(floor_assistant)
    html = client.get(f"/incidents/{incident.pk}/").content.decode()
    assert 'id="checklist-floor_control"' in html and 'id="checklist-ops"' not in html
    assert "呼叫替补主播到场" in html and 'ws-connect="/ws/incidents/' in html
    client.force_login(operator)
    html = client.get(f"/incidents/{incident.pk}/").content.decode()
    assert 'id="checklist-ops"' in html and 'id="checklist-floor_control"' not in html
    assert "播放预录商品介绍视频垫片" in html
    client.force_login(manager)
    html = client.get(f"/incidents/{incident.pk}/").content.decode()
    assert all(f'id="checklist-{r}"' in html for r in ("ops", "floor_control", "tech_support"))


@pytest.mark.skipif(not hasattr(stream_services, "pin_announcement"), reason="wall services not merged yet")
@pytest.mark.django_db(transaction=True)  # the timeline mirrors the pin after commit
def test_one_click_announcement_step_pins_it_for_viewers(client, room, floor_assistant):
    incident = services.open_incident(room=room, incident_type="host-emergency", actor=floor_assistant)
    step = _step(incident, "floor_control", action="pin_announcement")
    client.force_login(floor_assistant)
    response = client.post(f"/incidents/{incident.pk}/steps/{step.pk}/complete", {"run_action": "1"},
                           HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    step.refresh_from_db()
    assert step.completed_at is not None
    pin = ControlAction.objects.get(action="pin_announcement", room=room)
    assert pin.actor == floor_assistant
    announcement = incident.timeline.get(kind=TimelineKind.ANNOUNCEMENT)
    assert step.action_param in announcement.text
    result = incident.timeline.get(kind=TimelineKind.STEP).data["action_result"]
    assert result["type"] == "streams.Announcement" and str(result["pk"]) == pin.target


@pytest.mark.skipif(not hasattr(stream_services, "send_host_cue"), reason="wall services not merged yet")
def test_one_click_host_cue_step_sends_the_cue(room, floor_assistant):
    incident = services.open_incident(room=room, incident_type="content-violation", actor=floor_assistant)
    step = _step(incident, "floor_control", action="send_host_cue")
    step, error = services.complete_step(step=step, actor=floor_assistant)
    assert error is None and step.completed_at is not None
    cue = ControlAction.objects.get(action="send_host_cue", room=room)
    assert "停止当前话术" in cue.reason


@pytest.mark.slow
def test_switch_step_with_media_worker_down_keeps_step_open_and_says_why(client, room, operator):
    """No media worker serves the room: the switch is recorded as failed and the step stays open."""
    incident = services.open_incident(room=room, incident_type="stream-interruption", actor=operator)
    step = _step(incident, "ops", action="switch_source:backup")
    client.force_login(operator)
    response = client.post(f"/incidents/{incident.pk}/steps/{step.pk}/complete", {"run_action": "1"},
                           HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert "动作执行失败" in response.content.decode()
    step.refresh_from_db()
    assert step.completed_at is None
    failed = ControlAction.objects.get(action="switch_source", room=room)
    assert failed.outcome in ("failed", "refused") and failed.actor == operator
    assert incident.timeline.filter(kind=TimelineKind.STEP, data__failed=True).exists()


def test_drill_report_shows_time_per_step(client, room, operator, tech_support, manager):
    from streams.models import LiveRoom

    demo = LiveRoom.objects.create(name="美妆专场 · 小鹿", slug="beauty-01", merchant="鹿鸣美妆旗舰店",
                                   status=LiveRoom.Status.LIVE)
    client.force_login(operator)
    response = client.post("/incidents/declare", {"room": "beauty-01", "incident_type": "device-failure",
                                                  "is_drill": "on", "title": "设备故障演练"})
    assert response.status_code == 302
    incident = demo.incidents.get()
    assert incident.is_drill and incident.source == "drill"
    tech_steps = list(incident.steps.filter(role="tech_support").order_by("position"))
    for step in tech_steps[:2]:
        services.complete_step(step=step, actor=tech_support, run_action=False)
    client.force_login(manager)
    html = client.get(f"/incidents/{incident.pk}/drill-report").content.decode()
    assert "演练报告" in html and tech_steps[0].title in html and "tom_tech" in html
    assert html.count('data-testid="step-duration"') == incident.steps.count()

    # Drills only against demo rooms.
    client.force_login(operator)
    response = client.post("/incidents/declare", {"room": room.slug, "incident_type": "other", "is_drill": "on"},
                           follow=True)
    assert "演练只能在演示直播间进行" in response.content.decode()
    assert not room.incidents.exists()


@pytest.mark.skipif(not hasattr(stream_services, "pin_announcement"), reason="wall services not merged yet")
@pytest.mark.django_db(transaction=True)  # the timeline mirrors the pin after commit
def test_announcement_step_can_use_a_wall_template(room, manager, floor_assistant):
    from streams.models import AnnouncementTemplate

    AnnouncementTemplate.objects.create(name="断流致歉", text="信号中断,预计 {eta} 分钟恢复", default_eta_minutes=3)
    itype = IncidentType.objects.get(slug="stream-interruption")
    services.publish_runbook_version(incident_type=itype, actor=manager, steps=[
        {"role": "floor_control", "title": "置顶断流致歉(模板)", "action": "pin_announcement",
         "action_param": "template:断流致歉"},
        {"role": "floor_control", "title": "置顶(模板不存在)", "action": "pin_announcement",
         "action_param": "template:没有这个模板"},
    ])
    incident = services.open_incident(room=room, incident_type=itype, actor=floor_assistant)
    good, bad = incident.steps.order_by("position")
    step, error = services.complete_step(step=good, actor=floor_assistant)
    assert error is None
    assert "信号中断,预计 3 分钟恢复" in incident.timeline.get(kind=TimelineKind.ANNOUNCEMENT).text
    with pytest.raises(services.IncidentRuleError, match="公告模板「没有这个模板」不存在"):
        services.complete_step(step=bad, actor=floor_assistant)
    bad.refresh_from_db()
    assert bad.completed_at is None


def test_runbook_editor_refuses_a_bad_line_parameter(client, manager):
    itype = IncidentType.objects.get(slug="other")
    client.force_login(manager)
    data = {"name": "其他", "default_severity": "4", "description": "", "summary": "",
            "steps-TOTAL_FORMS": "1", "steps-INITIAL_FORMS": "0", "steps-MIN_NUM_FORMS": "0",
            "steps-MAX_NUM_FORMS": "1000", "steps-0-role": "tech_support", "steps-0-title": "重启",
            "steps-0-instructions": "", "steps-0-action": "restart_line", "steps-0-action_param": "tertiary"}
    response = client.post(f"/incidents/types/{itype.slug}/", data)
    assert response.status_code == 200
    assert "只能是 primary 或 backup" in response.content.decode()
    assert itype.current_runbook().version == 1
