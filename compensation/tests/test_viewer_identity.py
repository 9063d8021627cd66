"""Compensation reaches identified viewers only: platform-signed tokens, imported audiences, no rows from
page GETs, a minimum watch time, and a fraud panel for the approver (real PostgreSQL, real HTTP client)."""

import time
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from compensation import selectors, services
from compensation.models import Campaign
from compensation.services import CompensationError
from streams import viewer_identity
from streams.models import ControlAction, LiveRoom, Viewer, ViewerSession

from .conftest import add_viewers


def anonymous_viewers(room, count, start, end, prefix="anon"):
    viewers = Viewer.objects.bulk_create([Viewer(device_id=f"{prefix}{i}") for i in range(count)])
    ViewerSession.objects.bulk_create([ViewerSession(room=room, viewer=v, joined_at=start, last_seen_at=end,
                                                     left_at=end) for v in viewers])
    return viewers


def coupon(actor, room, budget, outage, **kwargs):
    return services.create_campaign(actor=actor, room=room, budget=budget, incident=outage,
                                    kind=Campaign.Kind.COUPON, amount_fen=5000, **kwargs)


# --- anonymous presence is not eligible --------------------------------------------------------


def test_farmed_cookie_viewers_are_not_eligible_by_default(operator, room, outage, budget):
    before, after = outage.detected_at - timedelta(minutes=1), outage.resolved_at + timedelta(minutes=1)
    anonymous_viewers(room, 500, before, after)
    real = add_viewers(room, 3, before, after, prefix="platform-user-")
    campaign = coupon(operator, room, budget, outage)
    assert campaign.eligible_count == 3 and campaign.cost_fen == 3 * 5000
    assert not campaign.include_anonymous
    # An operator can still choose to include them, knowingly; it shows on the page and in the audit row.
    wide = coupon(operator, room, budget, outage, include_anonymous=True)
    assert wide.eligible_count == 503
    assert ControlAction.objects.filter(action="create_campaign", detail__include_anonymous=True).count() == 1
    assert sorted(r["viewer_id"] for r in selectors.audience(room.pk, outage.detected_at, outage.resolved_at, 60)) \
        == sorted(real)


def test_viewers_identified_by_another_merchant_do_not_count_here(operator, room, outage, budget):
    elsewhere = LiveRoom.objects.create(name="别家", slug="other-shop", merchant="别的商家")
    before, after = outage.detected_at - timedelta(minutes=1), outage.resolved_at + timedelta(minutes=1)
    add_viewers(elsewhere, 4, before, after, prefix="theirs-")
    for v in Viewer.objects.filter(platform_user_id__startswith="theirs-"):
        ViewerSession.objects.create(room=room, viewer=v, joined_at=before, last_seen_at=after, left_at=after)
    assert coupon(operator, room, budget, outage).eligible_count == 0


def test_a_minimum_watch_time_applies_whatever_the_campaign_asks(operator, room, outage, budget):
    start = outage.detected_at
    add_viewers(room, 2, start, start + timedelta(seconds=30), prefix="brief-")
    add_viewers(room, 1, start, start + timedelta(seconds=61), prefix="stayed-")
    campaign = coupon(operator, room, budget, outage, min_overlap_s=0)
    assert (campaign.min_overlap_s, campaign.eligible_count) == (60, 1)


def test_page_gets_create_no_viewer_rows(client, room):
    for _ in range(20):
        assert client.get(f"/live/{room.slug}").status_code == 200
        client.cookies.clear()
    client.cookies["cr_device"] = "abc123random"
    assert client.get(f"/live/{room.slug}").status_code == 200
    assert Viewer.objects.count() == 0


def test_anonymous_viewer_cannot_claim_a_red_packet(operator, room, outage, budget):
    before, after = outage.detected_at - timedelta(minutes=1), outage.resolved_at + timedelta(minutes=1)
    add_viewers(room, 2, before, after, prefix="real-")
    (fake,) = anonymous_viewers(room, 1, before, after)
    campaign = services.create_campaign(actor=operator, room=room, budget=budget, incident=outage,
                                        kind=Campaign.Kind.RED_PACKET, amount_fen=200, share_count=2)
    services.issue_campaign(actor=operator, campaign_id=campaign.pk)
    with pytest.raises(CompensationError):
        services.claim_red_packet(campaign_id=campaign.pk, viewer=fake)


# --- platform-signed tokens on the viewer page ------------------------------------------------------


@pytest.fixture
def merchant_key(room):
    return viewer_identity.create_key(room.merchant)


def test_a_valid_token_identifies_the_viewer_and_sets_its_cookie(client, room, merchant_key):
    token = viewer_identity.sign(merchant_key, "u-1001", time.time() + 600)
    response = client.get(f"/live/{room.slug}?vt={token}", REMOTE_ADDR="10.0.0.7", HTTP_USER_AGENT="PlatformApp/1")
    assert response.status_code == 302 and response["Location"] == f"/live/{room.slug}"
    viewer = Viewer.objects.get(platform_merchant=room.merchant, platform_user_id="u-1001")
    assert response.cookies["cr_device"].value == viewer.device_id
    assert (viewer.last_address, viewer.last_user_agent) == ("10.0.0.7", "PlatformApp/1")
    # The same user again (another device): the same identity, no second row.
    client.cookies.clear()
    again = client.get(f"/live/{room.slug}?vt={token}")
    assert again.cookies["cr_device"].value == viewer.device_id
    assert Viewer.objects.count() == 1


@pytest.mark.parametrize("make", [
    lambda key: viewer_identity.sign(key, "u-1", time.time() - 1),  # expired
    lambda key: viewer_identity.sign(key, "u-1", time.time() + 90 * 86_400),  # lives too long
    lambda key: viewer_identity.sign("0" * 64, "u-1", time.time() + 600),  # another key
    lambda key: viewer_identity.sign(key, "u-1", time.time() + 600)[:-1] + "0",  # tampered
    lambda key: "u-1.nan." + "0" * 64,
    lambda key: "u\x00x.99999999999." + "0" * 64,
    lambda key: "not-a-token",
])
def test_bad_tokens_are_refused_with_a_clear_400_and_create_nothing(client, room, merchant_key, make):
    response = client.get(f"/live/{room.slug}", {"vt": make(merchant_key)})
    assert response.status_code == 400
    body = response.content.decode()
    assert "令牌无效" in body or "控制字符" in body  # a NUL never reaches the token check
    assert Viewer.objects.count() == 0


def test_a_token_of_another_merchant_is_refused(client, room):
    LiveRoom.objects.create(name="别家", slug="other-shop", merchant="别的商家")
    other_key = viewer_identity.create_key("别的商家")
    token = viewer_identity.sign(other_key, "u-1", time.time() + 600)
    assert client.get(f"/live/{room.slug}?vt={token}").status_code == 400


# --- imported audience ----------------------------------------------------------------------------


def _csv(rows):
    text = "platform_user_id,joined_at,left_at\n" + "".join(f"{u},{a.isoformat()},{b.isoformat()}\n"
                                                              for u, a, b in rows)
    return SimpleUploadedFile("audience.csv", text.encode(), content_type="text/csv")


def test_an_uploaded_platform_audience_is_eligible_and_reimport_adds_nothing(client, operator, room, outage, budget):
    client.force_login(operator)
    start, end = outage.detected_at, outage.resolved_at
    rows = [(f"p{i}", start - timedelta(minutes=1), end) for i in range(5)] + [("short", start, start + timedelta(seconds=5))]
    response = client.post("/compensation/audience/import", {"room": room.pk, "file": _csv(rows)})
    assert response.status_code == 302
    again = client.post("/compensation/audience/import", {"room": room.pk, "file": _csv(rows)})
    assert again.status_code == 302
    assert ViewerSession.objects.filter(room=room).count() == 6
    assert Viewer.objects.filter(platform_merchant=room.merchant).count() == 6
    assert coupon(operator, room, budget, outage).eligible_count == 5
    assert ControlAction.objects.filter(action="import_audience").count() == 2


@pytest.mark.parametrize("line, message", [
    ("p1,2026-01-01T10:00:00+08:00\n", "3 列"),
    ("p1,yesterday,today\n", "时间格式"),
    ("p 1,2026-01-01T10:00:00+08:00,2026-01-01T11:00:00+08:00\n", "平台用户 ID"),
    ("p1,2026-01-01T12:00:00+08:00,2026-01-01T11:00:00+08:00\n", "观看区间"),
    ("p1,2099-01-01T10:00:00+08:00,2099-01-01T11:00:00+08:00\n", "观看区间"),
])
def test_a_bad_audience_file_is_refused_clearly(client, operator, room, line, message):
    client.force_login(operator)
    upload = SimpleUploadedFile("a.csv", line.encode(), content_type="text/csv")
    response = client.post("/compensation/audience/import", {"room": room.pk, "file": upload})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not ViewerSession.objects.exists()


def test_only_campaign_roles_import_audiences(client, floor_assistant, room):
    client.force_login(floor_assistant)
    assert client.get("/compensation/audience/import").status_code == 403


# --- fraud panel -----------------------------------------------------------------------------------


def test_the_approver_sees_shared_addresses_and_join_bursts(client, operator, manager, room, outage, budget):
    start = outage.detected_at - timedelta(minutes=1)
    ids = add_viewers(room, 25, start, outage.resolved_at, prefix="farm-")
    Viewer.objects.filter(pk__in=ids[:4]).update(last_address="203.0.113.9", last_user_agent="FarmBot/2")
    campaign = services.create_campaign(actor=operator, room=room, budget=budget, incident=outage,
                                        kind=Campaign.Kind.COUPON, amount_fen=5000, include_anonymous=True)
    client.force_login(manager)
    page = client.get(f"/compensation/{campaign.pk}/").content.decode()
    assert "刷量风险检查" in page
    assert "203.0.113.9" in page and "4 个身份" in page
    assert "FarmBot/2" in page
    assert "25 位观众同时进入" in page
    signals = selectors.fraud_signals(campaign)
    assert signals["by_address"][0]["n"] == 4 and signals["bursts"][0]["n"] == 25


def test_a_clean_audience_shows_no_warning(client, operator, manager, room, outage, budget):
    now = outage.detected_at
    for i in range(3):  # joins spread out, distinct addresses
        add_viewers(room, 1, now + timedelta(seconds=i * 5), outage.resolved_at, prefix=f"calm{i}-")
    campaign = coupon(operator, room, budget, outage)
    signals = selectors.fraud_signals(campaign)
    assert not signals["flagged"]
    client.force_login(manager)
    assert "未发现异常" in client.get(f"/compensation/{campaign.pk}/").content.decode()
