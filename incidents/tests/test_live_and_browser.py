"""Live updates over a real Daphne websocket, and a manager using the case library in Chromium."""

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from asgiref.sync import sync_to_async
from django.db import connections
from django.test import Client

from conftest import CHROMIUM_ARGS, PASSWORD
from incidents import services
from incidents.models import Incident, IncidentType

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def session_cookie(user):
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


async def recv_until(ws, needle, timeout=10.0):
    """Messages until one contains `needle` (fragments arrive as HTML strings)."""
    seen = []
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            raise AssertionError(f"no message with {needle!r}; got {[m[:80] for m in seen]}")
        try:
            message = await asyncio.wait_for(ws.recv(), remaining)
        except TimeoutError:
            raise AssertionError(f"no message with {needle!r}; got {[m[:80] for m in seen]}") from None
        seen.append(message)
        if needle in message:
            return message, seen


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_checklists_update_live_per_role_over_websocket(daphne_server, room, operator, floor_assistant, outsider):
    incident = services.open_incident(room=room, incident_type="stream-interruption", actor=operator)
    ops_step = incident.steps.filter(role="ops").order_by("position").first()
    url = daphne_server.replace("http", "ws") + f"/ws/incidents/{incident.pk}/"
    origin = daphne_server
    op_cookie, floor_cookie, outsider_cookie = (session_cookie(u) for u in (operator, floor_assistant, outsider))

    async def scenario():
        # No role, no socket.
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url, origin=origin, additional_headers={"Cookie": outsider_cookie}) as ws:
                await ws.recv()
        assert refused.value.response.status_code == 403
        # Foreign origin is refused by the ASGI origin validator.
        with pytest.raises(InvalidStatus):
            async with connect(url, origin="http://evil.example", additional_headers={"Cookie": op_cookie}):
                pass
        panel_url = daphne_server.replace("http", "ws") + f"/ws/incidents/room/{room.slug}/"
        async with connect(url, origin=origin, additional_headers={"Cookie": op_cookie}) as ops_ws, \
                connect(url, origin=origin, additional_headers={"Cookie": floor_cookie}) as floor_ws, \
                connect(panel_url, origin=origin, additional_headers={"Cookie": op_cookie}) as wall_ws:
            for ws in (ops_ws, floor_ws):
                assert 'data-live="1"' in await asyncio.wait_for(ws.recv(), 5)  # groups joined
            await sync_to_async(services.complete_step)(step=ops_step, actor=operator, run_action=False)
            ops_msg, _ = await recv_until(ops_ws, 'id="checklist-ops"')
            assert "olivia_ops" in ops_msg and ops_step.title in ops_msg
            _, floor_seen = await recv_until(floor_ws, 'id="checklist-floor_control"')  # the last fragment
            progress = next(m for m in floor_seen if 'id="checklist-progress"' in m)
            assert "1/4" in progress
            timeline = next(m for m in floor_seen if 'id="incident-timeline"' in m)
            assert "完成步骤" in timeline and "olivia_ops" in timeline
            assert not any('id="checklist-ops"' in m for m in floor_seen)  # other roles' checklists stay private
            # The wall's room panel for ops shows the ops progress and the next ops step.
            panel, _ = await recv_until(wall_ws, f'id="incident-panel-{room.slug}"')
            assert "后台运营 1/4" in panel and f"#{incident.pk}" in panel
        await sync_to_async(connections.close_all)()  # the worker thread's connection

    asyncio.run(scenario())


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_manager_filters_the_library_and_opens_a_case(daphne_server, room, manager, operator):
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    other = IncidentType.objects.get(slug="device-failure")
    router = services.open_incident(room=room, incident_type="stream-interruption", actor=operator,
                                    title="夜间主线路断流")
    services.transition(incident=router, to="acknowledged", actor=operator)
    services.add_note(incident=router, text="现场确认路由器重启", actor=operator)
    services.transition(incident=router, to="resolved", actor=operator, cause="机房路由器重启导致主线路断流",
                        handling="自动切到备用线路,路由器恢复后切回", outcome="观众无感知")
    Incident.objects.create(room=room, incident_type=other, title="麦克风没电", status="resolved",
                            cause="麦克风电池耗尽", handling="换备用麦克风", outcome="静音 40 秒")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900}, locale="zh-CN")
            page.goto(daphne_server + "/login/?next=/incidents/")
            page.fill("input[name=username]", manager.username)
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url("**/incidents/")
            expect(page.locator("#library-results")).to_contain_text("麦克风没电")
            page.fill("input[name=q]", "路由器")
            page.locator("#library-filters button[type=submit]").click()
            expect(page.locator("#library-results")).not_to_contain_text("麦克风没电")
            expect(page.locator("#library-results")).to_contain_text("夜间主线路断流")
            assert "q=%E8%B7%AF%E7%94%B1%E5%99%A8" in page.url  # the filter is in the address (shareable)
            page.select_option("select[name=type]", "stream-interruption")
            expect(page.locator("#library-results")).to_contain_text("共 1 条")
            page.screenshot(path=str(ARTIFACTS / "incidents-library-filtered.png"), full_page=True)
            page.click("text=夜间主线路断流")
            page.wait_for_url(f"**/incidents/{router.pk}/")
            expect(page.locator("[data-testid=incident-status]")).to_have_text("已解决")
            expect(page.locator("#incident-timeline")).to_contain_text("现场确认路由器重启")
            expect(page.locator(".case-record textarea[name=cause]")).to_have_value("机房路由器重启导致主线路断流")
            expect(page.locator("#checklist-ops")).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "incidents-case-detail.png"), full_page=True)
            page.click("text=事故分析")  # the nav link managers see
            expect(page.locator("svg.heatmap rect.cell")).to_have_count(7 * 24)
            expect(page.locator("[data-testid=rates]")).to_contain_text("夜班")
            page.screenshot(path=str(ARTIFACTS / "incidents-analytics.png"), full_page=True)
        finally:
            browser.close()


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_floor_assistant_sees_checklist_tick_live_when_a_colleague_completes_a_step(daphne_server, room,
                                                                                   floor_assistant, manager):
    from playwright.sync_api import expect, sync_playwright

    incident = services.open_incident(room=room, incident_type="host-emergency", actor=floor_assistant)
    step = incident.steps.filter(role="floor_control", action="").order_by("position").first()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900}, locale="zh-CN")
            page.goto(daphne_server + f"/login/?next=/incidents/{incident.pk}/")
            page.fill("input[name=username]", floor_assistant.username)
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"**/incidents/{incident.pk}/")
            expect(page.locator(f"#step-{step.pk} .step-done")).to_have_count(0)
            expect(page.locator("#incident-live")).to_have_attribute("data-live", "1", timeout=10000)  # joined
            # A colleague elsewhere (own thread: Playwright's sync API runs an event loop here).
            with ThreadPoolExecutor(1) as pool:
                pool.submit(services.complete_step, step=step, actor=manager, run_action=False).result()
            expect(page.locator(f"#step-{step.pk} .step-done")).to_contain_text("mia_manager", timeout=10000)
            expect(page.locator("#incident-timeline")).to_contain_text("完成步骤")
            # And this user's own click goes through htmx and updates in place.
            page.locator("#checklist-floor_control li.step.next button").first.click()
            expect(page.locator("#checklist-floor_control .step-done")).to_have_count(2)
            page.screenshot(path=str(ARTIFACTS / "incidents-live-checklist.png"), full_page=True)
        finally:
            browser.close()
