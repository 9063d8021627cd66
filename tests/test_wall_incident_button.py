"""Cross-app: the wall's "open incident" button goes through streams.hooks to the incidents app,
and the open incident shows as a badge on the tile (streams never imports incidents)."""

import pytest
from asgiref.sync import sync_to_async

from streams.tests.wall_support import action, communicator, receive_frames, session_cookie
from streams.tests.wall_support import stop_hubs  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("stop_hubs")]


async def test_operator_opens_an_incident_from_the_tile_and_the_badge_appears(room, operator):
    from incidents.models import Incident

    cookie = await sync_to_async(session_cookie)(operator)
    comm = communicator("/ws/wall/", cookie)
    assert (await comm.connect(timeout=10))[0]
    await comm.receive_from(timeout=5)
    await comm.send_to(text_data=action("open_incident", room.slug))
    frames = await receive_frames(comm, 2.0)
    joined = "".join(frames)
    assert 'data-outcome="ok"' in joined, joined[-500:]
    incident = await sync_to_async(Incident.objects.get)(room=room)
    assert f"/incidents/{incident.pk}/" in joined  # result link and/or the tile badge
    assert "incident-badge" in joined
    await comm.disconnect()
