"""An operator adds a push destination on the room page in a real browser; the key is masked once saved."""

import pytest
from asgiref.sync import sync_to_async

from streams.models import ControlAction, PushDestination

from .test_wall_browser import browser, logged_in_page  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.slow]

KEY = "stream-key-abcdef123456"


async def test_operator_adds_a_destination_and_sees_only_the_masked_key(browser, daphne_server, room,  # noqa: F811
                                                                         operator):
    page = await logged_in_page(browser, daphne_server, operator)
    await page.goto(f"{daphne_server}/rooms/{room.slug}/")
    await page.click("#push-card summary:has-text('添加推流目的地')")
    await page.select_option("#push-card select[name=new-platform]", "kuaishou")
    await page.fill("#push-card input[name=new-url]", "rtmp://push.example.com/live")
    await page.fill("#push-card input[name=new-stream_key]", KEY)
    await page.click("#push-card button:has-text('添加')")
    await page.wait_for_selector("#push-card td.masked-key", timeout=10_000)
    card = await page.inner_text("#push-card")
    assert "快手" in card and "rtmp://push.example.com/live" in card and "••••3456" in card
    assert KEY not in await page.content()
    dest = await sync_to_async(PushDestination.objects.get)(room=room)
    assert dest.stream_key == KEY and dest.platform == "kuaishou" and dest.enabled
    assert await sync_to_async(ControlAction.objects.filter(action="push_destination_add", actor=operator).count)() == 1
    await page.context.close()


async def test_floor_control_sees_destinations_but_no_form(browser, daphne_server, room, floor_assistant):  # noqa: F811
    await sync_to_async(PushDestination.objects.create)(room=room, platform="douyin", url="rtmp://a.example/live",
                                                        stream_key=KEY)
    page = await logged_in_page(browser, daphne_server, floor_assistant)
    await page.goto(f"{daphne_server}/rooms/{room.slug}/")
    await page.wait_for_selector("#push-card td.masked-key", timeout=10_000)
    assert "抖音" in await page.inner_text("#push-card")
    assert await page.locator("#push-card form").count() == 0
    assert KEY not in await page.content()
    await page.context.close()
