"""Paging: a SEV1/SEV2 incident pages the on-duty roles' group robots in each platform's format and
signature (checked by a local receiver with its own implementation of the signatures), failed attempts
are logged and retried, an unanswered page is sent again and escalated to the manager on duty, and the
page's "我来处理" link makes whoever follows it the commander, once."""

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core import signing
from django.urls import reverse
from django.utils import timezone

from incidents import paging, services
from incidents.models import ClaimLink, DeliveryLog, PageDelivery, TimelineKind
from streams.models import ControlAction

from .robot_receiver import RobotReceiver

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
SECRETS = {"dingtalk": "SECdingtalk-secret-0123456789", "feishu": "feishu-secret-abcdef"}


@pytest.fixture
def deliver_inline(monkeypatch):
    """Queued deliveries run at once in this process when the paging transaction commits; retries wait
    for the tick (the test moves time instead of sleeping through the backoff)."""
    from django.db import transaction

    from controlroom import background

    monkeypatch.setattr(background, "enqueue",
                        lambda task, *args: transaction.on_commit(lambda: task.apply(args=args, throw=True)))
    monkeypatch.setattr(paging, "schedule_retry", lambda delivery_id, delay_s: None)


@pytest.fixture
def receiver():
    with RobotReceiver(secrets=SECRETS) as r:
        yield r


@pytest.fixture
def robots_(manager, receiver):
    out = {}
    out["wecom"] = paging.save_robot(actor=manager, name="运营群", platform="wecom",
                                     webhook_url=f"{receiver.base}/wecom?key={receiver.wecom_key}",
                                     roles=["ops", "floor_control"])
    out["dingtalk"] = paging.save_robot(actor=manager, name="技术群", platform="dingtalk",
                                        webhook_url=f"{receiver.base}/dingtalk?access_token=tok",
                                        secret=SECRETS["dingtalk"], roles=["tech_support"])
    out["feishu"] = paging.save_robot(actor=manager, name="经理群", platform="feishu",
                                      webhook_url=f"{receiver.base}/feishu/hook-1", secret=SECRETS["feishu"],
                                      roles=["manager"])
    return out


@pytest.fixture
def roster(manager, operator, tech_support):
    all_day = dict(weekdays="1234567", starts=time(0, 0), ends=time(0, 0))
    paging.add_shift(actor=manager, role="ops", user=operator, mobile="13800000001", **all_day)
    paging.add_shift(actor=manager, role="tech_support", user=tech_support, mobile="13800000002", **all_day)
    paging.add_shift(actor=manager, role="manager", user=manager, mobile="13800000003", **all_day)


def open_sev2(room, django_capture_on_commit_callbacks, actor=None):
    with django_capture_on_commit_callbacks(execute=True):
        return services.open_incident(room=room, incident_type="stream-interruption", actor=actor, source="line_down")


def test_shifts_cross_midnight_in_beijing_time(manager, operator):
    night = paging.add_shift(actor=manager, role="ops", user=operator, weekdays="5", starts=time(22), ends=time(2))
    friday_late = datetime(2026, 12, 4, 23, 30, tzinfo=SHANGHAI)  # a Friday
    saturday_early = datetime(2026, 12, 5, 1, 30, tzinfo=SHANGHAI)
    saturday_late = datetime(2026, 12, 5, 23, 30, tzinfo=SHANGHAI)
    friday_early = datetime(2026, 12, 4, 1, 30, tzinfo=SHANGHAI)  # belongs to Thursday's night
    assert night.covers(friday_late) and night.covers(saturday_early)
    assert not night.covers(saturday_late) and not night.covers(friday_early)
    assert [s.user for s in paging.on_duty(saturday_early)["ops"]] == [operator]
    assert paging.on_duty(saturday_early.astimezone(ZoneInfo("UTC")))["ops"] == [night]  # any zone in, Beijing used
    assert paging.on_duty(saturday_late)["ops"] == []
    assert ControlAction.objects.filter(action="duty_shift_add", actor=manager).count() == 1


def test_only_managers_edit_the_roster_and_robots(operator, tech_support):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        paging.add_shift(actor=operator, role="ops", user=operator, weekdays="1", starts=time(9), ends=time(18))
    with pytest.raises(PermissionDenied):
        paging.save_robot(actor=tech_support, name="x", platform="wecom", webhook_url="http://127.0.0.1/x",
                          roles=["ops"])


def test_sev2_pages_each_robot_in_its_platforms_format_and_signature(room, roster, robots_, receiver,
                                                                      deliver_inline,
                                                                      django_capture_on_commit_callbacks, settings):
    settings.SITE_URL = "https://ops.example.com"
    incident = open_sev2(room, django_capture_on_commit_callbacks)
    got = receiver.wait_for(2)
    assert sorted(r.platform for r in got) == ["dingtalk", "wecom"]  # the manager's robot waits for escalation
    for r in got:
        assert r.problems == [], r
    ding = next(r for r in got if r.platform == "dingtalk")
    assert ding.signature_ok is True
    assert ding.body["at"]["atMobiles"] == ["13800000001", "13800000002"]  # on-duty ops + tech, @-mentioned
    text = ding.body["markdown"]["text"]
    assert room.name in text and "SEV2" in text and f"#{incident.pk}" in text
    assert f"https://ops.example.com/incidents/{incident.pk}/" in text
    assert "https://ops.example.com/incidents/claim/" in text and "我来处理" in text
    assert "olivia_ops" in text and "tom_tech" in text
    assert "T" not in text.split("发现时间")[1][:20]  # a Beijing wall-clock time, not an ISO stamp
    wecom = next(r for r in got if r.platform == "wecom")
    assert "我来处理" in wecom.body["markdown"]["content"]

    deliveries = PageDelivery.objects.filter(incident=incident)
    assert {d.status for d in deliveries} == {"sent"} and {d.attempts for d in deliveries} == {1}
    logs = DeliveryLog.objects.filter(delivery__incident=incident)
    assert logs.count() == 2 and all(log.ok and log.http_status == 200 for log in logs)
    for log in logs:  # never the URL's key or the secret
        assert receiver.wecom_key not in log.response and SECRETS["dingtalk"] not in log.response
    incident.refresh_from_db()
    assert incident.page_round == 1 and incident.last_paged_at is not None
    entry = incident.timeline.get(kind=TimelineKind.PAGE)
    assert "已通知值班人员" in entry.text and "olivia_ops" in entry.text
    assert ControlAction.objects.filter(action="incident_page", target=str(incident.pk)).count() == 1


def test_a_bad_signature_is_refused_by_the_receiver_and_logged_as_a_failure(room, roster, manager, receiver,
                                                                             deliver_inline,
                                                                             django_capture_on_commit_callbacks):
    paging.save_robot(actor=manager, name="技术群", platform="dingtalk", secret="not-the-secret",
                      webhook_url=f"{receiver.base}/dingtalk?access_token=tok", roles=["tech_support"])
    incident = open_sev2(room, django_capture_on_commit_callbacks)
    [got] = receiver.wait_for(1)
    assert got.signature_ok is False
    delivery = PageDelivery.objects.get(incident=incident)
    assert delivery.status == "pending" and delivery.attempts == 1  # to be retried
    log = delivery.log.get()
    assert not log.ok and log.http_status == 200 and "310000" in log.response


def test_retry_after_a_500_with_backoff(room, roster, robots_, receiver, deliver_inline,
                                        django_capture_on_commit_callbacks, settings):
    settings.PAGING_RETRY_BASE_S = 30
    receiver.planned = [500]  # the first request fails
    incident = open_sev2(room, django_capture_on_commit_callbacks)
    receiver.wait_for(2)
    failed = PageDelivery.objects.get(incident=incident, status="pending")
    assert failed.attempts == 1
    first = failed.log.get()
    assert first.http_status == 500 and not first.ok and first.error == "HTTP 500"
    assert failed.next_attempt_at >= first.at + timedelta(seconds=29)  # backoff, not at once

    # Not due yet: the tick leaves it alone.
    assert paging.paging_tick(now=timezone.now())["retried"] == 0
    result = paging.paging_tick(now=failed.next_attempt_at + timedelta(seconds=1))
    assert result["retried"] == 1
    receiver.wait_for(3)
    failed.refresh_from_db()
    assert failed.status == "sent" and failed.attempts == 2
    assert [log.ok for log in failed.log.order_by("attempt")] == [False, True]


def test_gives_up_after_the_last_attempt_and_says_so_on_the_timeline(room, roster, manager, deliver_inline,
                                                                      django_capture_on_commit_callbacks, settings):
    settings.PAGING_MAX_ATTEMPTS = 2
    settings.PAGING_HTTP_TIMEOUT_S = 1
    from conftest import free_port

    paging.save_robot(actor=manager, name="运营群", platform="wecom",
                      webhook_url=f"http://127.0.0.1:{free_port()}/wecom?key=k", roles=["ops"])  # nobody listens
    incident = open_sev2(room, django_capture_on_commit_callbacks)
    delivery = PageDelivery.objects.get(incident=incident)
    assert delivery.status == "pending" and "Connection refused" in delivery.log.get().error
    paging.paging_tick(now=delivery.next_attempt_at + timedelta(seconds=1))
    delivery.refresh_from_db()
    assert delivery.status == "failed" and delivery.attempts == 2
    assert incident.timeline.filter(kind=TimelineKind.PAGE, data__failed=True).exists()


def test_unacknowledged_page_is_sent_again_and_escalated_to_the_manager_on_duty(
        room, roster, robots_, receiver, deliver_inline, django_capture_on_commit_callbacks, settings):
    settings.PAGING_ACK_MINUTES = 3
    incident = open_sev2(room, django_capture_on_commit_callbacks)
    receiver.wait_for(2)
    incident.refresh_from_db()
    # Within the window nothing happens.
    assert paging.paging_tick(now=incident.last_paged_at + timedelta(minutes=2))["escalated"] == []
    # Past it (time moved through the row, no sleeping): round 2 to the same roles plus the manager.
    with django_capture_on_commit_callbacks(execute=True):
        result = paging.paging_tick(now=incident.last_paged_at + timedelta(minutes=3, seconds=1))
    assert result["escalated"] == [incident.pk]
    got = receiver.wait_for(5)[2:]
    assert sorted(r.platform for r in got) == ["dingtalk", "feishu", "wecom"]
    feishu = next(r for r in got if r.platform == "feishu")
    assert feishu.signature_ok is True and feishu.problems == []
    card = feishu.body["card"]
    assert "升级" in card["header"]["title"]["content"]
    buttons = card["elements"][1]["actions"]
    assert buttons[0]["text"]["content"] == "我来处理" and "/incidents/claim/" in buttons[0]["url"]
    assert "mia_manager" in card["elements"][0]["text"]["content"]
    incident.refresh_from_db()
    assert incident.page_round == 2
    assert incident.timeline.filter(kind=TimelineKind.PAGE, data__escalated=True).count() == 1
    # A later tick inside the new window does not page again.
    assert paging.paging_tick(now=incident.last_paged_at + timedelta(minutes=1))["escalated"] == []


def test_an_acknowledged_incident_is_not_escalated(room, roster, robots_, receiver, deliver_inline, operator,
                                                   django_capture_on_commit_callbacks, settings):
    incident = open_sev2(room, django_capture_on_commit_callbacks)
    receiver.wait_for(2)
    services.take_command(incident=incident, actor=operator)
    incident.refresh_from_db()
    later = incident.last_paged_at + timedelta(minutes=settings.PAGING_ACK_MINUTES + 1)
    assert paging.paging_tick(now=later)["escalated"] == []
    assert PageDelivery.objects.filter(incident=incident).count() == 2


def test_sev3_and_drills_page_nobody(room, robots_, deliver_inline, django_capture_on_commit_callbacks, operator):
    with django_capture_on_commit_callbacks(execute=True):
        services.open_incident(room=room, incident_type="weak-network", actor=operator)  # SEV3
        services.open_incident(room=room, incident_type="stream-interruption", actor=operator, is_drill=True)
    assert PageDelivery.objects.count() == 0


def test_raising_to_sev2_pages(room, robots_, receiver, deliver_inline, django_capture_on_commit_callbacks, operator):
    with django_capture_on_commit_callbacks(execute=True):
        incident = services.open_incident(room=room, incident_type="weak-network", actor=operator)
        services.set_severity_and_owner(incident=incident, actor=operator, severity=2)
    receiver.wait_for(2)
    assert PageDelivery.objects.filter(incident=incident, status="sent").count() == 2


def claim_url_of(incident):
    link = ClaimLink.objects.filter(incident=incident).order_by("-round").first()
    return reverse("incidents:claim", args=[paging.claim_token(link)])


def test_claim_link_makes_the_person_commander_once(client, room, roster, robots_, receiver, deliver_inline,
                                                     operator, tech_support, django_capture_on_commit_callbacks):
    incident = open_sev2(room, django_capture_on_commit_callbacks)
    got = receiver.wait_for(2)
    text = next(r for r in got if r.platform == "dingtalk").body["markdown"]["text"]
    url = text.split("(http://127.0.0.1:8000")[1].split(")")[0]
    token = url.split("/incidents/claim/", 1)[1].strip("/")  # signed with a timestamp: compare what it names
    assert url.startswith("/incidents/claim/") and paging.read_claim_token(token) == ClaimLink.objects.get(incident=incident)

    response = client.get(url)  # not logged in: to the login page, and back here afterwards
    assert response.status_code == 302 and "/login/" in response["Location"] and "next=" in response["Location"]
    client.force_login(tech_support)
    response = client.get(url)  # a fetch of the link (a chat app's preview, prefetch) only asks
    assert response.status_code == 200 and "我来处理" in response.content.decode()
    incident.refresh_from_db()
    assert incident.commander is None
    response = client.post(url)
    assert response.status_code == 302 and response["Location"] == f"/incidents/{incident.pk}/"
    incident.refresh_from_db()
    assert incident.commander == tech_support and incident.status == "acknowledged"
    assert incident.timeline.filter(kind=TimelineKind.OWNERSHIP, actor=tech_support, data__via="link").exists()
    assert ControlAction.objects.filter(action="incident_take_command", actor=tech_support).count() == 1

    client.force_login(operator)  # the same link again: used up, the commander stays
    client.post(url)
    incident.refresh_from_db()
    assert incident.commander == tech_support
    assert ClaimLink.objects.get(incident=incident).used_by == tech_support


def test_claim_link_refuses_forged_and_expired_tokens(client, room, operator, settings, robots_, deliver_inline,
                                                      django_capture_on_commit_callbacks, outsider):
    incident = open_sev2(room, django_capture_on_commit_callbacks)
    url = claim_url_of(incident)
    client.force_login(outsider)
    assert client.get(url).status_code == 403  # no role, no command
    client.force_login(operator)
    forged = reverse("incidents:claim", args=[signing.dumps({"n": "0" * 32}, salt="other")])
    assert client.get(forged).status_code == 404
    settings.PAGING_CLAIM_LINK_HOURS = 1
    link = ClaimLink.objects.get(incident=incident)
    import time as _time
    from unittest import mock

    two_hours_ago = _time.time() - 2 * 3600
    with mock.patch("django.core.signing.time.time", return_value=two_hours_ago):
        token = paging.claim_token(link)
    response = client.post(reverse("incidents:claim", args=[token]))
    assert response.status_code == 410
    incident.refresh_from_db()
    assert incident.commander is None


def test_robot_secrets_are_masked_and_kept_when_left_blank(client, manager, robots_):
    robot = robots_["dingtalk"]
    client.force_login(manager)
    html = client.get("/incidents/duty/").content.decode()
    assert SECRETS["dingtalk"] not in html and "access_token=tok" not in html
    assert "••••" in html
    client.post(f"/incidents/duty/robots/{robot.pk}", {"name": "技术值班群", "platform": "dingtalk",
                                                        "webhook_url": "", "secret": "", "roles": ["tech_support"],
                                                        "enabled": "1"})
    robot.refresh_from_db()
    assert robot.name == "技术值班群" and robot.secret == SECRETS["dingtalk"] and "access_token=tok" in robot.webhook_url
    audit = ControlAction.objects.filter(action="paging_robot_save", target=str(robot.pk)).order_by("pk").last()
    assert audit.detail["changed"] == ["name"]
    assert SECRETS["dingtalk"] not in str(audit.detail) and "tok" not in str(audit.detail)


def test_on_duty_page_for_every_role(client, operator, floor_assistant, roster, outsider):
    client.force_login(floor_assistant)
    html = client.get("/incidents/duty/").content.decode()
    assert "olivia_ops" in html and "tom_tech" in html and "添加值班" not in html  # sees, cannot edit
    assert 'data-testid="no-robots"' in html  # and is told that nobody would be paged
    client.force_login(outsider)
    assert client.get("/incidents/duty/").status_code == 403


@pytest.mark.slow
def test_embedded_default_delivers_in_process_and_its_ticker_escalates(tmp_path):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    here = Path(__file__).resolve().parent
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(SQLITE_PATH=str(tmp_path / "embedded.sqlite3"), PAGING_TICK_S="1", PAGING_ACK_MINUTES="1",
               LOG_LEVEL="WARNING")
    with RobotReceiver(secrets={"feishu": "feishu-secret"}) as receiver:
        result = subprocess.run([sys.executable, str(here / "embedded_paging_run.py"), receiver.base], env=env,
                                capture_output=True, text=True, timeout=120, cwd=here.parents[1])
        assert result.returncode == 0, result.stderr[-3000:]
        assert json.loads(result.stdout.strip().splitlines()[-1]) == {"first": True, "second": True, "rounds": 2}
        got = receiver.received
    assert len(got) == 2 and all(r.signature_ok and not r.problems for r in got)
    assert "升级" in got[1].body["card"]["header"]["title"]["content"]


def test_manager_sends_a_test_message_to_a_robot(client, manager, robots_, receiver):
    client.force_login(manager)
    response = client.post(f"/incidents/duty/robots/{robots_['feishu'].pk}/test", follow=True)
    assert "测试消息已送达" in response.content.decode()
    [got] = receiver.wait_for(1)
    assert got.platform == "feishu" and got.signature_ok and not got.problems
    assert "测试" in got.body["card"]["header"]["title"]["content"]
    receiver.planned = [500]
    response = client.post(f"/incidents/duty/robots/{robots_['wecom'].pk}/test", follow=True)
    assert "测试失败" in response.content.decode() and "HTTP 500" in response.content.decode()
    assert ControlAction.objects.filter(action="paging_robot_test").count() == 2


def test_a_retry_for_an_incident_closed_meanwhile_is_not_sent(room, roster, robots_, receiver, deliver_inline,
                                                              operator, django_capture_on_commit_callbacks):
    receiver.planned = [500, 500]
    incident = open_sev2(room, django_capture_on_commit_callbacks)
    receiver.wait_for(2)
    services.transition(incident=incident, to="cancelled", actor=operator, reason="误报")
    paging.paging_tick(now=timezone.now() + timedelta(hours=1))
    assert len(receiver.received) == 2  # nothing more went out
    assert set(PageDelivery.objects.filter(incident=incident).values_list("status", flat=True)) == {"failed"}
