"""A shop token sees and redeems only its own merchant's coupons, campaigns and rooms."""

import json

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from compensation import services
from compensation.models import Campaign, Grant
from streams.models import LiveRoom, ViewerSession

from .conftest import present_during


@pytest.fixture(autouse=True)
def inline_batches(run_batches_inline):
    """No worker in these tests: queued batches run in this process."""


@pytest.fixture
def issued(operator, room, budget, outage, django_capture_on_commit_callbacks):
    present_during(room, outage, 3)
    campaign = services.create_campaign(actor=operator, room=room, budget=budget, incident=outage,
                                        kind=Campaign.Kind.COUPON, amount_fen=500)
    with django_capture_on_commit_callbacks(execute=True):
        services.issue_campaign(actor=operator, campaign_id=campaign.pk)
    campaign.refresh_from_db()
    return campaign


@pytest.fixture
def tokens(room):
    LiveRoom.objects.create(name="别家直播间", slug="other-shop", merchant="别的商家")
    _own, own = services.create_shop_client("本店商城", room.merchant)
    _other, other = services.create_shop_client("别家商城", "别的商家")
    return own, other


def call(client, name, token, payload=None, **kwargs):
    url = reverse(f"compensation:{name}", kwargs=kwargs)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    if payload is None:
        return client.get(url, **headers)
    return client.post(url, data=json.dumps(payload), content_type="application/json", **headers)


def test_another_merchants_token_cannot_validate_redeem_or_report(client, issued, tokens):
    own, other = tokens
    code = Grant.objects.filter(campaign=issued).first().code
    assert call(client, "api_validate", other, {"code": code}).status_code == 404
    redeem = call(client, "api_redeem", other, {"code": code, "request_id": "r1", "order_ref": "o1"})
    assert redeem.status_code == 404 and redeem.json()["error"] == "unknown_code"
    assert Grant.objects.get(code=code).redeemed_at is None
    assert call(client, "api_report", other, campaign_id=issued.pk).status_code == 404
    # The merchant's own token works.
    assert call(client, "api_validate", own, {"code": code}).json()["valid"]
    assert call(client, "api_redeem", own, {"code": code, "request_id": "r1"}).status_code == 200
    assert call(client, "api_report", own, campaign_id=issued.pk).json()["redeemed"] == 1


def test_a_shop_registered_without_a_merchant_sees_nothing(client, issued):
    from compensation.models import ShopClient
    from streams.models import hash_token

    ShopClient.objects.create(name="老接入方", token_hash=hash_token("legacy-token"))
    code = Grant.objects.filter(campaign=issued).first().code
    assert call(client, "api_validate", "legacy-token", {"code": code}).status_code == 404
    assert call(client, "api_report", "legacy-token", campaign_id=issued.pk).status_code == 404


def test_the_platform_posts_its_audience_for_its_own_rooms_only(client, room, outage, tokens):
    own, other = tokens
    start = outage.detected_at.isoformat()
    end = outage.resolved_at.isoformat()
    payload = {"viewers": [{"platform_user_id": "u1", "joined_at": start, "left_at": end},
                           {"platform_user_id": "u2", "joined_at": start, "left_at": end}]}
    assert call(client, "api_audience", other, payload, slug=room.slug).status_code == 404
    response = call(client, "api_audience", own, payload, slug=room.slug)
    assert response.status_code == 200 and response.json()["sessions_added"] == 2
    assert ViewerSession.objects.filter(room=room, viewer__platform_user_id__in=["u1", "u2"]).count() == 2
    bad = call(client, "api_audience", own, {"viewers": [{"platform_user_id": "u3", "joined_at": "NaN",
                                                          "left_at": end}]}, slug=room.slug)
    assert bad.status_code == 400 and "时间格式" in bad.json()["message"]


def test_shop_tokens_are_registered_for_a_merchant(room, capsys):
    with pytest.raises(CommandError, match="no room belongs"):
        call_command("create_shop_token", "商城", "--merchant", "不存在的商家")
    call_command("create_shop_token", "商城", "--merchant", room.merchant)
    assert "Bearer shop_" in capsys.readouterr().out
    with pytest.raises(CommandError, match="already registered"):
        call_command("create_shop_token", "商城", "--merchant", room.merchant)
