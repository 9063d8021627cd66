"""Property: live hours split at shift boundaries in SQL equal a straightforward Python computation,
for arbitrary sessions (crossing midnight, the range edges, several days, still open) and any bands."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from incidents import analytics
from streams.models import LiveSession

SH = ZoneInfo("Asia/Shanghai")
BASE = datetime(2026, 3, 1, tzinfo=SH)


def python_hours(sessions, start, end, bands, now):
    """The straightforward Python split (also the embedded SQLite path) as the reference."""
    night, total = analytics.split_live_seconds(sessions, start, end, bands, now)
    return night / 3600, (total - night) / 3600


session = st.tuples(st.integers(0, 6 * 24 * 60), st.integers(1, 40 * 60), st.booleans())


@pytest.mark.django_db
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sessions=st.lists(session, min_size=1, max_size=6), night_start=st.integers(0, 24),
       night_end=st.integers(0, 24), range_days=st.tuples(st.integers(0, 3), st.integers(1, 5)))
def test_sql_live_hours_match_python(room, sessions, night_start, night_end, range_days):
    LiveSession.objects.filter(room=room).delete()
    rows = []
    now = BASE + timedelta(days=5, hours=7, minutes=13)
    for start_min, length_min, still_open in sessions:
        s = BASE + timedelta(minutes=start_min)
        e = None if still_open and s < now else s + timedelta(minutes=length_min)
        LiveSession.objects.create(room=room, started_at=s, ended_at=e)
        rows.append((s, e))
    start = BASE + timedelta(days=range_days[0], hours=3)
    end = start + timedelta(days=range_days[1])
    bands = analytics.ShiftBands(night_start, night_end)
    hours = analytics.live_hours(start, end, bands, now=now)
    night, day = python_hours(rows, start, end, bands, now)
    assert hours["night"] == pytest.approx(night, abs=1e-6)
    assert hours["day"] == pytest.approx(day, abs=1e-6)
