"""Property tests: red packet shares are exact and bounded; draws are reproducible, unique, fair-sized."""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compensation import draws
from compensation.red_packets import RedPacketError, split_red_packet


@st.composite
def packets(draw):
    count = draw(st.integers(min_value=1, max_value=400))
    cap = draw(st.integers(min_value=1, max_value=50_000))
    total = draw(st.integers(min_value=count, max_value=count * cap))
    return total, count, cap


@given(packets(), st.integers(min_value=0, max_value=2**32))
@settings(max_examples=300, deadline=None)
def test_red_packet_shares_sum_exactly_and_respect_bounds(packet, seed):
    total, count, cap = packet
    shares = split_red_packet(total, count, cap, rng=random.Random(seed))
    assert len(shares) == count
    assert sum(shares) == total
    assert all(isinstance(s, int) and 1 <= s <= cap for s in shares)


@given(st.integers(min_value=1, max_value=10_000), st.integers(min_value=1, max_value=200))
@settings(max_examples=200, deadline=None)
def test_red_packet_without_cap_still_exact(total, count):
    if total < count:
        with pytest.raises(RedPacketError):
            split_red_packet(total, count)
        return
    shares = split_red_packet(total, count)
    assert sum(shares) == total and min(shares) >= 1


@pytest.mark.parametrize("total,count,cap,message", [
    (5, 10, 100, "at least 1 fen"),      # not enough fen for one each
    (1001, 10, 100, "does not fit"),      # more than count x cap
    (100, 0, 100, "at least one share"),
    (100, 10, 0, "cap must be positive"),
])
def test_impossible_red_packets_are_refused_clearly(total, count, cap, message):
    with pytest.raises(RedPacketError, match=message):
        split_red_packet(total, count, cap)


@given(st.lists(st.integers(min_value=1, max_value=10**9), max_size=300), st.integers(min_value=0, max_value=400),
       st.binary(min_size=1, max_size=32))
@settings(max_examples=200, deadline=None)
def test_draws_are_reproducible_unique_and_sized_min_k_entrants(entrants, k, seed_bytes):
    seed = seed_bytes.hex()
    winners = draws.draw_winners(seed, entrants, k)
    assert winners == draws.draw_winners(seed, list(reversed(entrants)), k)  # order of entry does not matter
    assert len(winners) == len(set(winners)) == min(k, len(set(entrants)))
    assert set(winners) <= set(entrants)
    result = draws.verify(seed=seed, published_seed_hash=draws.seed_hash(seed), entrant_ids=entrants,
                          published_entrants_hash=draws.entrants_digest(entrants), k=k, published_winners=winners)
    assert result["ok"]


def test_verification_catches_a_swapped_seed_or_entrant_list():
    seed, other = draws.new_seed(), draws.new_seed()
    entrants = list(range(1, 101))
    winners = draws.draw_winners(seed, entrants, 5)
    published = dict(published_seed_hash=draws.seed_hash(seed), published_entrants_hash=draws.entrants_digest(entrants),
                     k=5, published_winners=winners)
    assert not draws.verify(seed=other, entrant_ids=entrants, **published)["seed_matches_hash"]
    tampered = draws.verify(seed=seed, entrant_ids=entrants + [999], **published)
    assert not tampered["entrants_match_hash"]


def test_draw_function_is_the_documented_hmac_rule():
    import hashlib
    import hmac

    seed = "ab" * 32
    ids = [3, 1, 2, 10]
    by_hand = sorted(ids, key=lambda i: hmac.new(seed.encode(), str(i).encode(), hashlib.sha256).hexdigest())[:2]
    assert draws.draw_winners(seed, ids, 2) == by_hand
    assert draws.entrants_digest(ids) == hashlib.sha256(b"1\n2\n3\n10").hexdigest()
