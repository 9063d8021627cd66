"""On the real viewer page socket: a viewer comments the lucky bag keyword, wins, and is told live;
then grabs a red packet share by commenting its keyword and sees the amount."""

import json
import os
import time

import pytest

from compensation import services
from compensation.models import Campaign, DrawEntrant, Grant
from streams.models import Viewer

from .conftest import present_during

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL")]


def test_viewer_joins_by_comment_and_hears_that_they_won(daphne_server, operator, room, outage, budget):
    from websockets.sync.client import connect

    ids = present_during(room, outage, 3)
    viewer = Viewer.objects.get(pk=ids[0])
    bag = services.create_campaign(actor=operator, room=room, budget=budget, incident=outage,
                                   kind=Campaign.Kind.LUCKY_BAG, amount_fen=1500, winner_count=1, countdown_s=60,
                                   keyword="要福袋", title="断流补偿福袋")
    services.issue_campaign(actor=operator, campaign_id=bag.pk)
    url = daphne_server.replace("http", "ws") + f"/ws/live/{room.slug}/"
    with connect(url, additional_headers={"Cookie": f"cr_device={viewer.device_id}", "Origin": daphne_server},
                 open_timeout=20) as ws:
        ws.recv(timeout=10)  # the current banner
        ws.send(json.dumps({"chat": "主播加油"}))  # no keyword: no entry
        time.sleep(1.5)  # the viewer socket rate-limits chat
        assert not DrawEntrant.objects.filter(campaign=bag).exists()
        ws.send(json.dumps({"chat": "我也要福袋!"}))  # contains the keyword
        deadline = time.monotonic() + 15
        while not DrawEntrant.objects.filter(campaign=bag, viewer=viewer).exists():
            assert time.monotonic() < deadline, "the comment did not enter the draw"
            time.sleep(0.1)
        assert DrawEntrant.objects.get(campaign=bag, viewer=viewer).via == "comment"

        bag = services.close_draw_now(actor=operator, campaign_id=bag.pk)
        assert bag.winners == [viewer.pk]
        assert services.notify_recipients(bag.pk) == 1
        deadline = time.monotonic() + 15
        while True:
            assert time.monotonic() < deadline, "no notice reached the viewer page"
            message = ws.recv(timeout=15)
            if "恭喜中奖" in message:
                assert "断流补偿福袋" in message and "¥15.00" in message
                break

        # A red packet: commenting its keyword (default 抢红包) grabs a share, and the amount is pushed back.
        packet = services.create_campaign(actor=operator, room=room, budget=budget, incident=outage,
                                          kind=Campaign.Kind.RED_PACKET, amount_fen=300, share_count=2,
                                          share_cap_fen=200)
        assert packet.keyword == "抢红包"
        services.issue_campaign(actor=operator, campaign_id=packet.pk)
        # The open offer nudges every viewer page to reload its panels (no polling needed).
        deadline = time.monotonic() + 15
        while 'id="viewer-panels-nudge"' not in ws.recv(timeout=15):
            assert time.monotonic() < deadline, "the viewer page was not nudged about the new red packet"
        time.sleep(1.1)  # chat rate limit
        ws.send(json.dumps({"chat": "抢红包!"}))
        deadline = time.monotonic() + 15
        while True:
            assert time.monotonic() < deadline, "no red packet notice reached the viewer page"
            message = ws.recv(timeout=15)
            if "你抢到了" in message:
                break
        grant = Grant.objects.get(campaign=packet, viewer=viewer)
        assert f"¥{grant.amount_fen // 100}.{grant.amount_fen % 100:02d}" in message
