"""Push destinations: ops and tech support edit them, everyone on duty sees them, the stream key is masked
once saved and never reaches the audit log, the page or the logs; the worker loads the enabled ones."""

import logging

import pytest

from streams.mediaworker.bridge import load_room_settings
from streams.models import Alert, ControlAction, PushDestination

pytestmark = pytest.mark.django_db

KEY = "live_9f3a7c2e41d8secretKEY"


def add(client, room, **fields):
    data = {"new-platform": "douyin", "new-url": "rtmp://push.example.com/live", "new-stream_key": KEY,
            "new-enabled": "on"}
    data.update({f"new-{k}": v for k, v in fields.items()})
    return client.post(f"/rooms/{room.slug}/push/", data)


@pytest.mark.parametrize("persona", ["operator", "tech_support"])
def test_ops_and_tech_add_a_destination_audited_without_the_key(client, room, persona, request, caplog):
    user = request.getfixturevalue(persona)
    client.force_login(user)
    caplog.set_level(logging.DEBUG)
    answer = add(client, room)
    assert answer.status_code == 200
    dest = PushDestination.objects.get(room=room)
    assert (dest.platform, dest.url, dest.stream_key, dest.enabled) == ("douyin", "rtmp://push.example.com/live",
                                                                       KEY, True)
    html = answer.content.decode()
    assert "抖音" in html and "••••tKEY" in html and KEY not in html
    row = ControlAction.objects.get(action="push_destination_add")
    assert row.actor == user and row.room == room
    assert KEY not in str(row.detail) and KEY not in row.target and KEY not in row.reason
    assert row.detail["host"] == "push.example.com"
    assert KEY not in caplog.text
    # the card, read again: still masked
    assert KEY not in client.get(f"/rooms/{room.slug}/push/").content.decode()


@pytest.mark.parametrize("persona", ["floor_assistant", "manager"])
def test_other_roles_see_but_cannot_change_destinations(client, room, persona, request):
    dest = PushDestination.objects.create(room=room, platform="kuaishou", url="rtmp://a.example/live", stream_key=KEY)
    client.force_login(request.getfixturevalue(persona))
    card = client.get(f"/rooms/{room.slug}/push/")
    assert card.status_code == 200 and "快手" in card.content.decode() and "添加推流目的地" not in card.content.decode()
    assert add(client, room).status_code == 403
    edit = client.post(f"/rooms/{room.slug}/push/{dest.pk}/edit", {f"d{dest.pk}-platform": "douyin",
                                                                  f"d{dest.pk}-url": "rtmp://b.example/live"})
    assert edit.status_code == 403
    assert client.post(f"/rooms/{room.slug}/push/{dest.pk}/delete").status_code == 403
    dest.refresh_from_db()
    assert dest.platform == "kuaishou" and not ControlAction.objects.filter(action__startswith="push_").exists()


def test_outsider_sees_nothing(client, room, outsider):
    client.force_login(outsider)
    assert client.get(f"/rooms/{room.slug}/push/").status_code == 403


def test_edit_keeps_the_key_when_left_blank_and_audits_a_key_change(client, room, operator):
    client.force_login(operator)
    add(client, room)
    dest = PushDestination.objects.get(room=room)
    p = f"d{dest.pk}"
    answer = client.post(f"/rooms/{room.slug}/push/{dest.pk}/edit",
                         {f"{p}-platform": "taobao", f"{p}-url": "rtmps://push.example.com:443/app", f"{p}-stream_key": ""})
    assert answer.status_code == 200
    dest.refresh_from_db()
    assert (dest.platform, dest.url, dest.stream_key, dest.enabled) == ("taobao", "rtmps://push.example.com:443/app",
                                                                       KEY, False)
    new_key = "another_key_0123456789"
    client.post(f"/rooms/{room.slug}/push/{dest.pk}/edit",
                {f"{p}-platform": "taobao", f"{p}-url": dest.url, f"{p}-stream_key": new_key, f"{p}-enabled": "on"})
    dest.refresh_from_db()
    assert dest.stream_key == new_key and dest.enabled
    updates = list(ControlAction.objects.filter(action="push_destination_update").order_by("id"))
    assert [u.detail["key_changed"] for u in updates] == [False, True]
    assert all(KEY not in str(u.detail) and new_key not in str(u.detail) for u in updates)
    client.post(f"/rooms/{room.slug}/push/{dest.pk}/delete")
    assert not PushDestination.objects.exists()
    assert ControlAction.objects.filter(action="push_destination_delete", room=room).count() == 1


@pytest.mark.parametrize("url", ["http://push.example.com/live", "rtmp://", "rtmp://host", "rtmp://host/ live"])
def test_bad_urls_and_missing_keys_are_refused_with_the_form(client, room, operator, url):
    client.force_login(operator)
    answer = add(client, room, url=url)
    assert answer.status_code == 400 and "errorlist" in answer.content.decode()
    assert add(client, room, stream_key="").status_code == 400
    assert not PushDestination.objects.exists() and not ControlAction.objects.exists()


def test_the_worker_loads_only_enabled_destinations_with_the_full_url(room):
    on = PushDestination.objects.create(room=room, platform="douyin", url="rtmp://a.example/live/", stream_key="k1")
    PushDestination.objects.create(room=room, platform="kuaishou", url="rtmp://b.example/live", stream_key="k2",
                                   enabled=False)
    targets = load_room_settings(room.slug).destinations
    assert [(t.id, t.label, t.url) for t in targets] == [(on.pk, "douyin", "rtmp://a.example/live/k1")]


def test_a_failed_push_raises_one_alert_in_chinese(room):
    from streams.mediaworker.bridge import record_push_failed

    dest = {"id": 7, "label": "douyin", "reconnects": 3, "last_error": "Connection refused"}
    record_push_failed(room.slug, dest)
    record_push_failed(room.slug, dest)
    alert = Alert.objects.get(room=room, kind=Alert.Kind.PUSH_FAILED)
    assert alert.count == 2 and alert.severity == Alert.Severity.CRITICAL
    assert "抖音" in alert.text and "Connection refused" in alert.text


def test_the_tile_shows_each_destination_state_without_the_key(room):
    from django.utils import translation

    from streams.wall import load_room_meta, render_tile_live, tile_context

    health = {"program": {"source": "primary"}, "lines": {}, "destinations": [
        {"id": 1, "label": "douyin", "url": "rtmp://a.example/live/****", "state": "live", "bitrate_kbps": 2480,
         "fps": 30.0, "dropped_frames": 0, "reconnects": 0, "last_error": ""},
        {"id": 2, "label": "kuaishou", "url": "rtmp://b.example/live/****", "state": "failed", "bitrate_kbps": 0,
         "fps": 0.0, "dropped_frames": 61, "reconnects": 4, "last_error": "Connection refused"}]}
    meta = load_room_meta([room.slug])[room.slug]
    html = render_tile_live(tile_context(meta, health, [], 0, stale=False))
    assert 'data-destination="1" data-state="live"' in html and "抖音 <span class=\"state-label\">推流中" in html
    assert "2480 kbps" in html
    assert 'data-state="failed"' in html and "快手" in html and "推流失败" in html and "Connection refused" in html
    assert "****" not in html  # the URL is not on the tile at all
    with translation.override("en"):
        english = render_tile_live(tile_context(meta, health, [], 0, stale=False))
    assert "Douyin" in english and "Live" in english and "Kuaishou" in english and "Push failed" in english
    # stale health: no claims about the push either
    assert "data-destination" not in render_tile_live(tile_context(meta, health, [], 0, stale=True))
