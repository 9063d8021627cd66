"""The wall in a real Chromium: it stays still (a degrading room goes to the attention strip, the clicked tile
does not move), six rooms fit above the fold at 1600x1000, a dense mode for 24 rooms that is kept, the alert
sidebar on a page without a wall (live, acknowledge all, snooze), and audio meters fed by a real audio line."""

import asyncio

import numpy as np
import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from conftest import PASSWORD

from streams.models import Alert, IngestLine, LiveRoom
from streams.services import raise_alert

from .test_wall_browser import ARTIFACTS, browser  # noqa: F401
from .wall_support import health

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.slow]


async def page_at(browser, base, user, width=1600, height=1000, path="/"):  # noqa: F811
    context = await browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN")
    page = await context.new_page()
    await page.goto(base + "/login/")
    await page.fill("input[name=username]", user.username)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(base + "/")
    if path != "/":
        await page.goto(base + path)
    return page


def make_rooms(n, prefix="room"):
    made = []
    for i in range(n):
        room = LiveRoom.objects.create(name=f"直播间{i + 2:02d}", slug=f"{prefix}-{i + 2:02d}", merchant="商家",
                                       host_name="主播", status=LiveRoom.Status.LIVE)
        IngestLine.objects.create(room=room, role="primary")
        IngestLine.objects.create(room=room, role="backup")
        made.append(room.slug)
    return made


def feed(slugs, states):
    """Like media workers: one sample per room per second (else tiles go stale); `states[slug]` picks its state."""
    layer = get_channel_layer()

    async def run():
        for _ in range(240):
            for slug in slugs:
                state = states.get(slug, "ok")
                await layer.group_send("wall", {"type": "room.health", "room": slug,
                                                "health": health(primary_state=state, backup_state=state)})
            await asyncio.sleep(0.5)

    return asyncio.create_task(run())


def history_rows(slug):
    import datetime

    from django.utils import timezone

    from streams.models import HealthSample

    room, now = LiveRoom.objects.get(slug=slug), timezone.now()
    HealthSample.objects.bulk_create([
        HealthSample(room=room, line_role=role, at=now - datetime.timedelta(seconds=10 * i), connected=True,
                     fps=30.0 - (i % 7), bitrate_kbps=1200.0 + 40 * (i % 5), jitter_ms=3.0 + i % 4, loss_pct=0.1 * (i % 3))
        for i in range(90) for role in ("primary", "backup")])


BOXES_JS = """() => [...document.querySelectorAll('#wall-grid > .tile')].map(t => {
  const r = t.getBoundingClientRect(); return {slug: t.dataset.slug, x: r.x, y: r.y, right: r.right, bottom: r.bottom}; })"""


async def test_six_rooms_fit_above_the_fold_and_a_degrading_room_does_not_move_the_clicked_tile(
        browser, daphne_server, room, operator):  # noqa: F811
    slugs = [room.slug] + await sync_to_async(make_rooms)(5)
    states = {}
    sender = feed(slugs, states)
    try:
        page = await page_at(browser, daphne_server, operator)
        await page.wait_for_function("document.body.classList.contains('ws-open')")
        for slug in slugs:
            await page.locator(f"#tile-{slug}-live[data-status=ok]").wait_for(timeout=10000)
        boxes = await page.evaluate(BOXES_JS)
        assert len(boxes) == 6
        await page.screenshot(path=str(ARTIFACTS / "wall-6-rooms-1600x1000.png"))
        # everything of the six tiles is on screen at 1600x1000, 4 to 6 a row
        assert all(b["bottom"] <= 1000 and b["right"] <= 1600 for b in boxes), boxes
        first_row = [b for b in boxes if abs(b["y"] - boxes[0]["y"]) < 2]
        assert 4 <= len(first_row) <= 6

        # The operator clicks the third tile; then another room degrades, then goes down.
        clicked = boxes[2]["slug"]
        await page.locator(f"#tile-{clicked} .tile-title").click()
        before = await page.evaluate(BOXES_JS)
        victim = boxes[4]["slug"]
        states[victim] = "degraded"
        chip = page.locator(f"#attention-strip .attention-chip[data-slug='{victim}']")
        await chip.wait_for(timeout=5000)
        states[victim] = "down"
        await page.locator(f"#attention-strip .attention-chip.state-down[data-slug='{victim}']").wait_for(timeout=5000)
        await page.locator(f"#tile-{victim}-live[data-status=down]").wait_for(timeout=5000)
        after = await page.evaluate(BOXES_JS)
        assert after == before  # nothing moved: not the clicked tile, not any other
        assert await page.evaluate("document.activeElement.closest('.tile').dataset.slug") == clicked
        await page.screenshot(path=str(ARTIFACTS / "wall-attention-strip.png"))

        # The chip is a reference: it brings the room's tile into focus without moving anything.
        await chip.click()
        assert await page.evaluate("document.activeElement.closest('.tile').dataset.slug") == victim
        assert await page.evaluate(BOXES_JS) == before

        # A tile's "more" panel opens over the wall (nothing moves) and loads the 15-minute graphs per line.
        await sync_to_async(history_rows)(victim)
        await page.locator(f"#tile-{victim} .more-actions > summary").click()
        graphs = page.locator(f"#tile-{victim} .tile-history .line-history")
        await graphs.wait_for(timeout=5000)
        assert await graphs.locator(".history-line[data-line=primary] .history-graph").count() == 4
        assert await graphs.locator(".history-line[data-line=primary] .history-graph[data-metric=fps] path").get_attribute("d")
        assert await page.evaluate(BOXES_JS) == before
        await page.screenshot(path=str(ARTIFACTS / "wall-tile-history.png"))
    finally:
        sender.cancel()


async def test_a_wall_of_24_rooms_goes_dense_and_the_operators_choice_is_kept(browser, daphne_server, room,
                                                                           operator):  # noqa: F811
    slugs = [room.slug] + await sync_to_async(make_rooms)(23)
    page = await page_at(browser, daphne_server, operator)
    assert await page.locator("#wall-grid > .tile").count() == 24
    await page.locator("#wall-grid.dense").wait_for(timeout=3000)  # "auto": dense from 20 rooms
    boxes = await page.evaluate(BOXES_JS)
    first_row = [b for b in boxes if abs(b["y"] - boxes[0]["y"]) < 2]
    assert len(first_row) >= 6
    assert [b["slug"] for b in boxes] == sorted(slugs, key=lambda s: (s != room.slug, s))  # by name
    await page.screenshot(path=str(ARTIFACTS / "wall-24-rooms-dense.png"))

    await page.select_option("#wall-density", "normal")
    await page.locator("#wall-grid:not(.dense)").wait_for(timeout=5000)
    await page.select_option("#wall-density", "dense")
    await page.locator("#wall-grid.dense").wait_for(timeout=5000)
    await page.reload()
    await page.locator("#wall-grid.dense").wait_for(timeout=5000)
    assert await page.locator("#wall-density").input_value() == "dense"


async def test_the_alert_sidebar_on_an_incident_page_acknowledges_all_and_snoozes_a_room(
        browser, daphne_server, room, operator):  # noqa: F811
    other = (await sync_to_async(make_rooms)(1, prefix="side"))[0]
    other_room = await sync_to_async(LiveRoom.objects.get)(slug=other)
    for _ in range(3):
        await sync_to_async(raise_alert)(room=room, kind=Alert.Kind.LINE_DEGRADED, message="丢包 8%")
    await sync_to_async(raise_alert)(room=other_room, kind=Alert.Kind.LINE_DOWN, message="主线路中断",
                                     severity=Alert.Severity.CRITICAL)
    page = await page_at(browser, daphne_server, operator, path="/incidents/new")
    await page.wait_for_function("document.body.classList.contains('alerts-open')")
    mine = page.locator("#triage-test-room")
    assert "× 3" in await mine.inner_text()
    assert "线路劣化" in await mine.inner_text()

    # Live: a new alert of another kind joins the room's group without a reload.
    await sync_to_async(raise_alert)(room=room, kind=Alert.Kind.AUTO_FAILOVER, message="自动切换",
                                     severity=Alert.Severity.CRITICAL)
    await mine.locator("li[data-severity=critical]").wait_for(timeout=5000)
    await page.screenshot(path=str(ARTIFACTS / "sidebar-incident-page.png"), full_page=True)

    # Severity filter: critical only hides the warning entries (kept per browser).
    await page.select_option("#alert-severity", "critical")
    assert not await mine.locator("li[data-severity=warning]").is_visible()
    await page.select_option("#alert-severity", "info")

    # Acknowledge all for one room: its group goes, the other room's stays.
    await mine.locator("button.ack-room").click()
    await mine.wait_for(state="detached", timeout=5000)
    assert await sync_to_async(Alert.objects.filter(room=room, acknowledged_at__isnull=True).count)() == 0
    await page.locator(f"#triage-{other}").wait_for()

    # Snooze the other room for an hour: the state shows in Shanghai time; its next alert is listed silently.
    group = page.locator(f"#triage-{other}")
    await group.locator("select[name=duration]").select_option("1h")
    await group.locator("button.snooze").click()
    await group.locator(".snooze-state").wait_for(timeout=5000)
    text = await group.locator(".snooze-state").inner_text()
    assert text.startswith("已静音至 ") and len(text.split()[-1]) == 5  # HH:MM
    await page.screenshot(path=str(ARTIFACTS / "sidebar-snoozed.png"), full_page=True)

    wall = await page_at(browser, daphne_server, operator)
    await wall.wait_for_function("document.body.classList.contains('ws-open')")
    await wall.evaluate("""() => { window.__beeps = 0; const C = window.AudioContext;
        window.AudioContext = function () { const c = new C(); const o = c.createOscillator.bind(c);
          c.createOscillator = () => { window.__beeps++; return o(); }; return c; }; }""")
    quiet = await sync_to_async(raise_alert)(room=other_room, kind=Alert.Kind.PUSH_FAILED, message="推流失败")
    await wall.locator(f"#alert-{quiet.pk}").wait_for(timeout=5000)
    await asyncio.sleep(0.5)
    assert await wall.evaluate("window.__beeps") == 0
    assert await wall.locator(f"#tile-{other}.flash").count() == 0
    # Lifted: the next alert of the room beeps again.
    await wall.locator(f"#triage-{other} button.unsnooze").click()
    await wall.locator(f"#triage-{other} .snooze-state").wait_for(state="detached", timeout=5000)
    loud = await sync_to_async(raise_alert)(room=other_room, kind=Alert.Kind.LINE_DEGRADED, message="丢包")
    await wall.locator(f"#alert-{loud.pk}").wait_for(timeout=5000)
    await wall.wait_for_function("window.__beeps === 1", timeout=3000)


async def test_audio_meters_follow_a_real_audio_line_and_say_when_it_is_silent(
        browser, daphne_server, subprocess_env, room, operator):  # noqa: F811
    from .media_support import Http, Publisher
    from .test_media_process import start_worker, stop, wait_lease

    worker = start_worker(subprocess_env, "wall-meters")
    publisher = None
    try:
        await wait_lease(room.slug, "wall-meters")
        publisher = await Publisher(Http(daphne_server), room.slug, "primary", room.tokens["primary"], "red").start()
        page = await page_at(browser, daphne_server, operator)
        meter = page.locator("#tile-test-room-live .line[data-line=primary] .audio-meter")

        async def rms_above(level, timeout=15):
            await page.wait_for_function(
                f"""() => {{ const m = document.querySelector("#tile-test-room-live .line[data-line=primary] .audio-meter");
                    return m && m.dataset.rms !== '' && Number(m.dataset.rms) > {level}; }}""", timeout=timeout * 1000)

        await rms_above(-25)  # the 8000-amplitude tone: about -15 dBFS RMS
        loud = float(await meter.get_attribute("data-rms"))
        assert float(await meter.get_attribute("data-peak")) >= loud
        width = await meter.locator(".rms").evaluate("e => e.getBoundingClientRect().width")
        assert width > 0
        await page.screenshot(path=str(ARTIFACTS / "wall-audio-meter.png"), clip=await page.locator("#tile-test-room").bounding_box())

        # The host turns down (the tone at 1/10): the meter follows, about 20 dB lower.
        publisher.audio.tone = (publisher.audio.tone / 10).astype(np.int16)
        await page.wait_for_function(
            f"""() => Number(document.querySelector("#tile-test-room-live .line[data-line=primary] .audio-meter").dataset.rms) < {loud - 12}""",
            timeout=15000)
        assert await meter.locator(".silent-label").count() == 0

        # Silence for longer than the room's silence limit: the meter says 静音.
        publisher.set_fault("silence")
        await page.locator("#tile-test-room-live .line[data-line=primary] .audio-meter.silent .silent-label").wait_for(timeout=15000)
        assert await meter.locator(".silent-label").inner_text() == "静音"
        await page.screenshot(path=str(ARTIFACTS / "wall-audio-meter-silent.png"), clip=await page.locator("#tile-test-room").bounding_box())
        publisher.set_fault(None)
        await rms_above(-40)
        await page.locator("#tile-test-room-live .line[data-line=primary] .audio-meter:not(.silent)").wait_for(timeout=15000)
    finally:
        if publisher is not None:
            await publisher.close()
        stop(worker)


async def test_the_operator_drags_a_tile_to_their_own_order_and_it_is_kept(browser, daphne_server, room,
                                                                          operator):  # noqa: F811
    from streams.models import OperatorPreference

    await sync_to_async(make_rooms)(3)
    page = await page_at(browser, daphne_server, operator)
    order = "[...document.querySelectorAll('#wall-grid > .tile')].map(t => t.dataset.slug)"
    by_name = await page.evaluate(order)  # by name (the database's collation)
    assert sorted(by_name) == ["room-02", "room-03", "room-04", "test-room"]
    await page.select_option("#wall-order", "custom")
    await page.locator("#wall-grid[data-order=custom] > .tile[draggable=true]").first.wait_for(timeout=5000)
    last, first = by_name[-1], by_name[0]
    async with page.expect_response(lambda r: r.url.endswith("/wall/arrangement") and r.request.method == "POST"):
        await page.locator(f"#tile-{last} .tile-title").drag_to(page.locator(f"#tile-{first} .tile-title"))
    await page.wait_for_function(f"{order}[0] === '{last}'", timeout=5000)
    pref = await sync_to_async(OperatorPreference.objects.get)(user=operator)
    assert pref.wall_order == "custom" and pref.room_order[0] == last
    await page.reload()
    assert (await page.evaluate(order))[0] == last  # kept across reloads
