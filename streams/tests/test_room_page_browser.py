"""The room page in a real browser (Debian chromium via Playwright) against a real Daphne on Redis:
it keeps its socket across actions, reconnects after the server goes away, never drops an action
silently, and hears only its own room."""

import asyncio
import subprocess
import sys

import pytest
from asgiref.sync import sync_to_async

from conftest import ROOT, free_port, wait_for_port

from .test_wall_browser import browser, logged_in_page  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.slow]


class Server:
    """A Daphne that can be stopped and started again on the same port."""

    def __init__(self, env):
        self.env, self.port, self.proc = env, free_port(), None
        self.url = f"http://127.0.0.1:{self.port}"
        (ROOT / "test-artifacts").mkdir(exist_ok=True)

    def start(self):
        log = open(ROOT / "test-artifacts" / f"daphne-room-page-{self.port}.log", "a")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "controlroom.asgi:application"],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait_for_port(self.port, proc=self.proc)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def server(subprocess_env):
    server = Server(subprocess_env)
    server.start()
    yield server
    server.stop()


def setup_rooms(room, user):
    from streams import hooks
    from streams.models import CannedReply, LiveRoom

    CannedReply.objects.create(title="稍等", text="请大家稍等片刻")
    other = LiveRoom.objects.create(name="别的直播间", slug="other-room", merchant="别家", status=LiveRoom.Status.LIVE)
    # An open incident: its panel on the room page has a socket of its own, which hears every cue and reply.
    hooks.open_incident_handler()(room=room, actor=user)
    return other


def actions(name):
    from streams.models import ControlAction

    return list(ControlAction.objects.filter(action=name).order_by("pk").values_list("outcome", "reason"))


async def test_the_room_page_keeps_its_socket_reconnects_and_hears_only_its_room(browser, server, room,  # noqa: F811
                                                                                 floor_assistant):
    from streams.models import Alert
    from streams.services import raise_alert

    other = await sync_to_async(setup_rooms)(room, floor_assistant)
    page = await logged_in_page(browser, server.url, floor_assistant)
    console, sockets = [], []
    page.on("console", lambda m: console.append((m.type, m.text)))
    page.on("websocket", lambda ws: sockets.append(ws.url))
    await page.goto(f"{server.url}/rooms/{room.slug}/")
    await page.wait_for_function("document.body.classList.contains('ws-open')")
    await page.locator(".incident-panel-live").wait_for()

    # Several cues and quick replies in a row: every one reaches the server and shows its result.
    for i in range(3):
        await page.locator(".cue-form input[name=text]").fill(f"第{i}条提词")
        await page.locator(".cue-form button").click()
        await page.locator(".canned button").first.click()
        await asyncio.sleep(0.3)
    await page.wait_for_function("document.querySelectorAll('.tile-acks .ack.ok').length >= 4", timeout=10000)
    await page.wait_for_function("!document.querySelector('.ack.pending, .btn.pending')", timeout=10000)
    cues = await sync_to_async(actions)("send_host_cue")
    assert [reason for _, reason in cues] == ["第0条提词", "第1条提词", "第2条提词"]
    assert [outcome for outcome, _ in cues + await sync_to_async(actions)("post_chat_reply")] == ["ok"] * 6
    assert await page.evaluate("document.body.classList.contains('ws-open')")

    # Only this room's updates: another room's alert and tile changes never reach this page.
    await sync_to_async(raise_alert)(room=other, kind=Alert.Kind.LINE_DEGRADED, message="别的直播间卡了")
    await sync_to_async(raise_alert)(room=room, kind=Alert.Kind.LINE_DEGRADED, message="本直播间卡了")
    await page.locator("#alert-list li", has_text="本直播间卡了").wait_for(timeout=5000)
    await asyncio.sleep(0.5)
    assert await page.locator("#alert-list li", has_text="别的直播间卡了").count() == 0
    assert f"ws://127.0.0.1:{server.port}/ws/wall/{room.slug}/" in sockets
    assert await page.get_attribute("#wall", "ws-connect") == f"/ws/wall/{room.slug}/"

    # The server goes away: the page says so, and an action taken meanwhile is shown as not sent.
    server.stop()
    await page.wait_for_function("document.body.classList.contains('ws-closed')", timeout=10000)
    await page.locator(".cue-form input[name=text]").fill("断线时的提词")
    await page.locator(".cue-form button").click()
    unsent = page.locator(".tile-acks .ack.unsent", has_text="未发送")
    await unsent.wait_for(timeout=3000)
    assert page.url.endswith(f"/rooms/{room.slug}/")  # the form did not navigate
    # Back again: the page reconnects by itself (to a fresh snapshot), and the retry goes through.
    server.start()
    await page.wait_for_function("document.body.classList.contains('ws-open')", timeout=20000)
    await page.locator(f"#tile-{room.slug}-live").wait_for(state="attached")
    await unsent.locator("button.retry").click()
    await page.wait_for_function(
        "Array.from(document.querySelectorAll('.tile-acks .ack.ok')).some(a => a.textContent.includes('发送提词'))"
        " && !document.querySelector('.ack.pending')", timeout=10000)
    for _ in range(50):  # earlier cues' acks also read 发送提词: wait for the retried one's audit row
        if len(await sync_to_async(actions)("send_host_cue")) >= 4:
            break
        await asyncio.sleep(0.2)
    assert [reason for _, reason in await sync_to_async(actions)("send_host_cue")][-1] == "断线时的提词"
    assert len(await sync_to_async(actions)("send_host_cue")) == 4  # sent once, not replayed

    errors = [text for kind, text in console if kind == "error"]
    assert not [e for e in errors if "other-room" in e or "oobErrorNoTarget" in e], errors
    assert not [text for kind, text in console if "frame gap" in text], console
    await page.screenshot(path=str(ROOT / "test-artifacts" / "room-page-reconnected.png"), full_page=True)
