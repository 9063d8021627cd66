"""Property: the SQL audience equals a plain Python computation on random presence intervals.

Viewers 0-3 are identified by the room's merchant, 4-5 are anonymous cookies (never eligible by default);
the minimum watch time (COMPENSATION_MIN_WATCH_S) applies whatever the campaign asks."""

from datetime import datetime, timedelta, timezone as dt_timezone

import pytest
from django.conf import settings as dj_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compensation import selectors
from streams.models import LiveRoom, Viewer, ViewerSession

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=dt_timezone.utc)
WINDOW = (T0 + timedelta(seconds=100), T0 + timedelta(seconds=400))

session = st.tuples(
    st.integers(min_value=0, max_value=5),          # viewer
    st.integers(min_value=0, max_value=500),        # joined (s after T0)
    st.integers(min_value=0, max_value=300),        # duration until last seen
    st.one_of(st.none(), st.integers(min_value=0, max_value=300)),  # left after joining, or still open
)


IDENTIFIED = {0, 1, 2, 3}


def reference(sessions, min_overlap):
    start, end = WINDOW
    min_overlap = max(min_overlap, dj_settings.COMPENSATION_MIN_WATCH_S)
    totals = {}
    for viewer, joined, seen, left in sessions:
        if viewer not in IDENTIFIED:
            continue
        j = T0 + timedelta(seconds=joined)
        stop = T0 + timedelta(seconds=joined + (left if left is not None else seen))
        if j < end and stop > start:
            totals[viewer] = totals.get(viewer, 0) + (min(stop, end) - max(j, start)).total_seconds()
    return {v for v, total in totals.items() if total >= min_overlap}


@pytest.mark.django_db
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(session, max_size=15), st.integers(min_value=0, max_value=300))
def test_sql_audience_matches_the_definition(sessions, min_overlap):
    room, _ = LiveRoom.objects.get_or_create(slug="prop-room", defaults={"name": "p", "merchant": "m"})
    viewers = {i: Viewer.objects.get_or_create(device_id=f"prop-{i}", defaults={
        "platform_merchant": "m", "platform_user_id": f"prop-{i}" if i in IDENTIFIED else None})[0] for i in range(6)}
    ViewerSession.objects.filter(room=room).delete()
    for viewer, joined, seen, left in sessions:
        j = T0 + timedelta(seconds=joined)
        ViewerSession.objects.create(
            room=room, viewer=viewers[viewer], joined_at=j, last_seen_at=j + timedelta(seconds=seen),
            left_at=j + timedelta(seconds=left) if left is not None else None)
    got = {row["viewer_id"] for row in selectors.audience(room.pk, *WINDOW, min_overlap)}
    assert got == {viewers[v].pk for v in reference(sessions, min_overlap)}
