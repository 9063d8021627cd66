"""The public draw page speaks to viewers: winners by masked display name (never a row id), verification in
plain words (no shell commands), "did I win?" for this browser's viewer and for a platform user id."""

import re

import pytest
from django.urls import reverse

from compensation import services
from compensation.models import Campaign
from streams.models import Viewer

from .conftest import present_during


@pytest.fixture
def drawn(operator, room, budget, outage, django_capture_on_commit_callbacks):
    ids = present_during(room, outage, 4, prefix="user")
    Viewer.objects.filter(pk=ids[0]).update(nickname="张小花")
    Viewer.objects.filter(pk=ids[1]).update(platform_user_id="dy_88123456")
    lottery = services.create_campaign(actor=operator, room=room, budget=budget, incident=outage,
                                       kind=Campaign.Kind.LOTTERY, amount_fen=1000, winner_count=4)
    with django_capture_on_commit_callbacks(execute=True):
        services.issue_campaign(actor=operator, campaign_id=lottery.pk)
        services.close_draw_now(actor=operator, campaign_id=lottery.pk)
    lottery.refresh_from_db()
    assert sorted(lottery.winners) == sorted(ids)  # K = entrants: everyone wins
    return lottery, ids


def test_viewer_masking():
    assert Viewer(nickname="张小花").public_name == "张**"
    assert Viewer(platform_user_id="dy_88123456").public_name == "dy****56"
    assert Viewer(platform_user_id="abc").public_name == "a***"
    assert Viewer(device_id="secret-cookie").public_name == "匿名观众"


def test_winners_by_masked_name_and_plain_words(client, drawn):
    lottery, ids = drawn
    page = client.get(reverse("compensation:verify", args=[lottery.pk])).content.decode()
    winners = re.findall(r'<li class="winner">([^<]*)</li>', page)
    assert "张**" in winners and "dy****56" in winners and "us***r2" not in winners
    assert len(winners) == 4
    assert not any(w.strip().isdigit() for w in winners)  # no row ids
    assert "u***" in winners  # platform ids "user2", "user3" masked
    assert "张小花" not in page and "dy_88123456" not in page
    assert "manage.py" not in page and "verify_draw" not in page
    assert "做不了手脚" in page and "自己验证一遍" in page


def test_viewer_checks_their_own_win(client, drawn, room):
    lottery, ids = drawn
    url = reverse("compensation:verify", args=[lottery.pk])
    assert "恭喜,这个账号中奖了" in client.get(url, {"uid": "dy_88123456"}).content.decode()
    assert "没有找到这个账号的参与记录" in client.get(url, {"uid": "nobody"}).content.decode()
    # The viewer's own browser (the viewer page's cookie) is told without typing anything.
    client.cookies["cr_device"] = Viewer.objects.get(pk=ids[2]).device_id
    assert "你中奖了" in client.get(url).content.decode()


def test_server_side_check_on_request(client, drawn):
    lottery, _ids = drawn
    url = reverse("compensation:verify", args=[lottery.pk])
    assert 'data-where="server"' not in client.get(url).content.decode()  # recomputed only when asked
    page = client.get(url, {"check": "1"}).content.decode()
    server = page[page.index('data-where="server"'):]
    assert server.index('<span class="badge ok">验证通过</span>') < server.index("</ul>")


def test_lookups_are_limited_per_address(client, drawn, settings):
    from streams import client_limits

    settings.SIGNALLING_BURST, settings.SIGNALLING_PER_MINUTE = 2, 1
    client_limits.reset()
    lottery, _ids = drawn
    url = reverse("compensation:verify", args=[lottery.pk])
    codes = [client.get(url, {"uid": f"x{i}"}).status_code for i in range(4)]
    assert codes[:2] == [200, 200] and codes[-1] == 429
    assert client.get(url).status_code == 200  # reading the page is not a lookup


def test_public_pages_speak_english_too(client, drawn, settings):
    lottery, _ids = drawn
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    page = client.get(reverse("compensation:verify", args=[lottery.pk])).content.decode()
    assert "Why nobody can rig this draw" in page and "Check it yourself" in page and "4 people took part." in page
    missing = client.get("/live/no-such-room")
    assert missing.status_code == 404 and "Page not found" in missing.content.decode()


def test_winners_notice_on_the_viewer_page_links_to_the_draw(client, drawn, room):
    lottery, ids = drawn
    client.cookies["cr_device"] = Viewer.objects.get(pk=ids[0]).device_id
    page = client.get(f"/live/{room.slug}").content.decode()
    notice = re.search(rf'<li class="notice" data-key="campaign-{lottery.pk}">(.*?)</li>', page, re.S).group(1)
    assert "恭喜中奖" in notice and f'href="/compensation/draws/{lottery.pk}/verify"' in notice and "查看开奖" in notice
