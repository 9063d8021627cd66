"""The shared beat of health samples and wall frames.

The wall sends at most one frame per 250 ms. If health samples arrived at random moments, a sample
would wait up to a whole interval for the next frame (p99 ≈ 248 ms before any work is done). Instead
both sides keep the same wall clock (`time.time()`, NTP-synced across machines): frames go out on a
fixed 250 ms grid, and each room's media worker takes its once-a-second sample a little before one of
the four slots of the second, so the sample reaches the wall (which renders the tile on arrival) just
before the frame that carries it. Rooms are spread over the four slots, and over a 60 ms window before
each, by a hash of their slug: each frame carries about a quarter of the rooms, and their tiles are
rendered one after another as they arrive rather than all at once. Events (switches, alerts,
acknowledgements) are not on the grid; they go out on the next slot.
"""

import math
import time
import zlib

FRAME_INTERVAL_S = 0.25
SLOTS_PER_SECOND = 4
# A sample is taken between these two leads before its frame slot: time to measure, cross Redis and be
# rendered by the wall, spread so that a quarter of 200 rooms do not all arrive in the same millisecond.
SAMPLE_LEAD_MIN_S = 0.07
SAMPLE_LEAD_SPREAD_MS = 60
# A frame that goes out late (a busy event loop) may be followed by the next slot's frame sooner than
# 250 ms, but never sooner than this; beyond that the next frame skips a slot.
MIN_FRAME_GAP_S = 0.2


def frame_slot(index):
    """Wall-clock time of frame slot `index` (slots are numbered from the epoch)."""
    return index * FRAME_INTERVAL_S


def next_frame_slot(now=None, after=-1):
    """Index of the first slot at or after `now`, and later than slot `after`."""
    now = time.time() if now is None else now
    return max(math.ceil(now / FRAME_INTERVAL_S), after + 1)


def sample_lead(slug):
    """How long before its frame slot this room samples (seconds)."""
    spread = (zlib.crc32(slug.encode()) // SLOTS_PER_SECOND) % SAMPLE_LEAD_SPREAD_MS
    return SAMPLE_LEAD_MIN_S + spread / 1000


def sample_offset(slug):
    """Where in each second this room samples its health (seconds after the full second, 0 ≤ x < 1)."""
    slot = zlib.crc32(slug.encode()) % SLOTS_PER_SECOND
    return (slot * FRAME_INTERVAL_S - sample_lead(slug)) % 1.0


def next_sample_at(slug, now=None):
    """The room's next sampling moment, at least half a second away from `now` (an early wake-up
    from sleep must not sample twice in one second)."""
    now = time.time() if now is None else now
    offset = sample_offset(slug)
    at = math.floor(now) + offset
    while at <= now + 0.5:
        at += 1.0
    return at
