"""The demo path: `simulate_streams` publishes the demo rooms into a real Daphne (embedded worker); a fault
injected from the command line (or the UI's service) makes the worker fail over, and a viewer sees it."""

import asyncio
import subprocess
import sys
import time

import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command

from conftest import ROOT
from streams import services
from streams.mediaworker import demo
from streams.models import ControlAction, LiveRoom

from .media_support import Http, Viewer
from .test_media_browser import embedded_daphne  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


async def test_simulated_lines_fail_over_when_a_fault_is_injected(embedded_daphne, subprocess_env, operator, settings,
                                                                  tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    await sync_to_async(call_command)("seed_demo", verbosity=0)
    await sync_to_async(lambda: LiveRoom.objects.filter(slug="snacks-02").update(input_loss_ms=300))()
    env = {**subprocess_env, "MEDIA_ROOT": str(tmp_path), "LOG_LEVEL": "WARNING"}
    sim = subprocess.Popen([sys.executable, "manage.py", "simulate_streams", "--url", embedded_daphne,
                            "--rooms", "snacks-02", "--duration", "40"], cwd=ROOT, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    viewer = None
    try:
        viewer = Viewer(Http(embedded_daphne), "snacks-02")
        deadline = time.monotonic() + 20
        while True:  # the simulator needs a moment to publish
            try:
                await viewer.start()
                break
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)
        deadline = time.monotonic() + 30
        while await sync_to_async(ControlAction.objects.filter(room__slug="snacks-02",
                                                               action="publisher_connected").count)() < 2:
            assert time.monotonic() < deadline, "the simulator never published both lines"
            await asyncio.sleep(0.3)
        await asyncio.sleep(2)  # both lines on air
        # the UI's service writes the same fault file the simulator polls
        room = await sync_to_async(LiveRoom.objects.get)(slug="snacks-02")
        action = await sync_to_async(services.inject_demo_fault)(room=room, line_role="primary", fault="stall",
                                                                  actor=operator, duration_s=20)
        assert action.action == "inject_demo_fault" and demo.read_fault("snacks-02", "primary") == "stall"
        deadline = time.monotonic() + 10
        switched = None
        while time.monotonic() < deadline and switched is None:
            switched = await sync_to_async(
                ControlAction.objects.filter(room=room, action="switch_source", reason="auto:input_loss").first)()
            await asyncio.sleep(0.2)
        assert switched is not None and switched.target == "backup" and switched.actor_label == "auto"
        # and the command line clears it
        await sync_to_async(call_command)("simulate_streams", inject="snacks-02/primary/none")
        assert demo.read_fault("snacks-02", "primary") == "none"
    finally:
        if viewer is not None and viewer.pc is not None:
            await viewer.close()
        sim.terminate()
        sim.wait(timeout=10)


def test_operator_injects_a_demo_fault_from_the_ui(client, room, operator, outsider, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    url = f"/rooms/{room.slug}/demo-fault"
    client.force_login(outsider)
    assert client.post(url, {"line": "primary", "fault": "stall"}).status_code == 403
    assert demo.read_fault(room.slug, "primary") == "none"
    client.force_login(operator)
    assert client.post(url, {"line": "primary", "fault": "melt"}).status_code == 400
    response = client.post(url, {"line": "primary", "fault": "black", "seconds": "30"})
    assert response.status_code == 200 and demo.read_fault(room.slug, "primary") == "black"
    action = ControlAction.objects.get(action="inject_demo_fault")
    assert action.actor == operator and action.target == "primary" and action.detail["duration_s"] == 30
    assert client.get(url).status_code == 405
