"""Helpers for the wall tests: authenticated websocket communicators against the real ASGI stack."""

import json
import re
import time
import uuid

import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

ORIGIN = (b"origin", b"http://127.0.0.1")


def session_cookie(user):
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def communicator(path, cookie=None, origin=ORIGIN):
    from controlroom.asgi import application

    headers = [(b"host", b"127.0.0.1")]
    if origin:
        headers.append(origin)
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    return WebsocketCommunicator(application, path, headers=headers)


def seq_of(frame):
    match = re.search(r'id="wall-seq" hx-swap-oob="true" data-seq="(\d+)" data-sent="\d+"', frame)
    return int(match.group(1)) if match else None


def action(name, room, **extra):
    return json.dumps({"action": name, "room": room, "nonce": uuid.uuid4().hex, "issued_at": time.time() * 1000,
                       **extra})


def health(source="primary", primary_kbps=1200.0, backup_kbps=900.0, primary_state="ok", backup_state="ok", viewers=3):
    def line(kbps, state):
        return {"connected": state != "down", "bitrate_kbps": kbps, "fps": 29.9, "width": 640, "height": 360,
                "loss_pct": 0.1, "jitter_ms": 4.0, "last_frame_age_ms": 33, "frozen": False, "black": False,
                "silent": False, "audio_dbfs": -18.0, "luma": 120, "state": state}

    return {"at": "2026-11-22T00:00:00+00:00",
            "program": {"source": source, "viewers": viewers, "encode_fps": 30, "bitrate_kbps": 900},
            "lines": {"primary": line(primary_kbps, primary_state), "backup": line(backup_kbps, backup_state)}}


async def receive_frames(comm, seconds):
    """Every frame that arrives within `seconds` (without cancelling the application on timeout)."""
    import asyncio

    frames = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        if not await comm.receive_nothing(timeout=min(0.05, max(0.0, deadline - loop.time())), interval=0.01):
            frames.append(await comm.receive_from(timeout=1))
    return frames


@pytest.fixture(autouse=False)
async def stop_hubs():
    """Stop this test's hubs inside its own event loop, so no task holds the channel layer's receive lock
    when the loop closes (the next test's loop would find it locked)."""
    yield
    import asyncio

    from streams import fanout, wall

    loop = asyncio.get_running_loop()
    for hubs in (wall._hubs, fanout._hubs):
        hub = hubs.get(loop)
        if hub is not None:
            await hub.stop()
