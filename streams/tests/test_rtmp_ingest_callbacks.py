"""The edge's callbacks refuse whoever is not the edge, oversized or incomplete forms, and wrong keys, with
clear 4xx answers; an accepted key renames the stream so the token goes no further."""

import pytest
from django.test import Client

from streams.models import ControlAction, IngestLine

pytestmark = pytest.mark.django_db


@pytest.fixture
def rtmp_room(room):
    IngestLine.objects.filter(room=room).update(kind=IngestLine.Kind.RTMP)
    return room


def form(room, role="primary", token=None, clientid="7"):
    return {"call": "publish", "app": "ingest", "addr": "198.51.100.7", "clientid": clientid,
            "name": f"{room.slug}.{role}.{token if token is not None else room.tokens[role]}"}


def test_only_the_edge_may_call(rtmp_room):
    response = Client(REMOTE_ADDR="203.0.113.9").post("/rtmp/edge/on_publish", form(rtmp_room))
    assert response.status_code == 403
    assert not IngestLine.objects.exclude(rtmp_client="").exists()


def test_with_a_secret_the_edge_presents_it(rtmp_room, settings):
    settings.RTMP_EDGE_SECRET = "s3cret-edge"
    assert Client().post("/rtmp/edge/on_publish", form(rtmp_room)).status_code == 403  # loopback is not enough
    response = Client(REMOTE_ADDR="10.1.2.3").post("/rtmp/edge/on_publish?secret=s3cret-edge", form(rtmp_room))
    assert response.status_code == 302


def test_cheap_checks_come_first(rtmp_room):
    c = Client()
    assert c.get("/rtmp/edge/on_publish").status_code == 405
    assert c.post("/rtmp/edge/on_publish", {"name": "x" * 5000, "clientid": "1"}).status_code == 413
    assert c.post("/rtmp/edge/on_publish", {"app": "ingest"}).status_code == 400
    assert c.post("/rtmp/edge/on_publish", {"name": "no-dots-at-all", "clientid": "1"}).status_code == 403


def test_a_good_key_renames_the_stream_and_records_the_publisher(rtmp_room):
    response = Client().post("/rtmp/edge/on_publish", form(rtmp_room))
    assert response.status_code == 302 and response["Location"] == f"{rtmp_room.slug}.primary"
    line = IngestLine.objects.get(room=rtmp_room, role="primary")
    assert line.rtmp_client == "7" and line.state == IngestLine.State.CONNECTING
    action = ControlAction.objects.get(room=rtmp_room, action="rtmp_publish")
    assert action.outcome == "ok" and action.detail == {"client": "7", "addr": "198.51.100.7"}

    # a late "done" about another publisher changes nothing; the current one's clears the line
    done = {**form(rtmp_room, clientid="6"), "call": "publish_done"}
    assert Client().post("/rtmp/edge/on_publish_done", done).status_code == 200
    assert IngestLine.objects.get(pk=line.pk).rtmp_client == "7"
    done["clientid"] = "7"
    assert Client().post("/rtmp/edge/on_publish_done", done).status_code == 200
    assert IngestLine.objects.get(pk=line.pk).rtmp_client == ""
    assert ControlAction.objects.filter(room=rtmp_room, action="rtmp_publish_done").count() == 1


def test_a_wrong_key_is_refused_and_audited_without_the_key(rtmp_room):
    response = Client().post("/rtmp/edge/on_publish", form(rtmp_room, token="guess-guess-guess"))
    assert response.status_code == 403
    action = ControlAction.objects.get(room=rtmp_room, action="rtmp_publish")
    assert action.outcome == "refused" and "guess" not in str(action.detail) + action.reason


def test_whip_refuses_an_rtmp_line(rtmp_room):
    response = Client().post(f"/whip/{rtmp_room.slug}/primary", "v=0\r\n", content_type="application/sdp",
                             headers={"Authorization": f"Bearer {rtmp_room.tokens['primary']}"})
    assert response.status_code == 409


def test_ops_switch_a_line_to_rtmp_and_floor_control_may_not(room, operator, floor_assistant):
    from django.core.exceptions import PermissionDenied

    from streams.rtmp_ingest_services import do_set_line_kind

    line = IngestLine.objects.get(room=room, role="backup")
    with pytest.raises(PermissionDenied):
        do_set_line_kind(user=floor_assistant, line=line, kind="rtmp")
    line, raw = do_set_line_kind(user=operator, line=line, kind="rtmp", new_key=True)
    assert line.kind == "rtmp" and raw and line.check_token(raw)
    action = ControlAction.objects.get(room=room, action="ingest_line_edit")
    assert action.actor == operator and raw not in str(action.detail)
    response = Client().post("/rtmp/edge/on_publish", {**form(room, role="backup", token=raw)})
    assert response.status_code == 302


def test_the_tile_marks_a_line_fed_over_rtmp():
    from streams.wall import line_view

    rtmp = line_view("backup", {"state": "ok", "connected": True, "kind": "rtmp"}, stale=False, on_air=False)
    whip = line_view("primary", {"state": "ok", "connected": True, "kind": "whip"}, stale=False, on_air=True)
    assert rtmp["rtmp"] and not whip["rtmp"]
