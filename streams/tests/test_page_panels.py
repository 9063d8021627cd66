"""Other apps place fragments on our pages through streams.hooks; a broken provider costs only its panel."""

import pytest

from streams import hooks

pytestmark = pytest.mark.django_db


@pytest.fixture
def extra_providers():
    """Providers registered by a test are removed afterwards (the registries are process-wide)."""
    lists = (hooks._viewer_panel_providers, hooks._room_panel_providers, hooks._wall_panel_providers)
    before = [list(p) for p in lists]
    yield
    for providers, saved in zip(lists, before):
        providers[:] = saved


def broken(*args):
    raise RuntimeError("provider bug")


def test_wall_page_keeps_working_when_a_panel_provider_fails(client, operator, room, extra_providers):
    hooks.register_wall_panel(broken)
    hooks.register_wall_panel(lambda user: None)  # nothing for this user
    hooks.register_wall_panel(lambda user: f"/panels/for/{user.username}")
    client.force_login(operator)
    page = client.get("/")
    assert page.status_code == 200
    html = page.content.decode()
    assert f'hx-get="/panels/for/{operator.username}"' in html and 'id="tile-test-room"' in html


def test_room_detail_and_viewer_page_load_registered_panels(client, operator, room, extra_providers):
    hooks.register_room_panel(lambda r, user: f"/panels/room/{r.slug}")
    hooks.register_room_panel(broken)
    hooks.register_viewer_panel(lambda r, request: f"/panels/viewer/{r.slug}")
    hooks.register_viewer_panel(broken)
    client.force_login(operator)
    detail = client.get(f"/rooms/{room.slug}/").content.decode()
    assert f'<section class="room-panel" hx-get="/panels/room/{room.slug}" hx-trigger="load"' in detail
    client.logout()
    live = client.get(f"/live/{room.slug}")
    assert live.status_code == 200
    assert f'hx-get="/panels/viewer/{room.slug}" hx-trigger="load, every 120s, panel-refresh"' in live.content.decode()


def test_registering_twice_places_the_panel_once(outsider, extra_providers):
    def provider(user):
        return "/once"

    hooks.register_wall_panel(provider)
    hooks.register_wall_panel(provider)
    assert hooks.wall_panels(outsider).count("/once") == 1
