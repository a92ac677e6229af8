"""Per-host request spacing and concurrency, shared by every worker through Redis.

A limit kept in one process's memory would be multiplied by the number of
processes, so request slots and concurrency leases per host are handed out by
Lua scripts that read Redis's own clock, the one clock every worker agrees on.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import redis

from workers.keys import Keys
from workers.settings import get_settings

# Times are integer microseconds of Redis TIME, written with %.0f: Lua's
# default number formatting keeps 14 digits and would round them.
_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local function fmt(x) return string.format('%.0f', x) end
local function keep(key, until_) redis.call('PEXPIRE', key, math.ceil((until_ - now) / 1000) + 1000) end
"""

# One request's turn at a host, in one step so no slot is ever taken and left unused.
# KEYS: rate hash {next, backoff}; leases zset token -> expiry; line zset member -> slot;
# optionally the host's robots.txt entry. ARGV: interval, limit, lease, token, member,
# max inline wait, stale (µs except limit); with the robots.txt entry, the fetched_at
# the caller's verdict rests on. A request whose verdict rests on a robots.txt no longer
# current takes nothing (-2). It finds its slot in the line if it was given one before,
# else takes the next free one. It goes (1) when the slot is near and a lease is free;
# otherwise it keeps the slot in the line and comes back: (0) at the slot, or (-1) soon,
# when every lease is taken. Returns {status, wait}.
_TAKE_TURN = _NOW + """
if KEYS[4] and redis.call('HGET', KEYS[4], 'fetched_at') ~= ARGV[8] then return {-2, '0'} end
local interval, limit, lease = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local max_inline, stale = tonumber(ARGV[6]), tonumber(ARGV[7])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', fmt(now))
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', fmt(now - stale))
local slot = redis.call('ZSCORE', KEYS[3], ARGV[5])
local in_line = slot
if slot then
  slot = tonumber(slot)
else
  local rate = redis.call('HMGET', KEYS[1], 'next', 'backoff')
  local stored, backoff = tonumber(rate[1] or '0'), tonumber(rate[2] or '0')
  slot = math.max(stored, now, backoff)
  redis.call('HSET', KEYS[1], 'next', fmt(slot + interval))
  keep(KEYS[1], math.max(slot + interval, backoff))
end
local wait = math.max(slot - now, 0)
local status = 1
if wait > max_inline then
  status = 0
elseif redis.call('ZCARD', KEYS[2]) >= limit then
  status = -1
end
-- The line's expiry follows its latest slot, so only adding to it can move the expiry.
if status == 1 then
  if in_line then redis.call('ZREM', KEYS[3], ARGV[5]) end
  redis.call('ZADD', KEYS[2], fmt(now + lease), ARGV[4])
  local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
  keep(KEYS[2], tonumber(last[2]))
else
  redis.call('ZADD', KEYS[3], fmt(slot), ARGV[5])
  local latest = redis.call('ZRANGE', KEYS[3], -1, -1, 'WITHSCORES')
  keep(KEYS[3], tonumber(latest[2]) + stale)
end
return {status, fmt(wait)}
"""

# KEYS: rate hash, line zset; ARGV: backoff asked for, longest backoff (µs). Moves the backoff
# later, never past the longest from now (a Retry-After date in 2038 would stall the host for
# good), records when the host asked to be left alone until (`asked`), and moves the waiting
# line behind the backoff, spacing and order kept, so the requests that were waiting do not
# all fire at once when it ends.
_BACK_OFF = _NOW + """
local asked = now + tonumber(ARGV[1])
local backoff = math.max(tonumber(redis.call('HGET', KEYS[1], 'backoff') or '0'), asked)
backoff = math.min(backoff, now + tonumber(ARGV[2]))
redis.call('HSET', KEYS[1], 'backoff', fmt(backoff), 'asked', fmt(asked))
local stored = tonumber(redis.call('HGET', KEYS[1], 'next') or '0')
local line = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
local earliest = math.max(stored, now)
if line[2] then earliest = math.min(earliest, math.max(tonumber(line[2]), now)) end
local shift = backoff - earliest
if shift > 0 then
  for i = 1, #line, 2 do
    redis.call('ZADD', KEYS[2], fmt(math.max(tonumber(line[i + 1]), now) + shift), line[i])
  end
  stored = math.max(stored, now) + shift
  redis.call('HSET', KEYS[1], 'next', fmt(stored))
end
keep(KEYS[1], math.max(backoff, stored))
return 1
"""


def _micros(seconds: float) -> int:
    return max(0, round(seconds * 1_000_000))


@dataclass(frozen=True)
class Turn:
    """A request's turn at a host: go after `wait` seconds holding `token`, or come back."""

    token: str | None  # a concurrency lease, to release when the request is done
    wait: float  # seconds until this request's slot
    busy: bool = False  # every lease is taken: come back soon, the slot is kept
    stale: bool = False  # the robots.txt verdict it was asked with is out of date: nothing taken

    @property
    def granted(self) -> bool:
        return self.token is not None


class HostLimiter:
    """Per-host request spacing and concurrency, shared by all workers through Redis.

    Each host has a "next free slot" spaced by the interval, a set of leases that
    caps requests in flight, and a line: requests told to come back later keep the
    slot they were given, so they are neither overtaken nor pushed further out by
    the requests that come after them.
    """

    # A slot in the line whose request never came back is given up after this long.
    STALE_SLOT = 3600.0

    def __init__(self, client: redis.Redis, namespace: str, max_inline_wait: float,
                 max_backoff: float | None = None):
        self.redis = client
        self.keys = Keys(namespace)
        self.max_inline_wait = max_inline_wait
        self.max_backoff = get_settings().host_backoff_max if max_backoff is None else max_backoff
        self._take_turn = client.register_script(_TAKE_TURN)
        self._back_off = client.register_script(_BACK_OFF)

    def take_turn(self, host: str, member: str, *, interval: float, limit: int,
                  lease: float = 120.0, robots: tuple[str, str] | None = None) -> Turn:
        """The turn of request `member` (a stable name, e.g. the URL's hash) at `host`.

        A lease expires by itself after `lease` seconds, so a worker that dies
        mid-request frees its place. `robots`: (Redis key, fetched_at) of the robots.txt
        the request's verdict rests on; if another fetch of it is current, nothing is taken.
        """
        token = uuid.uuid4().hex
        keys = [self._key(host, "rate"), self._key(host, "leases"), self._key(host, "line")]
        args = [_micros(interval), limit, _micros(lease), token, member, _micros(self.max_inline_wait),
                _micros(self.STALE_SLOT)]
        if robots is not None:
            keys.append(robots[0])
            args.append(robots[1])
        status, wait = self._take_turn(keys=keys, args=args)
        seconds = int(wait) / 1_000_000
        status = int(status)
        return Turn(token if status == 1 else None, seconds, busy=status == -1, stale=status == -2)

    def back_off(self, host: str, seconds: float) -> None:
        """After a 429 or 503: no request to this host before now + seconds, or now + `max_backoff`
        if sooner (never shortens a backoff within that); what the host asked for is kept as `asked`."""
        self._back_off(keys=[self._key(host, "rate"), self._key(host, "line")],
                       args=[_micros(seconds), _micros(self.max_backoff)])

    def asked_until(self, host: str) -> float | None:
        """Until when (Unix time) the host last asked to be left alone, whatever the cap allowed."""
        asked = self.redis.hget(self._key(host, "rate"), "asked")
        return int(asked) / 1_000_000 if asked is not None else None

    def release(self, host: str, token: str) -> None:
        self.redis.zrem(self._key(host, "leases"), token)

    def _key(self, host: str, what: str) -> str:
        return self.keys.host(host, what)
