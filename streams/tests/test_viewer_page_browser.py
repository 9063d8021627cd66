"""The viewer page in a real browser (Debian chromium): the room's and merchant's name, never the control
room's; a portrait player on a phone with the pinned banner below the picture; a landscape player with the
banner beside it on a desktop; the public 404 page. Screenshots go to test-artifacts/."""

import os
from pathlib import Path

import pytest

from conftest import CHROMIUM_ARGS, ROOT
from streams import viewer_services

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="needs Debian chromium")]

ARTIFACTS = ROOT / "test-artifacts"
LONG_BANNER = "主线路网络波动,正在切换备用线路,预计5分钟内恢复,福利不减,请稍候,感谢大家的耐心等待!"


def boxes(page):
    return page.evaluate("""() => {
        const r = (sel) => { const b = document.querySelector(sel).getBoundingClientRect();
                             return {x: b.x, y: b.y, w: b.width, h: b.height}; };
        return {video: r('#program'), banner: r('#banner')};
    }""")


def overlap(a, b):
    w = min(a["x"] + a["w"], b["x"] + b["w"]) - max(a["x"], b["x"])
    h = min(a["y"] + a["h"], b["y"] + b["h"]) - max(a["y"], b["y"])
    return max(0, w) * max(0, h)


def central(box, share=0.6):
    """The middle `share` of a box (where the host and the product are)."""
    return {"x": box["x"] + box["w"] * (1 - share) / 2, "y": box["y"] + box["h"] * (1 - share) / 2,
            "w": box["w"] * share, "h": box["h"] * share}


def test_phone_gets_a_portrait_player_with_the_banner_below_and_the_room_not_the_control_room(
        daphne_server, room, floor_assistant):
    from playwright.sync_api import expect, sync_playwright

    viewer_services.pin_announcement(room=room, actor=floor_assistant, text=LONG_BANNER)
    os.makedirs(ARTIFACTS, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            phone = browser.new_context(locale="zh-CN", viewport={"width": 390, "height": 844},
                                        device_scale_factor=2, is_mobile=True, has_touch=True)
            page = phone.new_page()
            page.goto(f"{daphne_server}/live/{room.slug}")
            expect(page.locator("#banner.pinned")).to_contain_text("预计5分钟内恢复")
            assert page.title() == "测试直播间 · 测试商家"
            expect(page.locator(".topbar .brand")).to_have_text("测试商家")
            assert "直播中控台" not in page.locator("body").inner_text()
            b = boxes(page)
            assert b["video"]["h"] > b["video"]["w"] * 1.5, f"not a portrait player: {b}"
            assert b["video"]["w"] >= 280, f"player too narrow on a phone: {b}"
            assert overlap(b["banner"], central(b["video"])) == 0, f"banner covers the picture: {b}"
            assert overlap(b["banner"], b["video"]) <= 0.05 * b["video"]["w"] * b["video"]["h"], b
            assert b["banner"]["y"] + b["banner"]["h"] <= 844, f"banner below the fold: {b}"
            page.screenshot(path=str(ARTIFACTS / "viewer-phone-portrait-390x844.png"))

            desktop = browser.new_context(locale="zh-CN", viewport={"width": 1440, "height": 900})
            page = desktop.new_page()
            page.goto(f"{daphne_server}/live/{room.slug}")
            expect(page.locator("#banner.pinned")).to_contain_text("预计5分钟内恢复")
            b = boxes(page)
            assert b["video"]["w"] > b["video"]["h"] * 1.5, f"not a landscape player on a desktop: {b}"
            assert overlap(b["banner"], b["video"]) == 0, f"banner covers the picture: {b}"
            page.screenshot(path=str(ARTIFACTS / "viewer-desktop-1440x900.png"))
        finally:
            browser.close()


def test_unknown_room_shows_the_public_404_page(daphne_server, db):
    from playwright.sync_api import sync_playwright

    os.makedirs(ARTIFACTS, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(locale="zh-CN", viewport={"width": 390, "height": 844}).new_page()
            response = page.goto(f"{daphne_server}/live/no-such-room")
            assert response.status == 404
            text = page.locator("body").inner_text()
            assert "页面不存在" in text and "URLconf" not in text and "直播中控台" not in text
            page.screenshot(path=str(ARTIFACTS / "public-404.png"))
        finally:
            browser.close()
