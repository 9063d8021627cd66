"""Demo rooms let ops and tech support make a simulated line misbehave from the room page."""

import pytest
from django.urls import reverse

from conftest import PASSWORD
from streams.models import LiveRoom


@pytest.fixture
def demo_room(db):
    return LiveRoom.objects.create(name="美妆专场 · 小鹿", slug="beauty-01", merchant="鹿鸣美妆旗舰店",
                                   status=LiveRoom.Status.LIVE)


@pytest.mark.parametrize("persona, sees_controls", [
    ("tech_support", True), ("operator", True), ("floor_assistant", False), ("manager", False)])
def test_fault_injection_controls_on_a_demo_room_page(client, demo_room, persona, sees_controls, request):
    user = request.getfixturevalue(persona)
    client.login(username=user.username, password=PASSWORD)
    page = client.get(reverse("room_detail", args=[demo_room.slug])).content.decode()
    assert (reverse("demo_fault", args=[demo_room.slug]) in page) is sees_controls


def test_no_fault_injection_on_a_real_room(client, room, tech_support):
    client.login(username=tech_support.username, password=PASSWORD)
    page = client.get(reverse("room_detail", args=[room.slug])).content.decode()
    assert reverse("demo_fault", args=[room.slug]) not in page


@pytest.mark.parametrize("seconds", ["nan", "inf", "-5", "999999"])
def test_a_fault_that_would_never_expire_is_refused_and_writes_nothing(client, demo_room, tech_support, seconds,
                                                                      settings, tmp_path):
    from streams.models import ControlAction

    settings.MEDIA_ROOT = str(tmp_path)
    client.login(username=tech_support.username, password=PASSWORD)
    response = client.post(reverse("demo_fault", args=[demo_room.slug]),
                           {"line": "primary", "fault": "stall", "seconds": seconds})
    assert response.status_code == 400 and "0–3600" in response.content.decode()
    assert not list(tmp_path.rglob("*")) or not any(p.is_file() for p in tmp_path.rglob("*"))
    assert not ControlAction.objects.filter(action="inject_demo_fault").exists()


def test_a_refusal_never_echoes_markup(client, demo_room, tech_support):
    client.login(username=tech_support.username, password=PASSWORD)
    response = client.post(reverse("demo_fault", args=[demo_room.slug]),
                           {"line": "<img src=x onerror=alert(1)>", "fault": "stall"})
    assert response.status_code == 400 and "<img" not in response.content.decode()
