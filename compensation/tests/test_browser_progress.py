"""In a real browser: the operator clicks "issue" and watches the progress bar fill, never backwards."""

import os
from pathlib import Path

import pytest

from compensation import services
from conftest import CHROMIUM_ARGS
from compensation.models import Budget, Campaign, Grant

from .conftest import present_during
from .test_celery_issuance import drop_stale_tasks, login_cookie, start_worker, stop

ROOT = Path(__file__).resolve().parents[2]
VIEWERS = 20_000

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL"),
              pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="needs Debian chromium")]



@pytest.fixture
def worker(subprocess_env):
    drop_stale_tasks(os.environ["REDIS_URL"])
    proc = start_worker(subprocess_env, "celery-compensation-browser.log")
    yield proc
    stop(proc)


def test_operator_issues_from_the_campaign_page_and_the_bar_only_moves_forward(
        daphne_server, worker, operator, room, outage):
    from playwright.sync_api import sync_playwright

    budget = Budget.objects.create(name="浏览器测试", total_fen=10**9, per_viewer_cap_fen=1_000,
                                   approval_threshold_fen=10**9)
    present_during(room, outage, VIEWERS)
    campaign = services.create_campaign(actor=operator, room=room, budget=budget, incident=outage,
                                        kind=Campaign.Kind.COUPON, amount_fen=200, title="断流补偿券")
    session = login_cookie(operator).split("=", 1)[1]
    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(locale="zh-CN")
            context.add_cookies([{"name": "sessionid", "value": session, "url": daphne_server}])
            page = context.new_page()
            page.goto(f"{daphne_server}/compensation/{campaign.pk}/")
            assert page.locator("td.eligible").inner_text() == str(VIEWERS)
            # Record every value the bar shows (the fragment is swapped in by the htmx ws extension).
            page.evaluate("""(id) => {
                window.__seen = [];
                const note = () => {
                    const el = document.getElementById(id);
                    if (!el) return;
                    const v = [parseInt(el.dataset.done, 10), el.dataset.status];
                    const last = window.__seen[window.__seen.length - 1];
                    if (!last || last[0] !== v[0] || last[1] !== v[1]) window.__seen.push(v);
                };
                new MutationObserver(note).observe(document.body, {childList: true, subtree: true,
                                                                   attributes: true});
                note();
            }""", f"campaign-progress-{campaign.pk}")
            page.wait_for_timeout(500)  # the websocket is connected (snapshot sent on connect)
            page.get_by_role("button", name=f"向 {VIEWERS} 位观众发放").click()
            page.wait_for_function(
                f"document.getElementById('campaign-progress-{campaign.pk}').dataset.status === 'completed'",
                timeout=90_000)
            page.screenshot(path=str(artifacts / "compensation-progress.png"), full_page=True)
            seen = page.evaluate("window.__seen")
            text = page.locator(f"#campaign-progress-{campaign.pk}").inner_text()
            page.wait_for_function("document.querySelector('#campaign-panel .status-completed') !== null",
                                   timeout=10_000)
            panel_status = page.locator("#campaign-panel .status-completed").inner_text()
        finally:
            browser.close()

    done = [d for d, _ in seen]
    assert done == sorted(done), seen                     # never backwards
    assert seen[-1] == [VIEWERS, "completed"]
    assert len({d for d in done if 0 < d < VIEWERS}) >= 2  # it moved through intermediate values
    assert f"{VIEWERS} / {VIEWERS}" in text and "已完成" in text
    assert panel_status == "已完成"  # the panel refreshed itself when the bar reported the end
    assert Grant.objects.filter(campaign=campaign).count() == VIEWERS  # the bar ends at the database count
