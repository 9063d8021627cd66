"""The wall's order is fixed (by name, or the operator's own, saved) and its density is the operator's
preference; a room's state never reorders the grid."""

import re

import pytest
from django.urls import reverse

from conftest import PASSWORD
from streams.models import LiveRoom, OperatorPreference

pytestmark = pytest.mark.django_db


def tiles(html):
    return re.findall(r'<article class="tile" id="tile-([\w-]+)"', html)


@pytest.fixture
def rooms(db):
    for slug, name in (("c-room", "丙"), ("a-room", "甲"), ("b-room", "乙")):
        LiveRoom.objects.create(name=name, slug=slug, merchant="商家", status=LiveRoom.Status.LIVE)


def test_order_by_name_then_the_operators_own_order_saved(client, rooms, operator):
    assert client.login(username=operator.username, password=PASSWORD)
    names = {s: LiveRoom.objects.get(slug=s).name for s in ("a-room", "b-room", "c-room")}
    by_name = tiles(client.get("/").content.decode())
    assert by_name == sorted(by_name, key=lambda s: names[s])
    grid = client.post(reverse("wall_arrangement"), {"rooms": ["c-room", "a-room"]}).content.decode()
    assert tiles(grid)[:2] == ["c-room", "a-room"] and 'data-order="custom"' in grid and 'draggable="true"' in grid
    pref = OperatorPreference.objects.get(user=operator)
    assert pref.wall_order == "custom" and pref.room_order == ["c-room", "a-room"]
    assert tiles(client.get("/").content.decode())[:2] == ["c-room", "a-room"]  # saved, not per page
    client.post(reverse("wall_arrangement"), {"order": "name"})
    assert tiles(client.get("/").content.decode()) == by_name


def test_density_auto_turns_dense_from_20_rooms_and_a_choice_is_kept(client, rooms, operator):
    assert client.login(username=operator.username, password=PASSWORD)
    assert 'class="wall-grid"' in client.get("/").content.decode()
    grid = client.post(reverse("wall_arrangement"), {"density": "dense"}).content.decode()
    assert 'class="wall-grid dense"' in grid
    assert 'class="wall-grid dense"' in client.get("/").content.decode()
    client.post(reverse("wall_arrangement"), {"density": "auto"})
    LiveRoom.objects.bulk_create([LiveRoom(name=f"间{i:02d}", slug=f"r-{i:02d}", merchant="商家",
                                           status=LiveRoom.Status.LIVE) for i in range(17)])
    assert 'class="wall-grid dense"' in client.get("/").content.decode()  # 20 rooms


def test_bad_arrangements_are_refused(client, operator, outsider):
    assert client.login(username=operator.username, password=PASSWORD)
    assert client.post(reverse("wall_arrangement"), {"density": "huge"}).status_code == 400
    assert client.post(reverse("wall_arrangement"), {"order": "attention"}).status_code == 400
    assert client.post(reverse("wall_arrangement"), {"rooms": ["x" * 51]}).status_code == 400
    client.logout()
    assert client.login(username=outsider.username, password=PASSWORD)
    assert client.post(reverse("wall_arrangement"), {"density": "dense"}).status_code == 403
