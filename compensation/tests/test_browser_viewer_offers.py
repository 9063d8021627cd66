"""In a real browser: a viewer who was watching during the outage opens the viewer page, sees the lucky bag's
join button (compensation's panel, placed by streams.hooks) and presses it."""

import os
import time
from pathlib import Path

import pytest

from compensation.models import DrawEntrant
from conftest import CHROMIUM_ARGS
from streams.models import Viewer

from .conftest import present_during
from .test_celery_issuance import drop_stale_tasks
from .test_panels_on_streams_pages import open_lucky_bag

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL"),
              pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="needs Debian chromium")]


@pytest.fixture
def no_leftover_tasks():
    """The bag's scheduled draw goes to Celery's queue; nobody runs it here, so drop it afterwards."""
    yield
    drop_stale_tasks(os.environ["REDIS_URL"])


def test_viewer_presses_join_on_the_lucky_bag_and_the_entry_is_recorded(
        daphne_server, no_leftover_tasks, operator, room, outage, budget):
    from playwright.sync_api import expect, sync_playwright

    viewer = Viewer.objects.get(pk=present_during(room, outage, 2)[0])
    bag = open_lucky_bag(operator, room, outage, budget)
    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    assert not DrawEntrant.objects.filter(campaign=bag).exists()

    # (No ORM calls inside the block: sync Playwright runs an event loop in this thread.)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(locale="zh-CN")
            context.add_cookies([{"name": "cr_device", "value": viewer.device_id, "url": daphne_server}])
            page = context.new_page()
            page.goto(f"{daphne_server}/live/{room.slug}")
            offer = page.locator(".viewer-panel .offer", has_text="断流补偿福袋")
            join = offer.get_by_role("button", name="参与")
            expect(join).to_be_visible(timeout=15_000)
            join.click()
            # The panel reloads after the press: the button gives way to "已参与".
            expect(offer.locator(".muted", has_text="已参与")).to_be_visible(timeout=15_000)
            expect(offer.get_by_role("button")).to_have_count(0)
            page.screenshot(path=str(artifacts / "viewer-lucky-bag-joined.png"))
        finally:
            browser.close()

    deadline = time.monotonic() + 5
    while not DrawEntrant.objects.filter(campaign=bag, viewer=viewer).exists():
        assert time.monotonic() < deadline, "pressing join recorded no entry"
        time.sleep(0.1)
    assert DrawEntrant.objects.get(campaign=bag, viewer=viewer).via == DrawEntrant.Via.BUTTON


def test_operator_sees_the_bag_fill_up_on_the_wall(daphne_server, no_leftover_tasks, operator, room, outage, budget):
    """The wall's compensation panel (above the tiles) keeps itself live on its own socket."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections
    from django.test import Client
    from playwright.sync_api import expect, sync_playwright

    from compensation import services

    ids = present_during(room, outage, 2)
    bag = open_lucky_bag(operator, room, outage, budget)
    client = Client()
    client.force_login(operator)
    session = client.cookies["sessionid"].value

    def viewer_joins():  # a viewer's press, from a thread with its own DB connection
        try:
            services.enter_draw(campaign_id=bag.pk, viewer=Viewer.objects.get(pk=ids[0]))
        finally:
            connections.close_all()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(locale="zh-CN")
            context.add_cookies([{"name": "sessionid", "value": session, "url": daphne_server}])
            page = context.new_page()
            page.add_init_script("document.addEventListener('htmx:wsOpen', (e) => {"
                                 " if (e.target.closest('.wall-panel')) window.__panelSocketOpen = true; });")
            page.goto(f"{daphne_server}/")
            bar = page.locator(f".wall-panels .compensation-wall #campaign-wall-{bag.pk}")
            expect(bar).to_have_attribute("data-done", "0", timeout=15_000)
            page.wait_for_function("window.__panelSocketOpen === true", timeout=15_000)
            with ThreadPoolExecutor(1) as pool:
                pool.submit(viewer_joins).result(timeout=30)
            expect(bar).to_have_attribute("data-done", "1", timeout=15_000)
            expect(page.locator(f"#tile-{room.slug}")).to_be_visible()  # the tiles are still there
        finally:
            browser.close()
