"""Compensation's fragments placed on streams' pages through streams.hooks: the viewer page's join / grab
buttons and the wall's progress bars (streams never imports us)."""

import re

import pytest
from django.test import Client

from compensation import services
from compensation.models import Campaign, DrawEntrant
from streams.models import Viewer

from .conftest import present_during

pytestmark = pytest.mark.django_db


def open_lucky_bag(operator, room, outage, budget):
    bag = services.create_campaign(actor=operator, room=room, budget=budget, incident=outage,
                                   kind=Campaign.Kind.LUCKY_BAG, amount_fen=1500, winner_count=1, countdown_s=300,
                                   keyword="要福袋", title="断流补偿福袋")
    return services.issue_campaign(actor=operator, campaign_id=bag.pk) or Campaign.objects.get(pk=bag.pk)


def viewer_browser(device_id):
    """A viewer's browser: CSRF enforced like the real site, the device cookie the viewer page set."""
    browser = Client(enforce_csrf_checks=True)
    browser.cookies["cr_device"] = device_id
    return browser


def test_viewer_present_during_the_outage_presses_join_on_the_lucky_bag(room, operator, outage, budget):
    present_ids = present_during(room, outage, 2)
    bag = open_lucky_bag(operator, room, outage, budget)
    viewer = Viewer.objects.get(pk=present_ids[0])
    browser = viewer_browser(viewer.device_id)

    page = browser.get(f"/live/{room.slug}").content.decode()
    panel_url = re.search(r'<section class="viewer-panel" hx-get="([^"]+)" hx-trigger="load, every 120s', page).group(1)
    assert panel_url == f"/compensation/live/{room.slug}/offers"
    csrf = re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)  # base.html hands it to every htmx request

    panel = browser.get(panel_url, headers={"HX-Request": "true"}).content.decode()
    join_url = f"/compensation/{bag.pk}/join"
    assert "断流补偿福袋" in panel and f'hx-post="{join_url}"' in panel and "参与" in panel

    answer = browser.post(join_url, headers={"HX-Request": "true", "X-CSRFToken": csrf})
    assert answer.status_code == 200 and answer.json()["ok"] is True
    entry = DrawEntrant.objects.get(campaign=bag, viewer=viewer)
    assert entry.via == DrawEntrant.Via.BUTTON

    # The panel reloads after the press: the button is gone, the viewer sees they are in.
    panel = browser.get(panel_url, headers={"HX-Request": "true"}).content.decode()
    assert f'hx-post="{join_url}"' not in panel and "已参与" in panel
    browser.post(join_url, headers={"HX-Request": "true", "X-CSRFToken": csrf})  # a double click
    assert DrawEntrant.objects.filter(campaign=bag).count() == 1


def test_viewer_who_missed_the_outage_gets_no_join_button(room, operator, outage, budget):
    present_during(room, outage, 1)
    bag = open_lucky_bag(operator, room, outage, budget)
    browser = viewer_browser("late-viewer-1")
    page = browser.get(f"/live/{room.slug}").content.decode()
    assert f'hx-get="/compensation/live/{room.slug}/offers"' in page
    panel = browser.get(f"/compensation/live/{room.slug}/offers").content.decode()
    assert f"/compensation/{bag.pk}/join" not in panel
    assert not DrawEntrant.objects.filter(campaign=bag).exists()


@pytest.mark.parametrize("persona", ["operator", "manager"])
def test_wall_shows_compensation_progress_for_ops_and_managers(request, client, persona, operator, room, outage,
                                                               budget):
    present_during(room, outage, 3)
    bag = open_lucky_bag(operator, room, outage, budget)
    client.force_login(request.getfixturevalue(persona))
    page = client.get("/").content.decode()
    assert '<div class="wall-panel" hx-get="/compensation/wall/" hx-trigger="load"' in page
    # Below the tiles (six rooms stay above the fold), not inside the grid the wall re-renders.
    grid = page.index('id="wall-grid"')
    assert page.index('class="wall-panels"') > grid and page.count('class="wall-panels"') == 1
    fragment = client.get("/compensation/wall/", headers={"HX-Request": "true"}).content.decode()
    assert 'ws-connect="/ws/compensation/wall/"' in fragment and f'id="campaign-wall-{bag.pk}"' in fragment


def test_wall_panel_is_not_offered_to_someone_off_duty(outsider):
    from streams import hooks

    assert "/compensation/wall/" not in hooks.wall_panels(outsider)
