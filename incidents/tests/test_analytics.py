"""Analytics arithmetic on hand-computed fixtures: rate per live hour (night vs day), MTTx definitions."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from incidents import analytics, services
from incidents.models import Incident, IncidentStep, IncidentType
from streams.models import LiveRoom, LiveSession

pytestmark = pytest.mark.django_db
SH = ZoneInfo("Asia/Shanghai")


def at(day, hour, minute=0):
    """2026-03-<day> hh:mm in Beijing time (Mon 2 March 2026)."""
    return datetime(2026, 3, day, hour, minute, tzinfo=SH)


def make(room, when, type_slug="stream-interruption", **kw):
    kw.setdefault("status", "resolved")  # history: closed cases (one open per room+type at most)
    return Incident.objects.create(room=room, incident_type=IncidentType.objects.get(slug=type_slug),
                                   title="t", detected_at=when, **kw)


@pytest.fixture
def rooms(room):
    other = LiveRoom.objects.create(name="零食节", slug="snacks", merchant="好味零食铺")
    return room, other


@pytest.fixture
def shifts_fixture(rooms):
    a, b = rooms
    LiveSession.objects.create(room=a, started_at=at(1, 23), ended_at=at(2, 1))      # clipped: 00-01 night 1h
    LiveSession.objects.create(room=a, started_at=at(2, 20), ended_at=at(3, 2))      # 22-02 night 4h, day 2h
    LiveSession.objects.create(room=a, started_at=at(3, 7), ended_at=at(3, 9, 30))   # night 1h, day 1.5h
    LiveSession.objects.create(room=b, started_at=at(3, 12), ended_at=at(3, 14))     # day 2h
    LiveSession.objects.create(room=b, started_at=at(3, 23), ended_at=None)          # open; now=4th 01:00 -> 2h
    LiveSession.objects.create(room=b, started_at=at(6, 10), ended_at=at(6, 12))     # outside the range
    for when in (at(2, 23, 30), at(3, 1), at(3, 7, 30), at(4, 0, 30)):
        make(a, when)
    make(a, at(2, 21))
    make(b, at(3, 13), type_slug="weak-network")
    make(b, at(3, 2), is_drill=True)                     # drills are not production incidents
    make(b, at(3, 15), status="cancelled")               # nor are false alarms
    return analytics.ShiftBands(22, 8), at(2, 0), at(5, 0), at(4, 1)


def test_live_hours_are_split_at_shift_boundaries(shifts_fixture):
    bands, start, end, now = shifts_fixture
    hours = analytics.live_hours(start, end, bands, now=now)
    assert hours["night"] == pytest.approx(8.0)   # 1 + 4 + 1 + 2
    assert hours["day"] == pytest.approx(5.5)     # 2 + 1.5 + 2
    assert hours["total"] == pytest.approx(13.5)


def test_failure_rate_per_live_hour_night_vs_day(shifts_fixture):
    bands, start, end, now = shifts_fixture
    rates = analytics.failure_rates(start, end, bands, now=now)
    assert rates["night"]["incidents"] == 4 and rates["day"]["incidents"] == 2
    assert rates["night"]["rate"] == pytest.approx(4 / 8.0)
    assert rates["day"]["rate"] == pytest.approx(2 / 5.5)


def test_shift_bands_are_configurable(shifts_fixture):
    _, start, end, now = shifts_fixture
    bands = analytics.ShiftBands(0, 6)  # a non-wrapping night band
    hours = analytics.live_hours(start, end, bands, now=now)
    assert hours["night"] == pytest.approx(4.0)   # 00-01 (2nd) + 00-02 (3rd) + 00-01 (4th)
    assert hours["day"] == pytest.approx(9.5)
    counts = analytics.counts(start, end, bands)["shift"]
    assert counts == {"night": 2, "day": 4}       # only 01:00 and 00:30 fall in 00-06

def test_counts_by_dimension_and_heatmap(shifts_fixture, rooms):
    bands, start, end, _ = shifts_fixture
    c = analytics.counts(start, end, bands)
    a, b = rooms
    assert c["room"] == {a.pk: 5, b.pk: 1}
    assert c["merchant"] == {"测试商家": 5, "好味零食铺": 1}
    types = {IncidentType.objects.get(pk=k).slug: v for k, v in c["type"].items()}
    assert types == {"stream-interruption": 5, "weak-network": 1}
    assert c["severity"] == {3: 6}
    # 2 March 2026 is a Monday (ISO 1): 21:00 and 23:30; Tuesday 01:00, 07:30, 13:00; Wednesday 00:30.
    assert c["heat"] == {(1, 21): 1, (1, 23): 1, (2, 1): 1, (2, 7): 1, (2, 13): 1, (3, 0): 1}


def test_mttx_definitions(room):
    t0 = at(10, 12)
    s = timedelta(seconds=1)
    make(room, t0, acknowledged_at=t0 + 60 * s, mitigated_at=t0 + 300 * s, resolved_at=t0 + 900 * s,
         first_announcement_at=t0 + 30 * s, status="resolved")
    make(room, t0 + timedelta(hours=1), acknowledged_at=t0 + timedelta(hours=1) + 120 * s,
         mitigated_at=t0 + timedelta(hours=1) + 600 * s, resolved_at=t0 + timedelta(hours=1) + 1800 * s,
         status="resolved")
    make(room, t0 + timedelta(hours=2), acknowledged_at=t0 + timedelta(hours=2) + 300 * s,
         resolved_at=t0 + timedelta(hours=2) + 3600 * s, first_announcement_at=t0 + timedelta(hours=2) + 90 * s,
         status="resolved")
    make(room, t0 + timedelta(hours=3), type_slug="other", status="detected")  # counts, but no MTTx
    rows = analytics.response_times(at(10, 0), at(11, 0))
    by_type = {r["incident_type_id"]: r for r in rows if not r["is_total"]}
    r = by_type[IncidentType.objects.get(slug="stream-interruption").pk]
    assert r["n"] == 3
    assert float(r["mtta_mean"]) == pytest.approx(160) and float(r["mtta_median"]) == pytest.approx(120)
    assert float(r["mttm_mean"]) == pytest.approx(450) and float(r["mttm_median"]) == pytest.approx(450)
    assert float(r["mttr_mean"]) == pytest.approx(2100) and float(r["mttr_median"]) == pytest.approx(1800)
    assert float(r["announce_mean"]) == pytest.approx(60)  # (30 + 90) / 2: only incidents that announced
    # Viewer-visible downtime: until mitigated, or resolved when never mitigated: 300, 600, 3600 s.
    assert float(r["downtime_mean"]) == pytest.approx(1500)
    assert float(r["downtime_total"]) == pytest.approx(4500)
    total = next(r for r in rows if r["is_total"])
    assert total["n"] == 4 and float(total["mtta_mean"]) == pytest.approx(160)
    weeks = analytics.weekly_trend(at(10, 0), at(11, 0))
    assert len(weeks) == 1 and weeks[0]["n"] == 4 and float(weeks[0]["mttr_mean"]) == pytest.approx(2100)


def test_slowest_steps_rank_the_weak_links(room):
    incident = make(room, at(10, 12))
    drill = make(room, at(10, 13), is_drill=True)
    for inc, title, ms in ((incident, "呼叫替补主播到场", 240_000), (incident, "呼叫替补主播到场", 360_000),
                           (incident, "置顶致歉公告", 20_000), (drill, "置顶致歉公告", 900_000)):
        step = IncidentStep.objects.create(incident=inc, role="floor_control", position=1, title=title,
                                           duration_ms=ms, completed_at=inc.detected_at)
        services.rollup_step_duration(step, is_drill=inc.is_drill)
    steps = analytics.slowest_steps(at(10, 0), at(11, 0))
    assert [(s["title"], s["n"], float(s["mean_s"]), float(s["max_s"])) for s in steps] == [
        ("呼叫替补主播到场", 2, 300.0, 360.0), ("置顶致歉公告", 1, 20.0, 20.0)]
    assert analytics.slowest_steps(at(11, 0), at(12, 0)) == []


def test_analytics_page_and_csv_for_managers_only(client, shifts_fixture, manager, operator):
    client.force_login(operator)
    assert client.get("/incidents/analytics/").status_code == 403
    client.force_login(manager)
    query = "?date_from=2026-03-02&date_to=2026-03-04"
    page = client.get("/incidents/analytics/" + query)
    assert page.status_code == 200
    html = page.content.decode()
    assert "<svg" in html and "每直播小时故障率" in html and "热力图" in html
    response = client.get("/incidents/analytics.csv" + query)
    assert response["Content-Type"].startswith("text/csv")
    rows = response.content.decode("utf-8-sig").splitlines()
    assert rows[0] == "section,key,metric,value"
    assert "by_merchant,测试商家,incidents,5" in rows
    assert "rate_per_live_hour,night,incidents,4" in rows
    assert "heatmap,周一 23时,incidents,1" in rows


def test_python_fallback_for_sqlite_gives_the_same_figures(shifts_fixture, room):
    """The embedded SQLite default computes the page in Python; on the same data it must agree."""
    bands, start, end, now = shifts_fixture
    t0 = at(2, 22)
    make(room, t0, type_slug="device-failure", acknowledged_at=t0 + timedelta(seconds=50),
         mitigated_at=t0 + timedelta(seconds=70), resolved_at=t0 + timedelta(seconds=400),
         first_announcement_at=t0 + timedelta(seconds=20))
    sql = analytics._assemble(analytics.counts(start, end, bands), analytics.sums_by_type_and_week(start, end),
                              analytics.medians_by_type(start, end), analytics.live_hours(start, end, bands, now=now),
                              analytics.slowest_steps(start, end))
    py = analytics.python_dashboard(start, end, bands, now=now)
    assert py["counts"] == sql["counts"]
    for shift in ("night", "day"):
        assert py["rates"][shift]["incidents"] == sql["rates"][shift]["incidents"]
        assert py["rates"][shift]["live_hours"] == pytest.approx(sql["rates"][shift]["live_hours"])
    key = lambda r: (r["is_total"], r["incident_type_id"] or 0)  # noqa: E731
    for a, b in zip(sorted(py["response"], key=key), sorted(sql["response"], key=key)):
        assert a["n"] == b["n"]
        for metric in ("mtta_mean", "mttm_mean", "mttr_mean", "announce_mean", "downtime_mean", "mttr_median"):
            assert (a.get(metric) is None and b.get(metric) is None) or a[metric] == pytest.approx(b[metric]), metric
    assert [w["n"] for w in py["weekly"]] == [w["n"] for w in sql["weekly"]]


def test_analytics_follow_corrections_and_cancellations(room, operator, manager):
    """The narrow analytics copy is kept by a database trigger: every audited change shows up at once."""
    incident = services.open_incident(room=room, incident_type="weak-network", actor=operator)
    services.transition(incident=incident, to="acknowledged", actor=operator)
    incident.refresh_from_db()
    start, end = incident.detected_at - timedelta(days=1), incident.detected_at + timedelta(days=1)
    detected = incident.detected_at - timedelta(minutes=10)
    services.correct_milestone(incident=incident, milestone="detected_at", value=detected,
                               reason="告警晚了 10 分钟", actor=manager)
    services.correct_milestone(incident=incident, milestone="acknowledged_at", value=detected + timedelta(seconds=90),
                               reason="电话里先响应了", actor=manager)
    medians = analytics.medians_by_type(start, end)
    assert medians[incident.incident_type_id]["mtta_median"] == pytest.approx(90)
    assert analytics.counts(start, end, analytics.ShiftBands())["type"] == {incident.incident_type_id: 1}
    services.transition(incident=incident, to="cancelled", actor=operator, reason="误报")
    assert analytics.counts(start, end, analytics.ShiftBands())["type"] == {}


def test_sqlite_path_renders_when_a_type_has_no_milestones_yet(shifts_fixture, room):
    """An incident that is only detected has no MTTA/MTTM/MTTR: the page shows blanks, not a crash."""
    from incidents import charts

    bands, start, end, now = shifts_fixture
    make(room, at(2, 22), type_slug="host-emergency")  # detected, nothing else yet
    data = analytics.python_dashboard(start, end, bands, now=now)
    row = next(r for r in data["response"] if not r["is_total"])
    assert row["mtta_median"] is None and row["mttr_median"] is None
    view = charts.build(data)
    assert any(item["n"] == 1 and item["mttr_median"] is None for item in view["response"])
