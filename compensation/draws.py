"""Verifiable draws for lotteries and lucky bags (commit, freeze, draw, reveal).

1. Open: a secret seed (32 random bytes from `secrets`, hex) is generated; SHA-256(seed as ASCII hex)
   is published. The operator cannot change the seed later without the hash changing.
2. Close: the entrant list is frozen; the entrants digest is SHA-256 of the sorted viewer ids as
   decimal ASCII, one per line, joined with "\\n" (no trailing newline). It is published.
3. Draw: for each entrant id, score = HMAC-SHA256(key=seed ASCII, message=str(id) ASCII), as hex.
   Winners are the min(K, entrants) ids with the smallest scores (ties, which need a SHA-256
   collision, broken by the smaller id), listed in score order.
4. Reveal: the seed is published; anyone can recompute steps 1-3 (verify page, `manage.py verify_draw`).
"""

import hashlib
import hmac
import secrets


def new_seed():
    return secrets.token_hex(32)


def seed_hash(seed):
    return hashlib.sha256(seed.encode("ascii")).hexdigest()


def entrants_digest(entrant_ids):
    text = "\n".join(str(i) for i in sorted(int(i) for i in entrant_ids))
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def score(seed, entrant_id):
    return hmac.new(seed.encode("ascii"), str(int(entrant_id)).encode("ascii"), hashlib.sha256).hexdigest()


def draw_winners(seed, entrant_ids, k):
    """The K entrants with the smallest HMAC scores (deterministic, unique)."""
    if k < 0:
        raise ValueError("winner count must not be negative")
    unique_ids = sorted(set(int(i) for i in entrant_ids))
    ranked = sorted(unique_ids, key=lambda i: (score(seed, i), i))
    return ranked[:k]


def verify(*, seed, published_seed_hash, entrant_ids, published_entrants_hash, k, published_winners):
    """Recompute a draw; returns a dict of checks (all True when the draw is honest)."""
    winners = draw_winners(seed, entrant_ids, k)
    checks = {
        "seed_matches_hash": seed_hash(seed) == published_seed_hash,
        "entrants_match_hash": entrants_digest(entrant_ids) == published_entrants_hash,
        "winners_match": winners == [int(w) for w in published_winners],
    }
    checks["ok"] = all(checks.values())
    checks["recomputed_winners"] = winners
    return checks
