"""The wall's room detail page embeds our per-role checklist panel (through streams.hooks.register_room_panel)."""

import re

import pytest

from controlroom.roles import ROLE_LABELS
from incidents import services
from incidents.models import IncidentStep

pytestmark = pytest.mark.django_db


def panel_urls(html):
    return re.findall(r'<section class="room-panel" hx-get="([^"]+)"', html)


def test_operator_opening_the_room_detail_page_gets_the_ops_checklist(client, room, operator):
    incident = services.open_incident(room=room, incident_type="stream-interruption", actor=operator)
    steps = IncidentStep.objects.filter(incident=incident)
    ops_steps = [s.title for s in steps.filter(role="ops").order_by("position")]
    other_titles = set(steps.exclude(role="ops").values_list("title", flat=True)) - set(ops_steps)
    assert ops_steps and other_titles  # the runbook has steps for ops and for other roles

    client.force_login(operator)
    page = client.get(f"/rooms/{room.slug}/")
    assert page.status_code == 200
    urls = panel_urls(page.content.decode())
    assert urls == [f"/incidents/room/{room.slug}/panel"]

    panel = client.get(urls[0], headers={"HX-Request": "true"}).content.decode()
    assert f'ws-connect="/ws/incidents/room/{room.slug}/"' in panel  # stays live on its own socket
    assert f"#{incident.pk}" in panel
    assert f"{ROLE_LABELS['ops']} 0/{len(ops_steps)}" in panel and ops_steps[0] in panel
    assert 'data-role="ops"' in panel
    for role in ("floor_control", "tech_support"):
        assert str(ROLE_LABELS[role]) not in panel
    assert not any(title in panel for title in other_titles)


def test_room_panel_is_not_offered_to_someone_off_duty(room, outsider):
    from streams import hooks

    assert hooks.room_panels(room, outsider) == []


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_operator_on_the_room_detail_page_sees_the_checklist_move_live(daphne_server, room, operator):
    """In Chromium: the embedded panel loads, then follows a step ticked elsewhere over its own websocket
    (nested inside the detail page's wall socket)."""
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path

    from django.db import connections
    from django.test import Client
    from playwright.sync_api import expect, sync_playwright

    from conftest import CHROMIUM_ARGS

    incident = services.open_incident(room=room, incident_type="stream-interruption", actor=operator)
    ops_steps = list(IncidentStep.objects.filter(incident=incident, role="ops").order_by("position"))
    browser_client = Client()
    browser_client.force_login(operator)
    session = browser_client.cookies["sessionid"].value
    artifacts = Path(__file__).resolve().parents[2] / "test-artifacts"
    artifacts.mkdir(exist_ok=True)

    def tick_first_ops_step():  # another operator's click, from a thread with its own DB connection
        try:
            services.complete_step(step=IncidentStep.objects.get(pk=ops_steps[0].pk), actor=operator,
                                   run_action=False)
        finally:
            connections.close_all()

    label = str(ROLE_LABELS["ops"])
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(locale="zh-CN")
            context.add_cookies([{"name": "sessionid", "value": session, "url": daphne_server}])
            page = context.new_page()
            page.add_init_script("document.addEventListener('htmx:wsOpen', (e) => {"
                                 " if (e.target.closest('.room-panel')) window.__panelSocketOpen = true; });")
            page.goto(f"{daphne_server}/rooms/{room.slug}/")
            panel = page.locator(f".room-panel #incident-panel-{room.slug}")
            expect(panel).to_contain_text(f"{label} 0/{len(ops_steps)}", timeout=15_000)
            expect(panel.get_by_role("button", name=ops_steps[0].title)).to_be_visible()
            expect(panel).not_to_contain_text(str(ROLE_LABELS["floor_control"]))
            # Open means joined: the consumer joins the room's group before accepting.
            page.wait_for_function("window.__panelSocketOpen === true", timeout=15_000)
            with ThreadPoolExecutor(1) as pool:
                pool.submit(tick_first_ops_step).result(timeout=30)
            expect(panel).to_contain_text(f"{label} 1/{len(ops_steps)}", timeout=15_000)
            page.screenshot(path=str(artifacts / "room-detail-incident-panel.png"), full_page=True)
        finally:
            browser.close()
