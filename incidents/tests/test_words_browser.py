"""In Chromium: an incident page switched to English with the header's language switch (timeline and runbook in
English), and a step's button that shows at once it was taken, the checklist updating without a reload."""

from pathlib import Path

import pytest

from conftest import CHROMIUM_ARGS, PASSWORD
from incidents import services
from streams import services as stream_services

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True),
              pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="needs Debian chromium")]

WATCH_BUSY = """() => {
    window.__busy = [];
    window.__loadedOnce = true;  // gone if the page reloads
    new MutationObserver((records) => {
        for (const r of records) {
            if (r.type === 'attributes' && r.target.getAttribute('aria-busy') === 'true') {
                window.__busy.push({disabled: r.target.disabled, text: r.target.textContent.trim()});
            }
        }
    }).observe(document.body, {subtree: true, attributes: true, attributeFilter: ['aria-busy']});
}"""


def test_incident_page_in_english_and_a_step_button_that_answers_at_once(daphne_server, room, tech_support):
    from playwright.sync_api import expect, sync_playwright

    incident = services.open_incident(room=room, incident_type="stream-interruption", actor=tech_support)
    stream_services.record_action(actor=None, actor_label="auto", action="switch_source", room=room, target="backup",
                                  reason="auto:input_loss", latency_ms=84.0, detail={"from": "primary", "to": "backup"})
    step = incident.steps.get(role="tech_support", position=1)
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000}, locale="zh-CN")
            page.goto(daphne_server + f"/login/?next=/incidents/{incident.pk}/")
            page.fill("input[name=username]", tech_support.username)
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"**/incidents/{incident.pk}/")
            expect(page.locator("#incident-timeline")).to_contain_text("切换节目源 主线路 → 备用线路")
            page.screenshot(path=str(ARTIFACTS / "words-incident-zh.png"), full_page=True)

            # The header's language switch.
            page.select_option("select[name=language]", "en")
            page.wait_for_load_state()
            timeline = page.locator("#incident-timeline")
            expect(timeline).to_contain_text("Program source switched Primary line → Backup line")
            expect(timeline).to_contain_text("automatic: No input")
            expect(page.locator("h1")).to_contain_text(f"{room.name} · Stream interruption")
            checklist = page.locator("#checklist-tech_support")
            expect(checklist).to_contain_text("Check the encoder (OBS) and the studio network")
            body = page.locator("body").inner_text()
            for leak in ("input_loss", "auto:", "switch_source", "完成步骤", "检查推流端", "断流"):
                assert leak not in body, leak

            # Tick a step: the button is disabled and busy at once; the checklist updates in place.
            page.evaluate(WATCH_BUSY)
            page.locator(f"#step-{step.pk} button[name=run_action][value='0']").click()
            expect(page.locator(f"#step-{step.pk} .step-done")).to_contain_text(tech_support.username, timeout=10000)
            expect(timeline).to_contain_text("Completed step [Tech support] 1. Check the encoder (OBS)", timeout=10000)
            assert page.evaluate("window.__loadedOnce") is True  # no reload
            busy = page.evaluate("window.__busy")
            assert busy and all(b["disabled"] for b in busy), busy
            page.screenshot(path=str(ARTIFACTS / "words-incident-en.png"), full_page=True)
        finally:
            browser.close()


def test_audit_filter_and_declare_form_are_styled_and_speak_labels(daphne_server, room, manager, operator):
    from playwright.sync_api import expect, sync_playwright

    stream_services.record_action(actor=None, actor_label="auto", action="switch_source", room=room, target="backup",
                                  reason="auto:input_loss", latency_ms=84.0, detail={"from": "primary", "to": "backup"})
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="en-US")
            page = context.new_page()
            page.goto(daphne_server + "/login/?next=/audit/")
            page.fill("input[name=username]", manager.username)
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url("**/audit/")
            page.select_option("select[name=language]", "en")
            page.wait_for_load_state()
            filters = page.locator("form.filters")
            expect(filters.locator("select[name=room] option").first).to_have_text("All live rooms")
            expect(filters.locator("select[name=action] option").first).to_have_text("All actions")
            row = page.locator("#audit-table tr", has_text="Program source").first  # the action's label
            expect(row).to_contain_text(room.name)
            expect(row).to_contain_text("automatic: No input")
            table = page.locator("#audit-table").inner_text()
            assert not {"switch_source", "test-room", "auto:", "auto_failover"} & set(table.split()) and "auto:" not in table
            page.screenshot(path=str(ARTIFACTS / "words-audit-en.png"), full_page=True)
            # label above control, side by side: a styled filter row, not Django's bare markup
            label_box = filters.locator("label.filter").first.bounding_box()
            second_box = filters.locator("label.filter").nth(1).bounding_box()
            assert abs(label_box["y"] - second_box["y"]) < 5 and second_box["x"] > label_box["x"]

            page.goto(daphne_server + "/incidents/new")
            form = page.locator("form.stacked-form")
            expect(form.locator("select[name=room] option").first).to_have_text("Choose a room")
            expect(form.locator("select[name=incident_type] option").first).to_have_text("Choose an incident type")
            expect(form.locator("select[name=incident_type]")).to_contain_text("Stream interruption")
            assert "---------" not in form.inner_text()
            page.screenshot(path=str(ARTIFACTS / "words-declare-en.png"), full_page=True)
        finally:
            browser.close()
