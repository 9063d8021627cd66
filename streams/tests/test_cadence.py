"""The beat shared by the media worker's health samples and the wall's frames (streams/cadence.py)."""

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from streams import cadence

slugs = st.text(min_size=1, max_size=40)
moments = st.floats(min_value=1.7e9, max_value=2.2e9, allow_nan=False)


@given(slugs, moments)
def test_a_room_samples_once_a_second_at_its_own_place_just_before_a_frame_slot(slug, now):
    at = cadence.next_sample_at(slug, now)
    assert now + 0.5 < at <= now + 1.5
    assert abs((at - cadence.sample_offset(slug)) - round(at - cadence.sample_offset(slug))) < 1e-6
    # A sample that reaches the wall within its lead goes out on the very next slot, 70-130 ms after it was taken.
    lead = cadence.sample_lead(slug)
    assert cadence.SAMPLE_LEAD_MIN_S <= lead < cadence.SAMPLE_LEAD_MIN_S + cadence.SAMPLE_LEAD_SPREAD_MS / 1000
    slot = cadence.next_frame_slot(at + lead - 0.001)
    assert abs(cadence.frame_slot(slot) - at - lead) < 1e-3


@given(moments, st.integers(min_value=-1, max_value=10))
def test_frames_take_a_later_slot_than_the_last_one_and_leave_time_to_render(now, ahead):
    last = int(now / cadence.FRAME_INTERVAL_S) + ahead
    slot = cadence.next_frame_slot(now, after=last)
    assert slot > last
    assert cadence.frame_slot(slot) >= now - 1e-6
    assert cadence.frame_slot(slot) - now < cadence.FRAME_INTERVAL_S + max(0, ahead + 1) * cadence.FRAME_INTERVAL_S


def test_two_hundred_rooms_spread_over_the_four_slots_of_a_second():
    slots = Counter(round((cadence.sample_offset(f"bench-{i:03d}") + cadence.sample_lead(f"bench-{i:03d}")) % 1.0 * 4) % 4
                    for i in range(200))
    assert sorted(slots) == [0, 1, 2, 3]
    assert all(30 <= n <= 70 for n in slots.values()), slots
