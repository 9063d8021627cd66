"""The foundation, as the people who use it meet it."""

import asyncio
import time

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.urls import reverse

from conftest import PASSWORD, free_port, running_daphne
from streams.models import ControlAction, IngestLine, LiveRoom, SlateAsset
from streams.services import record_action
from streams.tests.wall_support import stop_hubs  # noqa: F401


def login(client, user):
    assert client.login(username=user.username, password=PASSWORD)
    return client


@pytest.mark.parametrize("persona", ["operator", "floor_assistant", "tech_support", "manager"])
def test_every_role_on_duty_sees_the_wall(client, persona, request, db):
    user = request.getfixturevalue(persona)
    response = login(client, user).get(reverse("home"))
    assert response.status_code == 200


def test_outsider_with_no_role_is_refused_the_wall_and_it_is_logged(client, outsider, caplog):
    response = login(client, outsider).get(reverse("home"))
    assert response.status_code == 403
    assert any("denied: user=oscar_outsider" in r.getMessage() for r in caplog.records)


def test_anonymous_visitor_is_sent_to_login(client, db):
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_only_managers_reach_the_admin_audit_log(client, manager, operator):
    manager.is_staff = True
    manager.save()
    assert login(client, operator).get("/admin/streams/controlaction/").status_code == 302  # not staff
    client.logout()
    assert login(client, manager).get("/admin/streams/controlaction/").status_code == 200


def test_audit_rows_are_written_and_cannot_be_edited(room, operator):
    row = record_action(actor=operator, action="switch_source", room=room, target="backup", reason="manual: test")
    assert ControlAction.objects.filter(pk=row.pk, actor=operator, action="switch_source").exists()
    row.target = "slate"
    with pytest.raises(ValidationError):
        row.save()
    with pytest.raises(ValidationError):
        row.delete()
    assert ControlAction.objects.get(pk=row.pk).target == "backup"


def test_audit_rows_cannot_be_edited_through_the_admin(client, room, operator, django_user_model):
    row = record_action(actor=operator, action="switch_source", room=room, target="backup")
    boss = django_user_model.objects.create_superuser("boss", password=PASSWORD)
    client.force_login(boss)
    change_url = f"/admin/streams/controlaction/{row.pk}/change/"
    assert client.get(change_url).status_code == 200  # viewable
    response = client.post(change_url, {"action": "tampered", "target": "slate", "outcome": "ok"})
    assert response.status_code == 403
    response = client.post(f"/admin/streams/controlaction/{row.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert ControlAction.objects.get(pk=row.pk).action == "switch_source"
    assert client.get("/admin/streams/controlaction/add/").status_code == 403


def test_publish_tokens_are_stored_hashed(room):
    line = IngestLine.objects.get(room=room, role="primary")
    raw = room.tokens["primary"]
    assert raw not in line.token_hash
    assert line.check_token(raw)
    assert not line.check_token(raw + "x")
    assert not line.check_token("")


def test_seed_demo_twice_leaves_the_same_data(db, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path

    def snapshot():
        return (
            sorted(LiveRoom.objects.values_list("slug", "status", "slate__name")),
            sorted(IngestLine.objects.values_list("room__slug", "role", "token_hash")),
            SlateAsset.objects.count(),
            sorted((u.username, sorted(u.groups.values_list("name", flat=True)))
                   for u in __import__("django.contrib.auth", fromlist=["get_user_model"]).get_user_model().objects.all()),
        )

    call_command("seed_demo", stdout=open("/dev/null", "w"))
    first = snapshot()
    call_command("seed_demo", stdout=open("/dev/null", "w"))
    assert snapshot() == first
    assert len(first[0]) == 6 and len(first[1]) == 12 and first[2] == 6


def test_seed_demo_logins_work(client, db, settings, tmp_path):
    from streams.demo import DEMO_USERS

    settings.MEDIA_ROOT = tmp_path
    call_command("seed_demo", stdout=open("/dev/null", "w"))
    for username, role, password in DEMO_USERS:
        assert client.login(username=username, password=password), username
        assert client.get(reverse("home")).status_code == 200
        client.logout()


def test_ui_speaks_chinese_by_default_and_english_on_request(client, db):
    # An English browser still gets Chinese until the user picks English in the header.
    page = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9").content.decode()
    assert 'lang="zh-hans"' in page
    assert "登录" in page and "密码" in page
    response = client.post(reverse("set_language"), {"language": "en", "next": reverse("login")})
    assert response.status_code == 302
    page = client.get(reverse("login")).content.decode()
    assert 'lang="en"' in page
    assert "Log in" in page and "Password" in page and "登录" not in page
    client.cookies["django_language"] = "xx-unknown"
    assert 'lang="zh-hans"' in client.get(reverse("login")).content.decode()


def test_healthz_reports_every_dependency(client, db, settings):
    response = client.get("/healthz")
    body = response.json()
    assert set(body["checks"]) == {"database", "channel_layer", "broker", "media_worker"}
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["channel_layer"]["ok"] is True
    assert body["checks"]["broker"]["ok"] is True


@pytest.mark.django_db(transaction=True)
def test_healthz_is_503_when_redis_is_unreachable(subprocess_env):
    import json
    import urllib.error
    import urllib.request

    dead_redis = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    with running_daphne({**subprocess_env, "REDIS_URL": dead_redis}) as url:
        with pytest.raises(urllib.error.HTTPError) as failure:
            urllib.request.urlopen(f"{url}/healthz", timeout=20)
    assert failure.value.code == 503
    body = json.loads(failure.value.read())
    assert body["ok"] is False
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["broker"]["ok"] is False
    assert body["checks"]["channel_layer"]["ok"] is False


async def test_idle_channel_layer_consumer_survives_ten_seconds_on_real_redis(settings):
    """redis-py 8's default 5 s socket_timeout would kill a receive blocked on BZPOPMIN."""
    if settings.EMBEDDED:
        pytest.skip("needs REDIS_URL")
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    channel = await layer.new_channel("idle-test.")
    receiver = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(11)
    assert not receiver.done(), f"receive died while idle: {receiver.exception() if receiver.done() else ''}"
    await layer.send(channel, {"type": "wake.up", "n": 1})
    message = await asyncio.wait_for(receiver, timeout=5)
    assert message == {"type": "wake.up", "n": 1}
    await layer.flush()


@pytest.mark.django_db(transaction=True)
async def test_healthz_channel_check_answers_while_the_wall_hub_waits_for_events(settings, stop_hubs):
    """A web process's wall hub blocks in a channel-layer receive most of the time (health samples come
    over pub/sub). Any other receive in the process must share its path, not queue behind it: a reply
    channel with its own prefix waited for the hub's blocking pop and /healthz (and every WHEP request
    forwarded to a media worker process) timed out."""
    if settings.EMBEDDED:
        pytest.skip("needs REDIS_URL")
    from asgiref.sync import sync_to_async

    from controlroom.views import _check_channel_layer
    from streams.wall import get_wall_hub

    await get_wall_hub()
    await asyncio.sleep(0.5)  # the hub is now blocked waiting for an event
    for _ in range(3):
        started = time.monotonic()
        assert (await sync_to_async(_check_channel_layer)())["ok"]
        assert time.monotonic() - started < 1.0


async def test_a_broadcast_from_a_worker_thread_does_not_wait_for_the_busy_event_loop(settings):
    """A wall click runs in a worker thread and broadcasts on commit. The web process's event loop is
    meanwhile busy sending frames; the broadcast must not queue behind that work (it used async_to_sync,
    which runs the send on that very loop)."""
    if settings.EMBEDDED:
        pytest.skip("needs REDIS_URL")
    import threading

    from asgiref.sync import sync_to_async
    from channels.layers import get_channel_layer

    from streams.events import send_to_group

    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add("busy-loop-test", channel)
    loop_busy, sent = threading.Event(), threading.Event()

    def click_commits():
        loop_busy.wait(timeout=5)
        send_to_group("busy-loop-test", {"type": "control.action", "n": 1})
        sent.set()

    worker = asyncio.ensure_future(sync_to_async(click_commits, thread_sensitive=False)())
    await asyncio.sleep(0.05)  # the worker thread has started
    loop_busy.set()
    assert sent.wait(timeout=2)  # blocks this loop, as a long frame send would
    await worker
    assert (await asyncio.wait_for(layer.receive(channel), 5))["n"] == 1
    await layer.group_discard("busy-loop-test", channel)


async def test_broadcasts_from_sync_code_arrive_in_the_order_they_were_committed(settings):
    """send_to_group returns at once (a click does not wait for Redis); one sender per process keeps order."""
    if settings.EMBEDDED:
        pytest.skip("needs REDIS_URL")
    from asgiref.sync import sync_to_async
    from channels.layers import get_channel_layer

    from streams.events import flush_sends, send_to_group

    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add("order-test", channel)

    def commits():
        for n in range(60):
            send_to_group("order-test", {"type": "control.action", "n": n})
        return flush_sends()

    assert await sync_to_async(commits, thread_sensitive=False)()
    received = [(await asyncio.wait_for(layer.receive(channel), 5))["n"] for _ in range(60)]
    assert received == list(range(60))
    await layer.group_discard("order-test", channel)
