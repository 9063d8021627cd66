"""Real browser (Debian chromium via Playwright) against a real Daphne + Redis + media worker process."""

import asyncio
import os
import time

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from conftest import CHROMIUM_ARGS, PASSWORD, ROOT

from streams.models import Announcement

from .wall_support import health

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.slow]

ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture
async def browser():
    from playwright.async_api import async_playwright

    os.makedirs(ARTIFACTS, exist_ok=True)
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, headless=True)
        yield b
        await b.close()


async def logged_in_page(browser, base, user):
    context = await browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN")
    page = await context.new_page()
    await page.goto(base + "/login/")
    await page.fill("input[name=username]", user.username)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(base + "/")
    return page


# Mean colour of the centre of a <video>, read through a canvas in the page.
VIDEO_COLOUR_JS = """(sel) => { const v = document.querySelector(sel); if (!v || !v.videoWidth) return null;
  const c = document.createElement('canvas'); c.width = 16; c.height = 16;
  const g = c.getContext('2d'); g.drawImage(v, v.videoWidth/4, v.videoHeight/4, v.videoWidth/2, v.videoHeight/2, 0, 0, 16, 16);
  const d = g.getImageData(0, 0, 16, 16).data; let r=0, gg=0, b=0; for (let i=0;i<d.length;i+=4){r+=d[i];gg+=d[i+1];b+=d[i+2];}
  const n = d.length/4; return [r/n, gg/n, b/n]; }"""


async def wait_colour(page, selector, name, timeout=15):
    from .media_support import classify

    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        rgb = await page.evaluate(VIDEO_COLOUR_JS, selector)
        if rgb:
            seen = classify(rgb)
            if seen == name:
                return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{selector} never showed {name} (last: {seen})")


async def test_operator_sees_live_tile_and_cuts_to_backup(browser, daphne_server, subprocess_env, room, operator):
    from .media_support import Http, Publisher
    from .test_media_process import start_worker, stop, wait_lease

    worker = start_worker(subprocess_env, "wall-e2e")
    publishers = []
    try:
        await wait_lease(room.slug, "wall-e2e")
        http = Http(daphne_server)
        publishers = [await Publisher(http, room.slug, "primary", room.tokens["primary"], "red").start(),
                      await Publisher(http, room.slug, "backup", room.tokens["backup"], "green").start()]
        page = await logged_in_page(browser, daphne_server, operator)
        tile = page.locator("#tile-test-room")
        await tile.wait_for()
        await page.wait_for_function("document.body.classList.contains('ws-open')")

        # The media worker's health samples keep the tile live without a reload: both lines go green and
        # the numbers change from frame to frame.
        await page.locator("#tile-test-room-live .line[data-line=primary][data-state=ok]").wait_for(timeout=15000)
        await page.locator("#tile-test-room-live .line[data-line=backup][data-state=ok]").wait_for(timeout=15000)
        seq = int(await page.locator("#wall-seq").get_attribute("data-seq"))
        await page.wait_for_function(f"Number(document.getElementById('wall-seq').dataset.seq) > {seq + 2}",
                                     timeout=5000)

        await wait_colour(page, "#tile-test-room video", "red", timeout=20)  # live WHEP preview (Chromium)
        await page.locator("#tile-test-room-head .program-badge[data-source=primary]").wait_for(timeout=10000)
        await tile.locator("button", has_text="切到备用").click()
        await page.locator("#tile-test-room .ack.ok").wait_for(timeout=10000)
        await page.locator("#tile-test-room-head .program-badge[data-source=backup]").wait_for(timeout=5000)
        assert "olivia_ops" in await page.locator("#tile-test-room-head .switched-by").inner_text()
        await wait_colour(page, "#tile-test-room video", "green", timeout=10)  # the preview follows the program
        assert "ms" in await page.locator("#tile-test-room .ack.ok").first.inner_text()
        await page.screenshot(path=str(ARTIFACTS / "wall.png"), full_page=True)

        # The viewer page plays the same program over WHEP.
        viewer_context = await browser.new_context(viewport={"width": 1000, "height": 800})
        viewer = await viewer_context.new_page()
        await viewer.goto(f"{daphne_server}/live/{room.slug}")
        await wait_colour(viewer, "#program", "green", timeout=20)

        # Keyboard: focus the tile, "P" cuts back to primary; wall preview and viewer page follow.
        await tile.focus()
        await page.keyboard.press("p")
        await page.locator("#tile-test-room-head .program-badge[data-source=primary]").wait_for(timeout=5000)
        await wait_colour(page, "#tile-test-room video", "red", timeout=10)
        await wait_colour(viewer, "#program", "red", timeout=10)
        await viewer_context.close()
    finally:
        for p in publishers:
            await p.close()
        stop(worker)


async def test_floor_assistant_pins_apology_and_viewer_page_shows_it(browser, daphne_server, room, floor_assistant):
    floor = await logged_in_page(browser, daphne_server, floor_assistant)
    await floor.wait_for_function("document.body.classList.contains('ws-open')")
    viewer_context = await browser.new_context(viewport={"width": 1000, "height": 800}, locale="zh-CN")
    viewer = await viewer_context.new_page()
    await viewer.goto(f"{daphne_server}/live/{room.slug}")
    await viewer.wait_for_function("document.querySelector('[ws-connect]') && "
                                   "document.querySelector('[ws-connect]')['htmx-internal-data'].webSocket")
    await asyncio.sleep(0.3)
    await floor.locator("#tile-test-room button", has_text="置顶致歉").click()
    started = time.monotonic()
    await viewer.locator("#banner.pinned").wait_for(timeout=3000)
    assert time.monotonic() - started < 1.5  # "within a second" (plus the click round trip)
    pinned = await sync_to_async(lambda: Announcement.objects.get(room=room, unpinned_at__isnull=True).text)()
    assert pinned in await viewer.locator("#banner").inner_text()
    await floor.locator("#tile-test-room .ack.ok").wait_for(timeout=5000)
    await floor.locator("#tile-test-room-head .pinned").wait_for(timeout=3000)
    await viewer.locator("#chat-form input[name=chat]").fill("主播怎么卡了")
    await viewer.locator("#chat-form button").click()
    await viewer.locator("#chat-list li", has_text="主播怎么卡了").wait_for(timeout=3000)
    await viewer.screenshot(path=str(ARTIFACTS / "viewer.png"), full_page=True)
    await floor.locator("#tile-test-room .more-actions > summary").click()  # the tile's secondary actions
    await floor.locator("#tile-test-room button", has_text="取消置顶").click()
    await viewer.locator("#banner:not(.pinned)").wait_for(state="attached", timeout=3000)


async def test_host_cue_screen_receives_a_cue_and_the_tap_shows_on_the_tile(browser, daphne_server, room,
                                                                          floor_assistant):
    from streams.views import cue_screen_key

    key = await sync_to_async(cue_screen_key)(room)
    floor = await logged_in_page(browser, daphne_server, floor_assistant)
    await floor.wait_for_function("document.body.classList.contains('ws-open')")
    host_context = await browser.new_context(viewport={"width": 1000, "height": 700})
    host = await host_context.new_page()
    await host.goto(f"{daphne_server}/cue/{room.slug}?k={key}")
    await host.wait_for_function("document.body.classList.contains('ws-open')")
    await floor.locator("#tile-test-room .more-actions > summary").click()  # the tile's secondary actions
    await floor.locator("#tile-test-room .cue-form input[name=text]").fill("网络波动,已切备用线路")
    await floor.locator("#tile-test-room .cue-form button").click()
    cue = host.locator("#cues li.cue", has_text="网络波动,已切备用线路")
    await cue.wait_for(timeout=3000)
    font_px = await cue.locator(".cue-text").evaluate("e => parseFloat(getComputedStyle(e).fontSize)")
    assert font_px >= 32  # big teleprompter text
    await host.screenshot(path=str(ARTIFACTS / "cue.png"))
    await cue.click()
    await host.locator("#cues li.cue.acked").wait_for(timeout=3000)
    await floor.locator("#tile-test-room-head .cue-state.acked").wait_for(timeout=3000)

    # Room detail: both lines side by side, the floor tools, and the action history with the cue and its ack.
    await floor.goto(f"{daphne_server}/rooms/{room.slug}/")
    await floor.locator(".detail-grid .line[data-line=primary]").wait_for()
    await floor.locator(".detail-grid .line[data-line=backup]").wait_for()
    history = await floor.locator("table.data").inner_text()
    assert "发送主播提示" in history and "主播确认提示" in history  # actions by their labels, not codes
    await floor.screenshot(path=str(ARTIFACTS / "room-detail.png"), full_page=True)


async def test_alert_flashes_the_tile_lists_in_the_feed_and_is_acknowledged(browser, daphne_server, room, operator,
                                                                          tech_support):
    from streams.models import Alert, LiveRoom
    from streams.services import raise_alert

    other = await sync_to_async(LiveRoom.objects.create)(name="另一间", slug="other-room", merchant="别家",
                                                          status=LiveRoom.Status.LIVE)
    page = await logged_in_page(browser, daphne_server, tech_support)
    await page.wait_for_function("document.body.classList.contains('ws-open')")
    layer = get_channel_layer()

    async def keep_sending():  # like a media worker: one sample per room per second (else the tiles go stale)
        for _ in range(120):
            await layer.group_send("wall", {"type": "room.health", "room": other.slug,
                                            "health": health(primary_state="down", backup_state="down")})
            await layer.group_send("wall", {"type": "room.health", "room": room.slug, "health": health()})
            await asyncio.sleep(0.5)

    sender = asyncio.create_task(keep_sending())
    # The room with both lines down is listed in the attention strip; the grid keeps its order (by name).
    await page.locator("#attention-strip .attention-chip.state-down[data-slug=other-room]").wait_for(timeout=5000)
    await page.locator("#tile-other-room-live[data-status=down]").wait_for(timeout=5000)
    assert await page.evaluate("[...document.querySelectorAll('#wall-grid > .tile')].map(t => t.style.order)") == ["", ""]
    await page.select_option("#filter-status", "down")
    await page.locator("#tile-test-room").wait_for(state="hidden", timeout=3000)
    await page.locator("#tile-other-room").wait_for(state="visible", timeout=3000)
    await page.select_option("#filter-status", "")
    await page.select_option("#filter-merchant", "别家")
    await page.locator("#tile-test-room").wait_for(state="hidden", timeout=3000)
    await page.select_option("#filter-merchant", "")

    await page.evaluate("""() => { window.__beeps = 0; const C = window.AudioContext;
        window.AudioContext = function () { const c = new C(); const o = c.createOscillator.bind(c);
          c.createOscillator = () => { window.__beeps++; return o(); }; return c; }; }""")
    alert = await sync_to_async(raise_alert)(room=room, kind=Alert.Kind.LINE_DOWN, message="主线路中断",
                                             severity=Alert.Severity.CRITICAL, line_role="primary")
    item = page.locator(f"#alert-{alert.pk}")
    await item.wait_for(timeout=5000)
    await page.locator("#tile-test-room.flash").wait_for(timeout=3000)
    assert await page.evaluate("window.__beeps") == 1  # audible alert (not muted)
    await item.locator("button.ack-alert").click()
    await page.locator(f"#alert-{alert.pk}.acknowledged").wait_for(timeout=5000)
    assert "tom_tech" in await page.locator(f"#alert-{alert.pk}").inner_text()
    await sync_to_async(alert.refresh_from_db)()
    assert alert.acknowledged_by_id == tech_support.pk

    # Muted: the next alert flashes but stays silent (the preference is stored on the server).
    await page.locator("#mute-toggle button").click()
    await page.locator("#mute-toggle button[data-muted='1']").wait_for(timeout=3000)
    second = await sync_to_async(raise_alert)(room=room, kind=Alert.Kind.LINE_DEGRADED, message="丢包 8%")
    await page.locator(f"#alert-{second.pk}").wait_for(timeout=5000)
    assert await page.evaluate("window.__beeps") == 1
    sender.cancel()


IMG_COLOUR_JS = """(sel) => { const i = document.querySelector(sel); if (!i || i.hidden || !i.naturalWidth) return null;
  const c = document.createElement('canvas'); c.width = 16; c.height = 16; const g = c.getContext('2d');
  g.drawImage(i, i.naturalWidth/4, i.naturalHeight/4, i.naturalWidth/2, i.naturalHeight/2, 0, 0, 16, 16);
  const d = g.getImageData(0, 0, 16, 16).data; let r=0, gg=0, b=0; for (let k=0;k<d.length;k+=4){r+=d[k];gg+=d[k+1];b+=d[k+2];}
  const n = d.length/4; return [r/n, gg/n, b/n]; }"""


async def wait_thumbnail(page, slug, name, timeout=20):
    from .media_support import classify

    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        rgb = await page.evaluate(IMG_COLOUR_JS, f"#tile-{slug} img.snapshot")
        if rgb:
            seen = classify(rgb)
            if seen == name:
                return
        await asyncio.sleep(0.3)
    raise AssertionError(f"the thumbnail of {slug} never showed {name} (last: {seen})")


async def test_a_wall_of_twelve_rooms_shows_program_thumbnails_instead_of_live_previews(
        browser, daphne_server, subprocess_env, room, operator):
    from streams.models import IngestLine, LiveRoom

    from .media_support import Http, Publisher
    from .test_media_process import start_worker, stop, wait_lease

    def more_rooms():
        tokens = {}
        for i in range(1, 12):
            extra = LiveRoom.objects.create(name=f"大墙直播间{i:02d}", slug=f"big-{i:02d}", merchant="大墙商家",
                                            host_name="主播", status=LiveRoom.Status.LIVE)
            line = IngestLine(room=extra, role="primary")
            tokens[extra.slug] = line.set_token()
            line.save()
            IngestLine.objects.create(room=extra, role="backup")
        return tokens

    tokens = await sync_to_async(more_rooms)()
    worker = start_worker(subprocess_env, "wall-thumbs")
    publishers = []
    try:
        await wait_lease(room.slug, "wall-thumbs")
        await wait_lease("big-01", "wall-thumbs")
        http = Http(daphne_server)
        publishers = [await Publisher(http, room.slug, "primary", room.tokens["primary"], "red").start(),
                      await Publisher(http, "big-01", "primary", tokens["big-01"], "blue").start()]
        context = await browser.new_context(viewport={"width": 1600, "height": 3000}, locale="zh-CN")
        page = await context.new_page()
        await page.goto(daphne_server + "/login/")
        await page.fill("input[name=username]", operator.username)
        await page.fill("input[name=password]", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_url(daphne_server + "/")
        assert await page.locator("#wall-grid > .tile").count() == 12
        assert await page.get_attribute("#wall", "data-live-previews") == "0"

        # Each tile shows what is on its program, as a thumbnail refreshed every few seconds.
        await wait_thumbnail(page, room.slug, "red")
        await wait_thumbnail(page, "big-01", "blue")
        await page.locator("#tile-big-07 img.snapshot:not([hidden])").wait_for(timeout=15000)  # no input: the slate
        # ...and the wall opened no WebRTC session for them.
        assert await page.evaluate("[...document.querySelectorAll('.tile-preview video')].every(v => !v.srcObject)")

        # A cut shows on the thumbnail within a refresh or two.
        await page.locator("#tile-test-room button", has_text="播放垫片").click()
        await page.locator("#tile-test-room-head .program-badge[data-source=slate]").wait_for(timeout=10000)
        await wait_thumbnail(page, room.slug, "other", timeout=15)
        await page.screenshot(path=str(ARTIFACTS / "wall-12-rooms.png"))
        await context.close()
    finally:
        for p in publishers:
            await p.close()
        stop(worker)
