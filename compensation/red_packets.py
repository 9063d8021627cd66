"""Splitting a red packet into integer-fen shares, up front.

Algorithm: bounded double-mean ("二倍均值法" with a per-share cap).
With T fen left for n shares and a cap C per share (precondition n <= T <= n*C), draw share i
uniformly from [lo, hi] where

    lo = max(1, T - C*(n-1))              # leave no more than the others can hold
    hi = max(lo, min(C, T - (n-1), 2*T//n))  # leave at least 1 fen each; double the mean

The last share takes exactly what is left. Both invariants n-1 <= T' <= (n-1)*C hold after each
step, so every share is in [1, C] and the shares sum to the total exactly (integers only, no
rounding). The list is shuffled so the order of claims does not favour early or late claimers.
"""

import secrets

_system_random = secrets.SystemRandom()


class RedPacketError(ValueError):
    pass


def split_red_packet(total_fen, count, cap_fen=None, rng=None):
    """Return `count` integer shares in [1, cap_fen] summing exactly to `total_fen`."""
    rng = rng or _system_random
    if not isinstance(total_fen, int) or not isinstance(count, int):
        raise RedPacketError("total and count must be integers (fen)")
    if count <= 0:
        raise RedPacketError("a red packet needs at least one share")
    cap = total_fen if cap_fen is None else cap_fen
    if cap <= 0:
        raise RedPacketError("the per-share cap must be positive")
    if total_fen < count:
        raise RedPacketError(f"{total_fen} fen cannot give {count} shares at least 1 fen each")
    if total_fen > count * cap:
        raise RedPacketError(f"{total_fen} fen does not fit in {count} shares of at most {cap} fen")
    shares = []
    left = total_fen
    for remaining in range(count, 1, -1):
        lo = max(1, left - cap * (remaining - 1))
        hi = max(lo, min(cap, left - (remaining - 1), 2 * left // remaining))
        share = rng.randint(lo, hi)
        shares.append(share)
        left -= share
    shares.append(left)
    rng.shuffle(shares)
    return shares
