"""The shop's redemption API, reports, CSV export, and the operator / viewer / public pages."""

import csv
import io
import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from compensation import services
from compensation.models import Campaign, Grant, IssuanceBatch, Redemption
from conftest import PASSWORD
from streams.models import ControlAction, Viewer

from .conftest import present_during


@pytest.fixture(autouse=True)
def inline_batches(run_batches_inline):
    """No worker in these tests: queued batches run in this process."""


@pytest.fixture
def issued(operator, room, budget, outage, django_capture_on_commit_callbacks):
    present_during(room, outage, 20)
    campaign = services.create_campaign(actor=operator, room=room, budget=budget, incident=outage,
                                        kind=Campaign.Kind.COUPON, amount_fen=500)
    with django_capture_on_commit_callbacks(execute=True):
        services.issue_campaign(actor=operator, campaign_id=campaign.pk)
    campaign.refresh_from_db()
    assert campaign.status == "completed"
    return campaign


@pytest.fixture
def shop(room):
    client, token = services.create_shop_client("旗舰店商城", room.merchant)
    return token


def call(client, name, token, payload=None, **kwargs):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    url = reverse(f"compensation:{name}", kwargs=kwargs)
    if payload is None:
        return client.get(url, **headers)
    return client.post(url, data=json.dumps(payload), content_type="application/json", **headers)


def test_shop_redeems_a_coupon_once_and_retries_are_idempotent(client, issued, shop):
    code = Grant.objects.filter(campaign=issued).first().code
    response = call(client, "api_validate", shop, {"code": code.lower()})
    assert response.status_code == 200 and response.json()["valid"] and response.json()["amount_fen"] == 500

    first = call(client, "api_redeem", shop, {"code": code, "request_id": "req-1", "order_ref": "SO-9"})
    assert first.status_code == 200 and first.json()["state"] == "redeemed"
    retry = call(client, "api_redeem", shop, {"code": code, "request_id": "req-1", "order_ref": "SO-9"})
    assert retry.status_code == 200 and retry.json()["replayed"] is True
    assert retry.json()["redeemed_at"] == first.json()["redeemed_at"]
    again = call(client, "api_redeem", shop, {"code": code, "request_id": "req-2", "order_ref": "SO-10"})
    assert again.status_code == 409 and again.json()["error"] == "redeemed"
    reused = call(client, "api_redeem", shop, {"code": "OTHERCODE", "request_id": "req-1"})
    assert reused.status_code == 422 and reused.json()["error"] == "request_id_reused"
    assert Grant.objects.get(code=code).redeemed_order == "SO-9"
    assert Redemption.objects.count() == 2

    report = call(client, "api_report", shop, campaign_id=issued.pk).json()
    assert (report["issued"], report["redeemed"], report["redeemed_fen"], report["outstanding"]) == (20, 1, 500, 19)


def test_shop_api_gives_clear_errors_for_bad_requests(client, issued, shop):
    assert call(client, "api_redeem", None, {"code": "X", "request_id": "r"}).status_code == 401
    assert call(client, "api_redeem", "shop_wrong", {"code": "X", "request_id": "r"}).status_code == 401
    unknown = call(client, "api_redeem", shop, {"code": "NOPE", "request_id": "r-unknown"})
    assert unknown.status_code == 404 and unknown.json()["error"] == "unknown_code"
    missing = call(client, "api_redeem", shop, {"code": "NOPE"})
    assert missing.status_code == 400 and "request_id" in missing.json()["message"]
    bad_json = client.post(reverse("compensation:api_redeem"), data="{not json", content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {shop}")
    assert bad_json.status_code == 400 and bad_json.json()["error"] == "bad_json"


def test_expired_and_revoked_coupons_are_refused_and_reported(client, issued, shop, manager):
    grants = list(Grant.objects.filter(campaign=issued).order_by("code"))
    call(client, "api_redeem", shop, {"code": grants[0].code, "request_id": "ok-1"})
    Campaign.objects.filter(pk=issued.pk).update(valid_until=timezone.now() - timedelta(seconds=1))
    expired = call(client, "api_redeem", shop, {"code": grants[1].code, "request_id": "late-1"})
    assert expired.status_code == 410 and expired.json()["error"] == "expired"
    report = call(client, "api_report", shop, campaign_id=issued.pk).json()
    assert (report["redeemed"], report["expired"], report["expired_fen"]) == (1, 19, 19 * 500)

    Campaign.objects.filter(pk=issued.pk).update(valid_until=timezone.now() + timedelta(days=1))
    services.revoke_campaign(actor=manager, campaign_id=issued.pk, reason="误发")
    revoked = call(client, "api_redeem", shop, {"code": grants[2].code, "request_id": "rv-1"})
    assert revoked.status_code == 410 and revoked.json()["error"] == "revoked"
    issued.refresh_from_db()
    issued.budget.refresh_from_db()
    assert issued.reserved_fen == issued.budget.reserved_fen == 500  # only the redeemed coupon still costs money
    assert ControlAction.objects.filter(action="revoke_campaign", actor=manager).exists()


def test_operator_exports_grants_as_csv(client, operator, issued):
    client.login(username=operator.username, password=PASSWORD)
    response = client.get(reverse("compensation:grants_csv", args=[issued.pk]))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert len(rows) == 20 and {r["state"] for r in rows} == {"valid"}
    assert {r["code"] for r in rows} == set(Grant.objects.filter(campaign=issued).values_list("code", flat=True))
    assert sum(int(r["amount_fen"]) for r in rows) == issued.issued_fen


def test_incident_report_sums_campaigns(client, manager, issued, outage):
    client.login(username=manager.username, password=PASSWORD)
    page = client.get(reverse("compensation:incident_report", args=[outage.pk])).content.decode()
    assert issued.title in page and "¥100.00" in page  # 20 x 500 fen issued


def test_operator_creates_and_issues_from_the_incident_page(client, operator, room, budget, outage,
                                                            django_capture_on_commit_callbacks):
    present_during(room, outage, 8)
    client.login(username=operator.username, password=PASSWORD)
    form = client.get(reverse("compensation:new") + f"?incident={outage.pk}")
    assert form.status_code == 200 and "建议" in form.content.decode()
    bad = client.post(reverse("compensation:new"), {"incident": outage.pk, "kind": "coupon", "budget": budget.pk,
                                                    "amount_yuan": "-5"})
    assert bad.status_code == 400 and "金额 必须大于 0" in bad.content.decode()
    response = client.post(reverse("compensation:new"), {
        "incident": outage.pk, "kind": "coupon", "budget": budget.pk, "amount_yuan": "5.20", "min_overlap_s": "60",
        "title": "断流补偿券"})
    campaign = Campaign.objects.get()
    assert response.status_code == 302 and campaign.amount_fen == 520 and campaign.eligible_count == 8
    detail = client.get(reverse("compensation:detail", args=[campaign.pk])).content.decode()
    assert "向 8 位观众发放" in detail and "¥41.60" in detail  # eligible count and total cost before issuing
    with django_capture_on_commit_callbacks(execute=True):
        issued = client.post(reverse("compensation:issue", args=[campaign.pk]), HTTP_HX_REQUEST="true")
    assert issued.status_code == 200 and 'id="campaign-panel"' in issued.content.decode()
    campaign.refresh_from_db()
    assert campaign.status == "completed" and campaign.issued_count == 8
    with django_capture_on_commit_callbacks(execute=True):
        twice = client.post(reverse("compensation:issue", args=[campaign.pk]), HTTP_HX_REQUEST="true")
    assert twice.status_code == 400  # a double click is refused clearly, nothing issued twice
    assert Grant.objects.count() == 8 and IssuanceBatch.objects.count() == 1


def test_pages_are_role_gated(client, floor_assistant, room, budget, outage):
    client.login(username=floor_assistant.username, password=PASSWORD)
    assert client.get(reverse("compensation:list")).status_code == 403
    assert client.get(reverse("compensation:new")).status_code == 403
    client.logout()
    assert client.get(reverse("compensation:list")).status_code == 302  # to login


def test_viewers_see_what_they_received_and_the_public_can_verify_a_draw(client, operator, room, budget, outage,
                                                                         django_capture_on_commit_callbacks):
    from streams import viewer_notices

    ids = present_during(room, outage, 6)
    bag = services.create_campaign(actor=operator, room=room, budget=budget, incident=outage,
                                   kind=Campaign.Kind.LUCKY_BAG, amount_fen=1000, winner_count=2, countdown_s=60,
                                   keyword="福袋")
    services.issue_campaign(actor=operator, campaign_id=bag.pk)
    viewer = Viewer.objects.get(pk=ids[0])
    client.cookies["cr_device"] = viewer.device_id
    offers = client.get(reverse("compensation:viewer_offers", args=[room.slug])).content.decode()
    assert "专属福袋" in offers and "评论「福袋」参与" in offers
    joined = client.post(reverse("compensation:join", args=[bag.pk]))
    assert joined.status_code == 200 and joined.json()["ok"]
    client.cookies["cr_device"] = "nobody-here"
    refused = client.post(reverse("compensation:join", args=[bag.pk]))
    assert refused.status_code == 400 and refused.json()["message"] == "未知的观众"
    verify = client.get(reverse("compensation:verify", args=[bag.pk])).content.decode()
    assert bag.seed_hash in Campaign.objects.get(pk=bag.pk).seed_hash and "开奖后公开" in verify

    with django_capture_on_commit_callbacks(execute=True):
        bag = services.close_draw_now(actor=operator, campaign_id=bag.pk)
    assert bag.winners == [viewer.pk]  # the only entrant wins (min(K, entrants) = 1)
    verify = client.get(reverse("compensation:verify", args=[bag.pk]) + "?check=1").content.decode()
    assert "验证通过" in verify and bag.seed in verify and "manage.py" not in verify
    assert client.get(reverse("compensation:entrants", args=[bag.pk])).content.decode() == str(viewer.pk)
    assert services.notify_recipients(bag.pk) == 1  # pushed to the winner's open viewer pages
    notices = viewer_notices.notices_for(room, viewer)
    assert any("恭喜中奖" in n and "¥10.00" in n for n in notices)
    if bag.incident_id:
        from incidents.models import IncidentTimelineEntry
        entry = IncidentTimelineEntry.objects.get(incident=outage, kind="compensation")
        assert "专属福袋" in entry.text and entry.data["campaign"] == bag.pk


def test_viewer_page_says_you_received_a_coupon(client, issued):
    grant = Grant.objects.filter(campaign=issued).select_related("viewer").first()
    client.cookies["cr_device"] = grant.viewer.device_id
    page = client.get(f"/live/{issued.room.slug}").content.decode()
    assert "你获得了 ¥5.00 无门槛优惠券" in page and grant.code in page
    client.cookies["cr_device"] = "someone-else"
    assert "你获得了" not in client.get(f"/live/{issued.room.slug}").content.decode()


def test_viewer_page_invites_affected_viewers_to_the_lucky_bag(client, operator, room, budget, outage):
    ids = present_during(room, outage, 2)
    bag = services.create_campaign(actor=operator, room=room, budget=budget, incident=outage,
                                   kind=Campaign.Kind.LUCKY_BAG, amount_fen=1000, winner_count=1, countdown_s=60,
                                   keyword="冲冲冲", title="补偿福袋")
    services.issue_campaign(actor=operator, campaign_id=bag.pk)
    client.cookies["cr_device"] = Viewer.objects.get(pk=ids[0]).device_id
    offers = client.get(reverse("compensation:viewer_offers", args=[room.slug])).content.decode()
    assert "补偿福袋" in offers and "评论「冲冲冲」参与" in offers and f'id="offer-{bag.pk}"' in offers
    # The card is the invitation; the notices above the chat do not repeat it.
    assert "冲冲冲" not in client.get(f"/live/{room.slug}").content.decode()


def test_manager_pages_render(client, manager, operator, issued, outage, room, budget):
    bag = services.create_campaign(actor=operator, room=room, budget=budget, incident=outage,
                                   kind=Campaign.Kind.LOTTERY, amount_fen=100, winner_count=3)
    client.login(username=manager.username, password=PASSWORD)
    for url in [reverse("compensation:list"), reverse("compensation:new"),
                reverse("compensation:detail", args=[issued.pk]), reverse("compensation:detail", args=[bag.pk]),
                reverse("compensation:incident_report", args=[outage.pk]), reverse("compensation:wall"),
                reverse("compensation:panel", args=[issued.pk]), reverse("compensation:progress", args=[issued.pk])]:
        response = client.get(url)
        assert response.status_code == 200, url
    page = client.get(reverse("compensation:detail", args=[bag.pk])).content.decode()
    assert "审批通过" in page  # a manager who did not create it may approve
    listing = client.get(reverse("compensation:list")).content.decode()
    assert issued.title in listing and "¥100.00" in listing


def test_draft_warns_when_the_incident_window_changed(client, operator, room, budget, outage):
    present_during(room, outage, 2)
    campaign = services.create_campaign(actor=operator, room=room, budget=budget, incident=outage,
                                        kind=Campaign.Kind.COUPON, amount_fen=100)
    client.login(username=operator.username, password=PASSWORD)
    url = reverse("compensation:detail", args=[campaign.pk])
    assert "window-note" not in client.get(url).content.decode()
    outage.resolved_at += timedelta(minutes=3)
    outage.save(update_fields=["resolved_at"])
    assert "事故时间已更新" in client.get(url).content.decode()


def test_campaign_page_speaks_english_too(client, operator, room, budget, outage, settings):
    present_during(room, outage, 3)
    campaign = services.create_campaign(actor=operator, room=room, budget=budget, incident=outage,
                                        kind=Campaign.Kind.COUPON, amount_fen=100)
    client.login(username=operator.username, password=PASSWORD)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    page = client.get(reverse("compensation:detail", args=[campaign.pk])).content.decode()
    assert "Issue to 3 viewers" in page and "Estimated cost" in page and "发放进度" not in page
