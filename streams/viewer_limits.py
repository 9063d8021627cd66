"""Limits on the anonymous viewer sockets, per client address and per viewer identity (not per socket).

- Sockets per address: at most VIEWER_SOCKETS_PER_ADDRESS open viewer sockets from one address (a farm of
  sockets from one host is refused with close code 4429).
- Chat: per identity (device cookie / account) at most one message per VIEWER_CHAT_INTERVAL_S, and per
  address a token bucket of VIEWER_CHAT_ADDRESS_BURST messages refilled at VIEWER_CHAT_PER_ADDRESS_PER_MINUTE.
  Fifty sockets of one client share one budget.

The counts live where the signalling limits keep theirs (streams/client_limits.py): in Redis when there is
one, so every web process enforces one shared limit; in memory on the embedded default (one process).
Carrier-grade NAT puts many real viewers behind one address: the defaults are generous for that.
Loopback (and a socket without a client address) is not limited per address: it is this host itself —
benchmarks, or a reverse proxy run without `--proxy-headers`, where every viewer would share one address.
"""

import time
import uuid

from django.conf import settings

from .client_limits import _guarded, backend

# A socket's seat is released when it closes; one whose process died is forgotten after a long show.
SOCKET_SEAT_TTL_S = 6 * 3600
SOCKETS = "sockets"


def scope_address(scope):
    client = scope.get("client") or ()
    return str(client[0]) if client else "unknown"


def _exempt(address):
    return address == "unknown" or address.startswith("127.") or address == "::1"


async def open_socket(address):
    """Hold a seat for a new socket from `address`: its id, "" when exempt, None when the address is full."""
    if _exempt(address):
        return ""
    seat = uuid.uuid4().hex
    limit = settings.VIEWER_SOCKETS_PER_ADDRESS
    now = time.time()
    full = await _guarded("viewer sockets", backend().reserve(
        address, SOCKETS, seat, limit, limit, now + SOCKET_SEAT_TTL_S, now, pool=SOCKETS), "")
    return None if full else seat


async def close_socket(address, seat):
    if seat:
        await _guarded("viewer sockets", backend().drop(address, SOCKETS, seat, pool=SOCKETS))


async def allow_chat(viewer_key, address, now=None):
    """May this identity, from this address, post a chat message now? Counts it when it may."""
    now = time.time() if now is None else now
    interval = settings.VIEWER_CHAT_INTERVAL_S
    if interval > 0:
        # one token, refilled once per interval: at most one message per interval from any socket
        wait = await _guarded("chat", backend().take(f"chat-viewer:{viewer_key}", 1, 1 / interval, now), 0.0)
        if wait > 0:
            return False
    if _exempt(address):
        return True
    per_s = settings.VIEWER_CHAT_PER_ADDRESS_PER_MINUTE / 60
    wait = await _guarded("chat", backend().take(f"chat:{address}", settings.VIEWER_CHAT_ADDRESS_BURST, per_s, now), 0.0)
    return wait <= 0


def reset():
    """Forget everything (tests)."""
    backend().reset()
