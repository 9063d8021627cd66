"""Per-client limits on the public signalling endpoints (WHIP/WHEP).

Two things per client address: a token bucket on requests (SIGNALLING_BURST at once, then
SIGNALLING_PER_MINUTE), and a count of the WHEP sessions it holds (WHEP_SESSIONS_PER_CLIENT in all,
WHEP_SESSIONS_PER_CLIENT_ROOM per room). State lives in Redis when there is one (every web process
shares it), else in this process's memory (the embedded default has one process).

A session leaves the count on DELETE, when the engine no longer has it (checked the moment the
client reaches its limit: the engine reaps sessions that never connect, and ends closed ones), and
at the latest after WHEP_SESSION_COUNT_TTL_S.
"""

import asyncio
import ipaddress
import logging
import math
import threading
import time
import uuid
from dataclasses import dataclass

from django.conf import settings

logger = logging.getLogger(__name__)

PENDING_TTL_S = 30  # a seat held while the engine answers the offer (its request timeout is 10 s)


@dataclass
class Refusal:
    reason: str
    retry_after: int  # seconds, for the Retry-After header


def client_address(request):
    """The client's address: REMOTE_ADDR, or the last X-Forwarded-For hop a trusted proxy added."""
    remote = request.META.get("REMOTE_ADDR") or "unknown"
    trusted = settings.TRUSTED_PROXIES
    if not trusted or not _in(remote, trusted):
        return remote
    hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
    # walk from the right: the first hop not added by one of our proxies is the client
    for hop in reversed(hops):
        if not _in(hop, trusted):
            return hop if _valid(hop) else remote
    return hops[0] if hops and _valid(hops[0]) else remote


def _valid(address):
    try:
        ipaddress.ip_address(address)
        return True
    except ValueError:
        return False


def _in(address, networks):
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for net in networks:
        try:
            if ip in ipaddress.ip_network(net, strict=False):
                return True
        except ValueError:
            continue
    return False


# --- backends ------------------------------------------------------------------------------------

def _pooled(pool, address):
    """Seats of different kinds (WHEP sessions, viewer sockets) are counted apart."""
    return address if pool == "whep" else f"{pool}:{address}"


class MemoryBackend:
    """One process (embedded default): dicts behind a lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.buckets = {}  # address -> (tokens, at)
        self.sessions = {}  # address -> {member "room session": expires_at}
        self.owners = {}  # session -> (address, room, expires_at)

    async def take(self, address, burst, per_s, now):
        with self.lock:
            tokens, at = self.buckets.get(address, (burst, now))
            tokens = min(burst, tokens + (now - at) * per_s)
            if tokens < 1:
                self.buckets[address] = (tokens, now)
                return (1 - tokens) / per_s
            self.buckets[address] = (tokens - 1, now)
            if len(self.buckets) > 100_000:  # full buckets carry no information
                for key in [k for k, (t, a) in self.buckets.items() if t + (now - a) * per_s >= burst]:
                    self.buckets.pop(key, None)
            return 0.0

    def _live(self, address, now):
        members = self.sessions.get(address, {})
        for member in [m for m, exp in members.items() if exp <= now]:
            members.pop(member)
        return members

    async def reserve(self, address, room, member, per_room, total, expires_at, now, pool="whep"):
        with self.lock:
            members = self._live(_pooled(pool, address), now)
            if len(members) >= total:
                return "total"
            if sum(1 for m in members if m.split(" ", 1)[0] == room) >= per_room:
                return "room"
            self.sessions.setdefault(_pooled(pool, address), {})[f"{room} {member}"] = expires_at
            return ""

    async def confirm(self, address, room, pending, session, expires_at):
        with self.lock:
            members = self.sessions.setdefault(address, {})
            members.pop(f"{room} {pending}", None)
            members[f"{room} {session}"] = expires_at
            self.owners[session] = (address, room, expires_at)
            if len(self.owners) > 10_000:  # sessions nobody ended: forgotten once their count expired
                now = time.time()
                for old in [k for k, (_, _, exp) in self.owners.items() if exp <= now]:
                    del self.owners[old]

    async def drop(self, address, room, member, pool="whep"):
        with self.lock:
            self.sessions.get(_pooled(pool, address), {}).pop(f"{room} {member}", None)

    async def release(self, session):
        with self.lock:
            owner = self.owners.pop(session, None)
            if owner is not None:
                self.sessions.get(owner[0], {}).pop(f"{owner[1]} {session}", None)
            return owner is not None

    async def held(self, address, now):
        with self.lock:
            return [tuple(m.split(" ", 1)) for m in self._live(address, now)]

    def reset(self):
        with self.lock:
            self.buckets.clear(), self.sessions.clear(), self.owners.clear()


TAKE_LUA = """
local burst, per_s, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 't', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * per_s)
local wait = 0
if tokens < 1 then wait = (1 - tokens) / per_s else tokens = tokens - 1 end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / per_s) + 1)
return tostring(wait)
"""

RESERVE_LUA = """
local room, member, per_room, total = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local expires_at, now, ttl = ARGV[5], ARGV[6], tonumber(ARGV[7])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
if #members >= total then return 'total' end
local in_room, prefix = 0, room .. ' '
for _, m in ipairs(members) do
  if string.sub(m, 1, #prefix) == prefix then in_room = in_room + 1 end
end
if in_room >= per_room then return 'room' end
redis.call('ZADD', KEYS[1], expires_at, prefix .. member)
redis.call('EXPIRE', KEYS[1], ttl)
return ''
"""


class RedisBackend:
    """Every web process shares the counts (process mode): a few small keys per client address."""

    def __init__(self, url, prefix):
        self.url, self.prefix = url, prefix
        self.clients = {}  # event loop -> redis.asyncio client (tests run one loop per test)

    def client(self):
        import redis.asyncio as aioredis

        loop = asyncio.get_running_loop()
        client = self.clients.get(loop)
        if client is None:
            for old in [lp for lp in self.clients if lp.is_closed()]:
                self.clients.pop(old, None)
            client = self.clients[loop] = aioredis.Redis.from_url(
                self.url, socket_timeout=2, socket_connect_timeout=2, decode_responses=True)
        return client

    def _key(self, kind, name):
        return f"{self.prefix}{kind}:{name}"

    async def take(self, address, burst, per_s, now):
        wait = await self.client().eval(TAKE_LUA, 1, self._key("bucket", address), burst, per_s, now)
        return float(wait)

    async def reserve(self, address, room, member, per_room, total, expires_at, now, pool="whep"):
        ttl = max(settings.WHEP_SESSION_COUNT_TTL_S, math.ceil(float(expires_at) - now))
        return await self.client().eval(RESERVE_LUA, 1, self._key(pool, address), room, member, per_room, total,
                                        expires_at, now, ttl)

    async def confirm(self, address, room, pending, session, expires_at):
        ttl = settings.WHEP_SESSION_COUNT_TTL_S
        async with self.client().pipeline(transaction=True) as pipe:
            pipe.zrem(self._key("whep", address), f"{room} {pending}")
            pipe.zadd(self._key("whep", address), {f"{room} {session}": expires_at})
            pipe.expire(self._key("whep", address), ttl)
            pipe.set(self._key("owner", session), f"{address} {room}", ex=ttl)
            await pipe.execute()

    async def drop(self, address, room, member, pool="whep"):
        await self.client().zrem(self._key(pool, address), f"{room} {member}")

    async def release(self, session):
        owner = await self.client().getdel(self._key("owner", session))
        if not owner:
            return False
        address, room = owner.split(" ", 1)
        await self.drop(address, room, session)
        return True

    async def held(self, address, now):
        members = await self.client().zrangebyscore(self._key("whep", address), now, "+inf")
        return [tuple(m.split(" ", 1)) for m in members]

    def reset(self):
        import redis

        with redis.Redis.from_url(self.url, socket_timeout=2, socket_connect_timeout=2) as client:
            for key in client.scan_iter(self.prefix + "*"):
                client.delete(key)


_backend = {"it": None, "key": None}
_backend_lock = threading.Lock()


def backend():
    key = (settings.EMBEDDED, settings.REDIS_URL)
    with _backend_lock:
        if _backend["key"] != key:
            _backend["it"] = MemoryBackend() if settings.EMBEDDED else RedisBackend(
                settings.REDIS_URL, f"{settings.CHANNEL_LAYER_PREFIX}:limits:")
            _backend["key"] = key
        return _backend["it"]


# --- what the views call ---------------------------------------------------------------------------

async def _guarded(what, coro, default=None):
    """While Redis is unreachable nobody is limited (the failure is logged): refusing every viewer
    would do the attacker's work."""
    from redis.exceptions import RedisError

    try:
        return await coro
    except (RedisError, OSError, asyncio.TimeoutError) as exc:
        logger.warning("client limits unavailable (%s): %r; not limiting", what, exc)
        return default


async def take_request(address):
    """One request's worth of this client's budget; a Refusal when it has none left."""
    per_s = settings.SIGNALLING_PER_MINUTE / 60.0
    wait = await _guarded("rate", backend().take(address, settings.SIGNALLING_BURST, per_s, time.time()), 0.0)
    if wait > 0:
        return Refusal("too many requests from this address; slow down", max(1, math.ceil(wait)))
    return None


class Seat:
    """A WHEP session slot held for one client while the engine answers its offer."""

    def __init__(self, address, room, pending):
        self.address, self.room, self.pending = address, room, pending

    async def confirm(self, session):
        await _guarded("confirm", backend().confirm(self.address, self.room, self.pending, session,
                                                    time.time() + settings.WHEP_SESSION_COUNT_TTL_S))

    async def give_back(self):
        await _guarded("give back", backend().drop(self.address, self.room, self.pending))


async def hold_seat(address, room, still_there):
    """Hold one of the client's WHEP seats in `room`, or return a Refusal.

    At its limit, the client's counted sessions are checked with `still_there(room, session)` (an engine
    lookup) and those the engine no longer has are released before it is refused."""
    for attempt in (1, 2):
        now = time.time()
        pending = "pending-" + uuid.uuid4().hex
        full = await _guarded("seats", backend().reserve(address, room, pending, settings.WHEP_SESSIONS_PER_CLIENT_ROOM,
                                                         settings.WHEP_SESSIONS_PER_CLIENT, now + PENDING_TTL_S, now), "")
        if not full:
            return Seat(address, room, pending)
        if attempt == 1 and await _guarded("seats", _forget_ended(address, now, still_there), False):
            continue
        limit = (settings.WHEP_SESSIONS_PER_CLIENT_ROOM if full == "room" else settings.WHEP_SESSIONS_PER_CLIENT)
        where = "in this room" if full == "room" else "in all"
        return Refusal(f"this address already holds {limit} playback sessions {where} (the limit); "
                       "end one (DELETE its session URL) or try again later", 10)


async def _forget_ended(address, now, still_there):
    held = [(room, session) for room, session in await backend().held(address, now)
            if not session.startswith("pending-")]
    alive = await asyncio.gather(*(still_there(room, session) for room, session in held))
    gone = [session for (room, session), ok in zip(held, alive) if not ok]
    for session in gone:
        await backend().release(session)
    return bool(gone)


async def release(session):
    """The session ended (DELETE): it no longer counts against its client."""
    return await _guarded("release", backend().release(session), False)


def reset():
    """Forget every count and bucket (tests)."""
    backend().reset()
