"""In Chromium: one compensation form per kind (only that kind's fields), and a manager's approve / start
issuance that answer at once and update the campaign page without a reload."""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from compensation.models import Budget, Campaign
from conftest import CHROMIUM_ARGS

from .conftest import present_during
from .test_celery_issuance import login_cookie

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="needs Debian chromium")]

# Which of the form's fields a person sees for each kind.
FIELDS = ("share_count", "share_cap_yuan", "winner_count", "keyword", "countdown_s", "valid_until")
VISIBLE = {
    "coupon": {"valid_until"},
    "red_packet": {"share_count", "share_cap_yuan", "keyword", "countdown_s"},
    "lottery": {"winner_count", "countdown_s"},
    "lucky_bag": {"winner_count", "keyword", "countdown_s"},
}
WATCH = """() => {
    window.__busy = 0;
    window.__loadedOnce = true;  // gone if the page reloads
    new MutationObserver((records) => {
        for (const r of records) if (r.target.getAttribute('aria-busy') === 'true' && r.target.disabled) window.__busy++;
    }).observe(document.body, {subtree: true, attributes: true, attributeFilter: ['aria-busy']});
}"""


def context_for(browser, server, cookie):
    context = browser.new_context(locale="zh-CN", viewport={"width": 1300, "height": 1100})
    context.add_cookies([{"name": "sessionid", "value": cookie.split("=", 1)[1], "url": server}])
    return context


def test_one_form_per_kind_then_approve_and_issue_without_reload(daphne_server, operator, manager, room, outage):
    from playwright.sync_api import expect, sync_playwright

    Budget.objects.create(name="浏览器测试", total_fen=10**9, per_viewer_cap_fen=1_000, approval_threshold_fen=100)
    present_during(room, outage, 30)
    ARTIFACTS.mkdir(exist_ok=True)
    operator_cookie, manager_cookie = login_cookie(operator), login_cookie(manager)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = context_for(browser, daphne_server, operator_cookie).new_page()
            page.goto(f"{daphne_server}/compensation/new?incident={outage.pk}")
            for kind, label in Campaign.Kind.choices:
                page.get_by_label(str(label), exact=True).check()
                for field in FIELDS:
                    control = page.locator(f"form.campaign-form [name={field}]")
                    if field in VISIBLE[kind]:
                        expect(control).to_be_visible()
                    else:
                        expect(control).to_be_hidden()
                expect(page.locator("[data-testid=amount] span:visible")).to_have_count(1)
                page.screenshot(path=str(ARTIFACTS / f"words-campaign-form-{kind}.png"), full_page=True)
            page.get_by_label(str(Campaign.Kind.COUPON.label), exact=True).check()
            page.fill("input[name=amount_yuan]", "5")
            page.get_by_role("button", name="创建草稿并预览人数与成本").click()
            page.wait_for_url("**/compensation/*/")
            with ThreadPoolExecutor(1) as pool:  # Playwright's sync API runs an event loop in this thread
                campaign = pool.submit(Campaign.objects.get, room=room).result()
            assert campaign.kind == "coupon" and campaign.status == "draft" and campaign.winner_count is None

            page = context_for(browser, daphne_server, manager_cookie).new_page()
            page.goto(f"{daphne_server}/compensation/{campaign.pk}/")
            page.evaluate(WATCH)
            page.get_by_role("button", name="审批通过").click()
            expect(page.locator("#campaign-panel .status-approved")).to_be_visible(timeout=10_000)
            page.get_by_role("button", name="向 30 位观众发放").click()
            expect(page.locator("#campaign-panel .status-issuing, #campaign-panel .status-completed")).to_be_visible(
                timeout=10_000)
            assert page.evaluate("window.__loadedOnce") is True  # updated in place, never reloaded
            assert page.evaluate("window.__busy") >= 2  # each button showed at once that it was taken
            page.screenshot(path=str(ARTIFACTS / "words-campaign-issued.png"), full_page=True)
        finally:
            browser.close()
