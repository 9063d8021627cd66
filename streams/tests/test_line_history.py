"""15-minute graphs per line (fps, bitrate, jitter, loss) from the HealthSample history, drawn on the server:
one query per room, gaps in the samples drawn as gaps, on the room page and behind a tile's "more"."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from conftest import PASSWORD
from streams.models import HealthSample
from streams.selectors import line_history
from streams.wall import history_graphs

pytestmark = pytest.mark.django_db


def samples(room, now, minutes_ago, role="primary", fps=30.0, kbps=1200.0):
    HealthSample.objects.bulk_create([
        HealthSample(room=room, line_role=role, at=now - datetime.timedelta(minutes=m), connected=True, fps=fps,
                     bitrate_kbps=kbps + m, jitter_ms=4.0, loss_pct=0.5) for m in minutes_ago])


def test_history_is_one_query_of_the_last_15_minutes_oldest_first(room, django_assert_num_queries):
    now = timezone.now()
    samples(room, now, [20, 14, 10, 1])  # 20 min ago is outside the window
    samples(room, now, [5], role="backup", fps=25.0)
    samples(room, now, [2], role="program")
    with django_assert_num_queries(1):
        history = line_history(room, minutes=15, now=now)
    assert [round(r[2] - 1200) for r in history["primary"]] == [14, 10, 1]
    assert [r[1] for r in history["backup"]] == [25.0]


def test_graphs_have_a_path_per_metric_and_break_at_gaps(room):
    now = timezone.now()
    since = now - datetime.timedelta(minutes=15)
    # two runs of samples 10 s apart, with a 3-minute hole between them (the line was not measured)
    runs = [now - datetime.timedelta(minutes=9, seconds=10 * i) for i in range(4)]
    runs += [now - datetime.timedelta(minutes=5, seconds=10 * i) for i in range(4)]
    HealthSample.objects.bulk_create([HealthSample(room=room, line_role="primary", at=at, fps=30.0, bitrate_kbps=900.0,
                                                   jitter_ms=3.0, loss_pct=None) for at in runs])
    graphs = history_graphs(line_history(room, now=now), since, now)
    primary = {g["key"]: g for g in graphs["lines"][0]["graphs"]}
    assert set(primary) == {"fps", "bitrate_kbps", "jitter_ms", "loss_pct"}
    assert primary["fps"]["path"].count("M") == 2 and primary["fps"]["path"].count("L") == 6
    assert primary["bitrate_kbps"]["last"] == 900 and primary["loss_pct"]["path"] == ""
    xs = [float(p[1:].split(",")[0]) for p in primary["fps"]["path"].split()]
    assert 0 < min(xs) and max(xs) < graphs["w"] and xs == sorted(xs)  # time runs left to right inside the box
    assert graphs["lines"][1]["graphs"][0]["samples"] == 0  # the backup line has no samples: empty graphs


def test_room_page_and_tile_panel_show_the_graphs(client, room, operator):
    samples(room, timezone.now(), [3, 2, 1])
    assert client.login(username=operator.username, password=PASSWORD)
    page = client.get(reverse("room_detail", args=[room.slug])).content.decode()
    assert 'id="history-test-room"' in page and page.count('class="history-graph"') == 8
    fragment = client.get(reverse("room_history", args=[room.slug])).content.decode()
    assert '<path d="M' in fragment and "近 15 分钟" in fragment
    wall = client.get("/").content.decode()
    assert f'hx-get="{reverse("room_history", args=[room.slug])}"' in wall  # loaded when the tile's panel opens
    client.logout()
    assert client.get(reverse("room_history", args=[room.slug])).status_code == 302
