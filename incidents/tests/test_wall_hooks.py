"""What the wall gets from incidents through streams.hooks: tile badges and 'declare incident'."""

import pytest

from incidents import services

hooks = pytest.importorskip("streams.hooks")
pytestmark = pytest.mark.django_db


def test_open_incident_shows_a_badge_on_the_rooms_tile(room, operator):
    assert hooks.tile_badges([room]) == {}
    incident = services.open_incident(room=room, incident_type="host-emergency", actor=operator)
    badges = hooks.tile_badges([room])[room.slug]
    assert {"label": "SEV2 主播突发状况", "url": f"/incidents/{incident.pk}/", "severity": 2} in badges
    services.transition(incident=incident, to="cancelled", actor=operator, reason="误报")
    assert hooks.tile_badges([room]) == {}


def test_declaring_from_a_tile_opens_one_incident(room, floor_assistant):
    handler = hooks.open_incident_handler()
    assert handler is not None
    first = handler(room=room, actor=floor_assistant)
    again = handler(room=room, actor=floor_assistant)
    assert first.pk == again.pk and first.created_by == floor_assistant and first.source == "manual"


def test_room_panel_partial_for_the_wall(client, room, operator, floor_assistant, outsider):
    incident = services.open_incident(room=room, incident_type="stream-interruption", actor=operator)
    client.force_login(floor_assistant)
    html = client.get(f"/incidents/room/{room.slug}/panel").content.decode()
    assert f'ws-connect="/ws/incidents/room/{room.slug}/"' in html
    assert f"#{incident.pk}" in html and "场控/助理" in html and "置顶断流公告" in html
    client.force_login(outsider)
    assert client.get(f"/incidents/room/{room.slug}/panel").status_code == 403


def test_wall_action_declares_incident_and_links_to_it(room, floor_assistant):
    actions = pytest.importorskip("streams.actions")
    import time

    result = actions.perform_action(floor_assistant, {"action": "open_incident", "room": room.slug,
                                                      "nonce": "n-incident-0001", "issued_at": time.time() * 1000})
    incident = room.incidents.get()
    assert result.outcome == "ok" and result.url == f"/incidents/{incident.pk}/"
