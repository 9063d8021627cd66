"""A coupon's "去使用" link: the campaign's own, else its merchant's shop; web addresses only."""

import pytest

from compensation import services
from compensation.models import Campaign

from .conftest import present_during


def coupon(operator, room, budget, outage, **kwargs):
    return services.create_campaign(actor=operator, room=room, budget=budget, incident=outage,
                                    kind=Campaign.Kind.COUPON, amount_fen=500, **kwargs)


def test_campaign_link_else_the_merchants_shop(operator, room, budget, outage):
    present_during(room, outage, 2)
    assert coupon(operator, room, budget, outage).use_url() == ""
    services.create_shop_client("旗舰店", "别的商家", shop_url="https://other.example.com/")
    services.create_shop_client("测试商家商城", room.merchant, shop_url="https://shop.example.com/c")
    assert coupon(operator, room, budget, outage).use_url() == "https://shop.example.com/c"
    own = coupon(operator, room, budget, outage, shop_url=" https://promo.example.com/x?y=1 ")
    assert own.use_url() == "https://promo.example.com/x?y=1"


@pytest.mark.parametrize("url", ["javascript:alert(1)", "ftp://shop.example.com/", "shop.example.com",
                                 "https://" + "a" * 600 + ".com"])
def test_only_web_addresses(operator, room, budget, outage, url):
    present_during(room, outage, 1)
    with pytest.raises(services.CompensationError):
        coupon(operator, room, budget, outage, shop_url=url)
    with pytest.raises(services.CompensationError):
        services.create_shop_client("商城", room.merchant, shop_url=url)
