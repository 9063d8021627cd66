"""Public routes never show Django's debug pages, even with DEBUG on (the demo runs with it)."""

import pytest
from django.urls import path

from controlroom.urls import urlpatterns as site_urlpatterns
from streams.models import LiveRoom


def broken_view(request, **kwargs):
    raise RuntimeError("secret internals: SELECT * FROM viewers")


urlpatterns = [
    path("live/<slug:slug>/boom", broken_view),
    path("compensation/api/v1/boom", broken_view),
    *site_urlpatterns,
]


@pytest.fixture
def debug_on(settings):
    settings.DEBUG = True
    return settings


@pytest.mark.django_db
def test_unknown_room_on_the_viewer_page_is_a_plain_404_even_with_debug(client, debug_on):
    response = client.get("/live/no-such-room")
    page = response.content.decode()
    assert response.status_code == 404
    assert "页面不存在" in page and "直播间已经结束" in page
    assert "URLconf" not in page and "DEBUG" not in page and "Raised by" not in page
    assert "直播中控台" not in page  # the viewer does not see the control room's name


@pytest.mark.django_db
def test_a_link_to_nowhere_does_not_list_the_urls_to_the_public(client, debug_on):
    page = client.get("/no/such/page").content.decode()
    assert "页面不存在" in page and "admin/" not in page and "URLconf" not in page


@pytest.mark.django_db
def test_public_api_routes_answer_json(client, debug_on):
    for url in ("/compensation/api/v1/nothing-here", "/whep/no-such-room/x/y/z", "/api/rooms/nope/x"):
        response = client.get(url)
        assert response.status_code == 404, url
        assert response["Content-Type"].startswith("application/json"), url
        assert response.json()["error"] == "not_found"


@pytest.mark.django_db
def test_ended_room_is_a_plain_404(client, debug_on, room):
    room.status = LiveRoom.Status.ENDED
    room.save(update_fields=["status"])
    response = client.get(f"/live/{room.slug}")
    assert response.status_code == 404 and "页面不存在" in response.content.decode()


@pytest.mark.django_db
@pytest.mark.urls("tests.test_public_error_pages")
def test_a_crash_on_a_public_route_shows_an_error_id_not_the_traceback(client, debug_on, caplog):
    client.raise_request_exception = False
    response = client.get("/live/x/boom")
    page = response.content.decode()
    assert response.status_code == 500
    assert "出了点问题" in page and "secret internals" not in page and "Traceback" not in page
    assert "错误编号" in page
    api = client.get("/compensation/api/v1/boom")
    assert api.status_code == 500 and api.json()["error"] == "internal" and "secret" not in api.content.decode()
    assert any("secret internals" in str(r.exc_info) for r in caplog.records if r.exc_info)


@pytest.mark.django_db
def test_staff_keep_the_debug_404_on_control_room_routes(client, debug_on, operator):
    client.force_login(operator)
    page = client.get("/no/such/page").content.decode()
    assert "URLconf" in page  # developers' help stays where only the team goes
