"""In Chromium against a real Daphne: an operator sees the open incidents, clicks 我来处理 and becomes the
commander, merges a duplicate, and hides system noise in the timeline; a technician follows the
"我来处理" link of a page a group robot received, logs in and becomes the commander."""

from pathlib import Path

import pytest

from conftest import CHROMIUM_ARGS, PASSWORD
from incidents import paging, services
from incidents.models import Incident, TimelineKind
from streams.models import LiveRoom

from .robot_receiver import RobotReceiver

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def login(page, base, user, next_url):
    page.goto(base + "/login/?next=" + next_url)
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")


def test_operator_takes_command_merges_a_duplicate_and_hides_noise(daphne_server, room, operator):
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    second = LiveRoom.objects.create(name="第二直播间", slug="second-room", merchant="测试商家",
                                     status=LiveRoom.Status.LIVE)
    outage = services.open_incident(room=room, incident_type="platform-outage", actor=None, title="CDN 故障")
    services.add_timeline_entry(incident=outage, kind=TimelineKind.ALERT, text="告警[线路中断]主线路无数据",
                                actor_label="mediaworker")
    twin = services.open_incident(room=second, incident_type="platform-outage", actor=None, title="第二直播间黑屏")
    services.add_note(incident=twin, text="第二直播间观众反馈黑屏", actor=operator)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900}, locale="zh-CN")
            login(page, daphne_server, operator, "/incidents/open/")
            page.wait_for_url("**/incidents/open/")
            row = page.locator(f"tr[data-incident='{outage.pk}']")
            expect(row).to_contain_text("CDN 故障")
            expect(page.locator(f"tr[data-incident='{twin.pk}']")).to_contain_text("第二直播间黑屏")
            row.get_by_role("button", name="我来处理").click()
            expect(page.locator(f"tr[data-incident='{outage.pk}'] [data-testid=commander]")).to_have_text("olivia_ops")
            expect(page.locator(f"tr[data-incident='{outage.pk}'] .badge")).to_have_text("已响应")
            page.screenshot(path=str(ARTIFACTS / "paging-open-incidents.png"), full_page=True)

            # The twin is a duplicate of the outage: merged from its page.
            page.goto(daphne_server + f"/incidents/{twin.pk}/")
            page.select_option("[data-testid=merge-into]", str(outage.pk))
            page.get_by_role("button", name="标记为重复并关闭").click()
            page.wait_for_url(f"**/incidents/{outage.pk}/")
            timeline = page.locator("#incident-timeline")
            expect(timeline).to_contain_text("第二直播间观众反馈黑屏")
            expect(timeline).to_contain_text(f"并入重复事故 #{twin.pk}")
            expect(page.locator("[data-testid=incident-commander]")).to_have_text("olivia_ops")
            # Newest first: the merge entry is above the outage's detection.
            first = timeline.locator("li.tl").first
            expect(first).to_contain_text(f"#{twin.pk}")

            # Hide system noise: the media worker's alert goes, people's entries stay.
            expect(timeline).to_contain_text("主线路无数据")
            page.check("[data-testid=timeline-quiet]")
            expect(timeline).not_to_contain_text("主线路无数据")
            expect(timeline).to_contain_text("第二直播间观众反馈黑屏")
            page.screenshot(path=str(ARTIFACTS / "paging-merged-quiet-timeline.png"), full_page=True)
            page.uncheck("[data-testid=timeline-quiet]")
            expect(timeline).to_contain_text("主线路无数据")
        finally:
            browser.close()
    twin.refresh_from_db()
    assert twin.duplicate_of_id == outage.pk and twin.status == "cancelled"


def test_technician_follows_the_pages_link_and_becomes_commander(daphne_server, room, manager, tech_support,
                                                                 monkeypatch):
    from django.db import transaction
    from playwright.sync_api import expect, sync_playwright

    from controlroom import background

    monkeypatch.setattr(background, "enqueue",
                        lambda task, *args: transaction.on_commit(lambda: task.apply(args=args, throw=True)))
    with RobotReceiver(secrets={"feishu": "feishu-secret"}) as receiver:
        paging.save_robot(actor=manager, name="技术群", platform="feishu", webhook_url=f"{receiver.base}/feishu/h",
                          secret="feishu-secret", roles=["tech_support"])
        incident = services.open_incident(room=room, incident_type="stream-interruption", actor=None,
                                          source="line_down")
        [got] = receiver.wait_for(1)
    assert got.signature_ok is True
    url = got.body["card"]["elements"][1]["actions"][0]["url"]
    path = url.split("127.0.0.1:8000", 1)[1]  # SITE_URL's address; the test server listens elsewhere

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900}, locale="zh-CN")
            page.goto(daphne_server + path)
            page.wait_for_url("**/login/**")
            page.fill("input[name=username]", tech_support.username)
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.click("[data-testid=claim-confirm]")  # the link asks first; the press takes command
            page.wait_for_url(f"**/incidents/{incident.pk}/")
            expect(page.locator("[data-testid=incident-commander]")).to_have_text("tom_tech")
            expect(page.locator("[data-testid=incident-status]")).to_have_text("已响应")
            expect(page.locator("#incident-timeline")).to_contain_text("tom_tech 接手指挥")
            page.screenshot(path=str(ARTIFACTS / "paging-claimed-from-link.png"), full_page=True)
        finally:
            browser.close()
    incident = Incident.objects.get(pk=incident.pk)
    assert incident.commander == tech_support


def test_manager_sets_up_the_roster_and_a_robot_and_sees_who_is_on_duty(daphne_server, manager, operator):
    from playwright.sync_api import expect, sync_playwright

    from incidents.models import DutyShift, PagingRobot

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900}, locale="zh-CN")
            login(page, daphne_server, manager, "/incidents/duty/")
            page.wait_for_url("**/incidents/duty/")
            expect(page.locator("#on-duty-now dd[data-role=ops]")).to_contain_text("无人值班")
            form = page.locator("#shift-form")
            form.locator("select[name=role]").select_option("ops")
            form.locator("select[name=user]").select_option(label=operator.username)
            form.locator("input[name=starts]").fill("00:00")
            form.locator("input[name=ends]").fill("00:00")  # around the clock
            form.locator("input[name=mobile]").fill("13800000001")
            form.get_by_role("button", name="添加值班").click()
            expect(page.locator("#on-duty-now dd[data-role=ops]")).to_contain_text("olivia_ops")
            new = page.locator("#robot-new")
            new.locator("input[name=name]").fill("运营值班群")
            new.locator("select[name=platform]").select_option("dingtalk")
            new.locator("input[name=webhook_url]").fill("https://oapi.dingtalk.com/robot/send?access_token=tok-9f8e7d")
            new.locator("input[name=secret]").fill("SEC-very-secret-4321")
            new.get_by_role("button", name="添加群机器人").click()
            saved = page.locator("form.robot[data-robot]")
            expect(saved).to_have_count(1)
            expect(saved.locator("input[name=webhook_url]")).to_have_attribute("placeholder", "https://oapi.dingtalk.com/••••8e7d")
            expect(saved.locator("input[name=secret]")).to_have_attribute("placeholder", "••••4321")
            assert "SEC-very-secret" not in page.content() and "tok-9f8e7d" not in page.content()
            page.screenshot(path=str(ARTIFACTS / "paging-duty-roster.png"), full_page=True)
        finally:
            browser.close()
    assert DutyShift.objects.get().user == operator
    robot = PagingRobot.objects.get()
    assert robot.secret == "SEC-very-secret-4321" and robot.platform == "dingtalk"
