"""Pages around the wall: who may see what, the audit log with CSV export, templates, the viewer page."""

import csv
import io

from django.urls import reverse

from conftest import PASSWORD
from streams.models import AnnouncementTemplate, ControlAction, Viewer
from streams.services import pin_announcement, record_action


def login(client, user):
    assert client.login(username=user.username, password=PASSWORD)
    return client


def test_wall_shows_a_tile_per_live_room_with_role_specific_buttons(client, room, operator, floor_assistant):
    page = login(client, operator).get("/").content.decode()
    assert 'id="tile-test-room"' in page and 'ws-connect="/ws/wall/"' in page
    assert "switch_source" in page and "pin_announcement" not in page
    assert "<dt>码率</dt>" in page and "<dt>帧龄</dt>" in page  # metric labels on the tile
    client.logout()
    page = login(client, floor_assistant).get("/").content.decode()
    assert "pin_announcement" in page and "switch_source" not in page


def test_outsider_cannot_see_the_wall_and_anonymous_is_sent_to_login(client, room, outsider):
    assert client.get("/").status_code == 302
    assert login(client, outsider).get("/").status_code == 403


def test_manager_filters_the_audit_log_and_exports_csv(client, room, manager, operator, floor_assistant):
    record_action(actor=operator, action="switch_source", room=room, target="backup", reason="manual: wall",
                  latency_ms=42.5)
    pin_announcement(room=room, actor=floor_assistant, text="家人们稍等")
    login(client, manager)
    page = client.get(reverse("audit"), {"action": "pin_announcement"}).content.decode()
    assert "家人们稍等" in page and "manual: wall" not in page
    response = client.get(reverse("audit_csv"), {"user": "olivia"})
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(body)))
    # For people: headers, actions and rooms by their labels, no codes or slugs.
    assert rows[0][:4] == ["时间", "操作人", "直播间", "动作"]
    assert [r[3] for r in rows[1:]] == ["切换节目源"] and rows[1][6] == "42.5"
    assert rows[1][2] == room.name and rows[1][4] == "备用线路" and rows[1][7] == "wall"


def test_only_managers_see_the_audit_log(client, room, operator):
    assert login(client, operator).get(reverse("audit")).status_code == 403
    assert client.get(reverse("audit_csv")).status_code == 403


def test_manager_edits_announcement_templates_and_floor_control_only_reads_them(client, manager, floor_assistant):
    login(client, manager)
    response = client.post(reverse("announcement_templates"), {
        "t-name": "延时", "t-kind": "apology", "t-text": "预计{eta}分钟恢复", "t-default_eta_minutes": 3,
        "t-is_active": "on"})
    assert response.status_code == 302
    assert AnnouncementTemplate.objects.get(name="延时").render(7) == "预计7分钟恢复"
    client.logout()
    login(client, floor_assistant)
    assert client.get(reverse("announcement_templates")).status_code == 200
    assert client.post(reverse("announcement_templates"), {"t-name": "x", "t-kind": "info", "t-text": "y",
                                                          "t-default_eta_minutes": 1}).status_code == 403
    assert not AnnouncementTemplate.objects.filter(name="x").exists()


def test_anonymous_viewer_gets_a_device_cookie_and_sees_the_pinned_banner(client, room, floor_assistant):
    pin_announcement(room=room, actor=floor_assistant, text="技术小哥正在抢修")
    response = client.get(reverse("live_room", args=[room.slug]))
    assert response.status_code == 200
    assert "技术小哥正在抢修" in response.content.decode()
    device = response.cookies["cr_device"].value
    client.get(reverse("live_room", args=[room.slug]))  # same browser: same identity
    # A page GET creates no Viewer row (the viewer socket records presence; farming pages costs us nothing).
    assert client.cookies["cr_device"].value == device and Viewer.objects.count() == 0


def test_viewer_notice_providers_show_on_page_load_and_a_broken_one_does_not_break_the_page(client, room):
    from streams import viewer_notices

    def good(room_, viewer):
        return ["您获得了补偿红包"]

    def broken(room_, viewer):
        raise RuntimeError("boom")

    viewer_notices.register(good)
    viewer_notices.register(broken)
    try:
        page = client.get(reverse("live_room", args=[room.slug])).content.decode()
    finally:
        viewer_notices._providers.remove(good)
        viewer_notices._providers.remove(broken)
    assert "您获得了补偿红包" in page


def test_announcement_json_feed_for_external_apps(client, room, floor_assistant):
    pin_announcement(room=room, actor=floor_assistant, text="预计5分钟恢复")
    data = client.get(reverse("announcements_json", args=[room.slug])).json()
    assert data["pinned"]["text"] == "预计5分钟恢复" and data["recent"][0]["text"] == "预计5分钟恢复"
    assert client.get(reverse("announcements_json", args=["nope"])).status_code == 404


def test_cue_screen_needs_the_signed_link_or_a_role(client, room, outsider):
    from streams.views import cue_screen_key

    assert client.get(reverse("cue_screen", args=[room.slug])).status_code == 302
    assert client.get(reverse("cue_screen", args=[room.slug]), {"k": cue_screen_key(room)}).status_code == 200
    login(client, outsider)
    assert client.get(reverse("cue_screen", args=[room.slug])).status_code == 403


def test_alert_acknowledge_button_records_who_and_when(client, room, tech_support):
    from streams.models import Alert
    from streams.services import raise_alert

    alert = raise_alert(room=room, kind=Alert.Kind.LINE_DEGRADED, message="丢包 5%")
    html = login(client, tech_support).post(reverse("acknowledge_alert", args=[alert.pk])).content.decode()
    alert.refresh_from_db()
    assert alert.acknowledged_by == tech_support and "tom_tech" in html
    assert ControlAction.objects.filter(action="acknowledge_alert", actor=tech_support).count() == 1


def test_mute_preference_is_stored_per_user(client, room, operator):
    from streams.models import OperatorPreference

    login(client, operator).post(reverse("wall_mute"), {"muted": "1"})
    assert OperatorPreference.objects.get(user=operator).alerts_muted is True
    assert 'data-alerts-muted="1"' in client.get("/").content.decode()


def test_an_automatic_failover_alert_reads_in_each_operators_language(client, room, operator):
    from streams.mediaworker.bridge import record_auto_switch
    from streams.models import Alert

    record_auto_switch(room.slug, {"from": "primary", "to": "backup", "latency_ms": 180}, "input_loss")
    alert = Alert.objects.get(room=room, kind=Alert.Kind.AUTO_FAILOVER)
    assert alert.message == "自动切换 主线路 → 备用线路(无输入)"  # stored in the site language
    login(client, operator)
    assert "自动切换 主线路 → 备用线路(无输入)" in client.get("/").content.decode()
    client.cookies["django_language"] = "en"
    page = client.get("/").content.decode()
    assert "Automatic failover Primary line → Backup line (No input)" in page
    assert "自动切换 主线路" not in page
