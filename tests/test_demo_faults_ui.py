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
