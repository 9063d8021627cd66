"""Limits on the anonymous viewer sockets, per client address and per viewer identity (not per socket).

- Sockets per address: at most VIEWER_SOCKETS_PER_ADDRESS open viewer sockets from one address in this
  process (a farm of sockets from one host is refused with close code 4429).
- Chat: per identity (device cookie / account) at most one message per VIEWER_CHAT_INTERVAL_S, and per
  address a token bucket of VIEWER_CHAT_ADDRESS_BURST messages refilled at VIEWER_CHAT_PER_ADDRESS_PER_MINUTE.
  Fifty sockets of one client share one budget.

State is in this process's memory: each web process enforces its own share (a load balancer that keeps an
address on one process makes it exact). The per-client limiter of the signalling endpoints
(streams/client_limits.py) keeps shared state in Redis; these two are meant to be unified.
Carrier-grade NAT puts many real viewers behind one address: the defaults are generous for that.
Loopback (and a socket without a client address) is not limited per address: it is this host itself —
benchmarks, or a reverse proxy run without `--proxy-headers`, where every viewer would share one address.
"""

import threading
import time

from django.conf import settings

_lock = threading.Lock()
_sockets = {}  # address -> open viewer sockets in this process
_last_chat = {}  # viewer key -> monotonic time of its last accepted message
_buckets = {}  # address -> (tokens, monotonic time)


def scope_address(scope):
    client = scope.get("client") or ()
    return str(client[0]) if client else "unknown"


def _exempt(address):
    return address == "unknown" or address.startswith("127.") or address == "::1"


def open_socket(address):
    """Count a new socket from `address`; False (and not counted) when it already holds the maximum."""
    if _exempt(address):
        return True
    with _lock:
        held = _sockets.get(address, 0)
        if held >= settings.VIEWER_SOCKETS_PER_ADDRESS:
            return False
        _sockets[address] = held + 1
        return True


def close_socket(address):
    if _exempt(address):
        return
    with _lock:
        held = _sockets.get(address, 0) - 1
        if held > 0:
            _sockets[address] = held
        else:
            _sockets.pop(address, None)


def allow_chat(viewer_key, address, now=None):
    """May this identity, from this address, post a chat message now? Counts it when it may."""
    now = time.monotonic() if now is None else now
    with _lock:
        if now - _last_chat.get(viewer_key, -1e9) < settings.VIEWER_CHAT_INTERVAL_S:
            return False
        if _exempt(address):
            _last_chat[viewer_key] = now
            return True
        burst = settings.VIEWER_CHAT_ADDRESS_BURST
        tokens, at = _buckets.get(address, (burst, now))
        tokens = min(burst, tokens + (now - at) * settings.VIEWER_CHAT_PER_ADDRESS_PER_MINUTE / 60)
        if tokens < 1:
            _buckets[address] = (tokens, now)
            return False
        _buckets[address] = (tokens - 1, now)
        _last_chat[viewer_key] = now
        if len(_last_chat) > 100_000:  # forget identities idle for a minute (bounded memory)
            for key in [k for k, t in _last_chat.items() if now - t > 60]:
                _last_chat.pop(key, None)
        return True


def reset():
    """Forget everything (tests)."""
    with _lock:
        _sockets.clear()
        _last_chat.clear()
        _buckets.clear()
