"""Input hygiene on the paths people and strangers type into: finite numbers, no control characters, bounded
dates, local redirects only, one CSV writer that defuses formulas, internal errors shown only as an id."""

import csv
import io
import logging
import time

import pytest
from django.core.management import CommandError, call_command
from django.test import RequestFactory
from django.urls import reverse

from controlroom.csv_export import csv_lines, defuse
from controlroom.middleware import ErrorIdMiddleware
from incidents import services as incident_services
from streams import actions
from streams.models import ChatMessage, ControlAction
from streams.services import record_action
from streams.viewer_services import post_viewer_chat

pytestmark = pytest.mark.django_db


# --- finite numbers ------------------------------------------------------------------------------------


@pytest.mark.parametrize("issued_at", ["NaN", "nan", float("nan"), "inf", "-inf"])
def test_a_non_finite_issued_at_is_refused_not_run(room, operator, issued_at):
    result = actions.perform_action(operator, {"action": "switch_source", "source": "backup", "room": room.slug,
                                               "nonce": f"n-nan-{issued_at}-000", "issued_at": issued_at})
    assert result.outcome == "refused" and result.reason == "缺少发出时间"
    assert not ControlAction.objects.filter(action="switch_source", outcome="ok").exists()


# --- control characters ----------------------------------------------------------------------------------


def test_nul_in_viewer_chat_is_stripped_not_a_500(room):
    message = post_viewer_chat(room=room, viewer_key="d:abc", text="你好\x00世界\x07", nickname="小\x00明")
    assert message.text == "你好世界" and "\x00" not in message.author_name
    assert post_viewer_chat(room=room, viewer_key="d:abc", text="\x00\x00") is None
    assert ChatMessage.objects.count() == 1


def test_nul_in_an_incident_note_is_a_clear_400(client, room, operator):
    incident = incident_services.open_incident(room=room, incident_type="stream-interruption", actor=operator)
    client.force_login(operator)
    response = client.post(f"/incidents/{incident.pk}/notes", {"text": "备注\x00内容"})
    assert response.status_code == 400 and "控制字符" in response.content.decode()
    with pytest.raises(incident_services.IncidentRuleError):
        incident_services.add_note(incident=incident, text="备注\x00", actor=operator)


def test_nul_in_the_case_library_search_is_a_clear_400(client, manager):
    client.force_login(manager)
    response = client.get("/incidents/", {"q": "断流\x00"})
    assert response.status_code == 400 and "控制字符" in response.content.decode()
    assert client.get("/incidents/", {"q": "断流"}).status_code == 200


def test_nul_in_shop_api_json_is_a_clear_400(client, room):
    from compensation import services

    _shop, token = services.create_shop_client("商城", room.merchant)
    response = client.post("/compensation/api/v1/coupons/validate", data='{"code": "AB\\u0000CD"}',
                           content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 400 and response.json()["error"] == "bad_request"


# --- dates and redirects -----------------------------------------------------------------------------------


@pytest.mark.parametrize("params", [{"date_to": "9999-12-31"}, {"date_from": "0001-01-01"},
                                    {"date_from": "2026-05-01", "date_to": "2026-04-01"}])
def test_analytics_dates_are_bounded(client, manager, params):
    client.force_login(manager)
    for url in ("/incidents/analytics/", "/incidents/analytics.csv"):
        response = client.get(url, params)
        assert response.status_code == 400 and "日期" in response.content.decode()


def test_an_invalid_declare_form_never_redirects_off_site(client, operator):
    client.force_login(operator)
    response = client.post("/incidents/declare", {"next": "https://elsewhere.example/phish"})
    assert response.status_code == 302 and response["Location"] == reverse("incidents:new")
    response = client.post("/incidents/declare", {"next": "//elsewhere.example/"})
    assert response["Location"] == reverse("incidents:new")
    response = client.post("/incidents/declare", {"next": "/wall/"})
    assert response["Location"] == "/wall/"


# --- one CSV writer ----------------------------------------------------------------------------------------


def test_the_audit_csv_defuses_formulas(client, room, manager, operator):
    for reason in ("=HYPERLINK(\"http://x\",\"点我\")", "+SUM(1,2)", "@cmd", "-2+3", "\t=1", "正常"):
        record_action(actor=operator, action="switch_source", room=room, target="backup", reason=reason)
    client.force_login(manager)
    body = b"".join(client.get(reverse("audit_csv")).streaming_content).decode("utf-8-sig")
    reasons = sorted(row[7] for row in list(csv.reader(io.StringIO(body)))[1:])
    assert reasons == sorted(["'=HYPERLINK(\"http://x\",\"点我\")", "'+SUM(1,2)", "'@cmd", "'-2+3", "'\t=1", "正常"])


def test_numbers_stay_numbers_and_text_is_defused():
    assert defuse(-5) == -5 and defuse("=1") == "'=1" and defuse("a=1") == "a=1"
    assert list(csv_lines(["h"], [["=x"]]))[1] == "'=x\r\n"


# --- internal errors -----------------------------------------------------------------------------------------


def test_a_bug_behind_a_wall_action_shows_an_error_id_not_its_text(room, floor_assistant, caplog):
    with caplog.at_level(logging.ERROR):
        result = actions.perform_action(floor_assistant, {
            "action": "post_chat_reply", "room": room.slug, "nonce": "n-bug-000001", "issued_at": time.time() * 1000,
            "canned": "not-a-number"})
    assert result.outcome == "failed" and "编号" in result.reason
    assert "expected a number" not in result.reason and "not-a-number" not in result.reason
    audit = ControlAction.objects.get(action="post_chat_reply")
    assert audit.detail["error_id"] in result.reason and audit.detail["error_id"] in caplog.text


def test_a_chat_reply_that_is_not_text_is_refused_clearly(room, floor_assistant):
    result = actions.perform_action(floor_assistant, {
        "action": "post_chat_reply", "room": room.slug, "nonce": "n-list-000001", "issued_at": time.time() * 1000,
        "text": ["a", "b"]})
    assert result.outcome == "failed" and "strip" not in result.reason and "回复内容" in result.reason


def test_an_unexpected_exception_in_a_view_is_logged_with_an_id_and_shown_only_as_the_id(caplog):
    def broken_view(request):
        raise AttributeError("'list' object has no attribute 'strip'")

    middleware = ErrorIdMiddleware(broken_view)
    request = RequestFactory().get("/somewhere")
    try:
        broken_view(request)
    except AttributeError as exc:
        with caplog.at_level(logging.ERROR):
            response = middleware.process_exception(request, exc)
    body = response.content.decode()
    assert response.status_code == 500 and "strip" not in body and "编号" in body
    error_id = body.split("编号 ")[1][:10]
    assert error_id in caplog.text and "has no attribute" in caplog.text


# --- verify_draw -------------------------------------------------------------------------------------------


def test_verify_draw_fails_with_clear_messages(tmp_path):
    with pytest.raises(CommandError, match="not a lottery"):
        call_command("verify_draw", "999999")


def test_verify_draw_reads_entrant_files_carefully(tmp_path):
    from compensation.management.commands.verify_draw import read_entrants

    with pytest.raises(CommandError, match="cannot read"):
        read_entrants(str(tmp_path / "missing.txt"))
    bad = tmp_path / "bad.txt"
    bad.write_text("12\nabc\n")
    with pytest.raises(CommandError, match="entry 2"):
        read_entrants(str(bad))
    binary = tmp_path / "bin.txt"
    binary.write_bytes("编号".encode())
    with pytest.raises(CommandError, match="one number per line"):
        read_entrants(str(binary))
    good = tmp_path / "good.txt"
    good.write_text("3\n1\n2\n")
    assert read_entrants(str(good)) == [3, 1, 2]
