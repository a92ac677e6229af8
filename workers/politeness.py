"""Being a polite crawler across every worker: robots.txt and per-host limits in Redis.

Workers run as many processes on many machines; a limit kept in one process's
memory would be multiplied by their number. So robots.txt is fetched once per
origin and shared through Redis, and request slots and concurrency leases per
host are handed out by Lua scripts that read Redis's own clock, the one clock
every worker agrees on.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import redis
from protego import Protego

from workers.urls import DEFAULT_PORTS, normalize_url

# RFC 9309 2.5: crawlers must parse at least 500 KiB; beyond that is ignored.
ROBOTS_MAX_BYTES = 500 * 1024
# An unreachable or failing robots.txt forbids everything, but only until the
# site has had a chance to recover (ROBOTS_ERROR_TTL, default below).
ROBOTS_ERROR_TTL = 300
_PARSED_CACHE_SIZE = 256

_ALLOW_ALL = "allow"
_UNREACHABLE = "unreachable"

RobotsFetcher = Callable[[str], tuple[int | None, bytes]]


def origin(url: str) -> str:
    """scheme://host:port, the scope of one robots.txt."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if ":" in host:
        host = f"[{host}]"
    port = parts.port or DEFAULT_PORTS.get(scheme)
    return f"{scheme}://{host}:{port}"


def product_token(user_agent: str) -> str:
    """'report-ingest' from 'report-ingest/0.1 (+https://...)': what robots.txt groups name."""
    return user_agent.split()[0].split("/")[0] if user_agent.strip() else "*"


def _unreachable(status: int | None) -> bool:
    # 429 is formally a 4xx, but it means "too busy", not "no rules": treated as a server error.
    return status is None or status >= 500 or status == 429


def _text(value: str | bytes | None) -> str | None:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


@dataclass(frozen=True)
class RobotsVerdict:
    allowed: bool
    crawl_delay: float | None = None
    # Seconds until an unreachable robots.txt is asked again. RFC 9309 2.3.1.4 says
    # "disallow everything" meanwhile, which for one page means "not now", not "never".
    unreachable_for: float | None = None


class RobotsCache:
    """robots.txt per origin, fetched by whichever worker needs it first and shared in Redis.

    Parses are kept per process, keyed by (Redis key, fetched_at): the Redis entry
    says which fetch is current, so a refetch by any worker retires the old parse here
    too. Build one per process; `fetch_robots` is passed per call because it carries
    the crawl's network policy.
    """

    def __init__(self, client: redis.Redis, namespace: str, user_agent: str, ttl: int = 3600,
                 error_ttl: int = ROBOTS_ERROR_TTL):
        self.redis = client
        self.prefix = f"ri:{namespace}robots:"
        self.token = product_token(user_agent)
        self.ttl, self.error_ttl = ttl, error_ttl
        self._parsed: OrderedDict[tuple[str, str], Protego | str] = OrderedDict()

    def verdict(self, url: str, fetch_robots: RobotsFetcher) -> RobotsVerdict:
        """Whether `url` may be fetched now, and the crawl delay asked of this agent."""
        key = self.prefix + origin(url)
        rules = self._rules(key, fetch_robots)
        if rules == _UNREACHABLE:
            return RobotsVerdict(False, unreachable_for=max(1.0, self.redis.pttl(key) / 1000))
        if rules == _ALLOW_ALL:
            return RobotsVerdict(True)
        return RobotsVerdict(rules.can_fetch(url, self.token), self._crawl_delay(rules))

    def _crawl_delay(self, rules: Protego) -> float | None:
        delay = rules.crawl_delay(self.token)
        rate = rules.request_rate(self.token)
        # Request-rate (n requests per m seconds) is the same wish in other words.
        from_rate = rate.seconds / rate.requests if rate and rate.requests else None
        candidates = [float(d) for d in (delay, from_rate) if d is not None]
        return max(candidates) if candidates else None

    def _rules(self, key: str, fetch_robots: RobotsFetcher) -> Protego | str:
        entry = self.redis.hgetall(key)
        if not entry:
            entry = self._fetch(key, fetch_robots)
        entry = {_text(k): _text(v) for k, v in entry.items()}
        cache_key = (key, entry["fetched_at"])
        if (rules := self._parsed.get(cache_key)) is None:
            rules = self._parse(int(entry["status"]) if entry["status"] else None, entry["body"])
            self._parsed[cache_key] = rules
            while len(self._parsed) > _PARSED_CACHE_SIZE:
                self._parsed.popitem(last=False)
        else:
            self._parsed.move_to_end(cache_key)
        return rules

    def _fetch(self, key: str, fetch_robots: RobotsFetcher) -> dict[str, str]:
        site = key.removeprefix(self.prefix)
        status, body = fetch_robots(normalize_url(f"{site}/robots.txt"))
        entry = {
            "status": "" if status is None else str(status),
            # RFC 9309 robots.txt is UTF-8; stored as text so any Redis client can read it back.
            "body": body[:ROBOTS_MAX_BYTES].decode("utf-8", "replace") if 200 <= (status or 0) < 300 else "",
            "fetched_at": repr(time.time()),
        }
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(key, mapping=entry)
        pipe.expire(key, min(self.ttl, self.error_ttl) if _unreachable(status) else self.ttl)
        pipe.execute()
        return entry

    @staticmethod
    def _parse(status: int | None, body: str) -> Protego | str:
        """RFC 9309 2.3.1: parse a 2xx body; a missing file allows all; a failing server forbids all."""
        if _unreachable(status):
            return _UNREACHABLE
        if 200 <= status < 300:
            return Protego.parse(body)
        # 4xx, and redirects the fetcher gave up on (RFC 9309 2.3.1.2), count as unavailable.
        return _ALLOW_ALL


# Times are integer microseconds of Redis TIME, written with %.0f: Lua's
# default number formatting keeps 14 digits and would round them.
_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local function fmt(x) return string.format('%.0f', x) end
local function keep(key, until_) redis.call('PEXPIRE', key, math.ceil((until_ - now) / 1000) + 1000) end
"""

# One request's turn at a host, in one step so no slot is ever taken and left unused.
# KEYS: rate hash {next, backoff}; leases zset token -> expiry; line zset member -> slot.
# ARGV: interval, limit, lease, token, member, max inline wait, stale (µs except limit).
# A request finds its slot in the line if it was given one before, else takes the
# next free one. It goes (1) when the slot is near and a lease is free; otherwise it
# keeps the slot in the line and comes back: (0) at the slot, or (-1) soon, when
# every lease is taken. Returns {status, wait}.
_TAKE_TURN = _NOW + """
local interval, limit, lease = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local max_inline, stale = tonumber(ARGV[6]), tonumber(ARGV[7])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', fmt(now))
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', fmt(now - stale))
local slot = redis.call('ZSCORE', KEYS[3], ARGV[5])
if slot then
  slot = tonumber(slot)
else
  local stored = tonumber(redis.call('HGET', KEYS[1], 'next') or '0')
  local backoff = tonumber(redis.call('HGET', KEYS[1], 'backoff') or '0')
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
if status == 1 then
  redis.call('ZREM', KEYS[3], ARGV[5])
  redis.call('ZADD', KEYS[2], fmt(now + lease), ARGV[4])
  local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
  keep(KEYS[2], tonumber(last[2]))
else
  redis.call('ZADD', KEYS[3], fmt(slot), ARGV[5])
end
local latest = redis.call('ZRANGE', KEYS[3], -1, -1, 'WITHSCORES')
if latest[2] then keep(KEYS[3], tonumber(latest[2]) + stale) end
return {status, fmt(wait)}
"""

# KEYS: rate hash, line zset; ARGV[1] backoff (µs). Only ever moves the backoff later,
# and moves the waiting line behind it, spacing and order kept, so the requests that
# were waiting do not all fire at once when it ends.
_BACK_OFF = _NOW + """
local backoff = math.max(tonumber(redis.call('HGET', KEYS[1], 'backoff') or '0'), now + tonumber(ARGV[1]))
redis.call('HSET', KEYS[1], 'backoff', fmt(backoff))
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

    def __init__(self, client: redis.Redis, namespace: str, max_inline_wait: float):
        self.redis = client
        self.prefix = f"ri:{namespace}host:"
        self.max_inline_wait = max_inline_wait
        self._take_turn = client.register_script(_TAKE_TURN)
        self._back_off = client.register_script(_BACK_OFF)

    def take_turn(self, host: str, member: str, *, interval: float, limit: int,
                  lease: float = 120.0) -> Turn:
        """The turn of request `member` (a stable name, e.g. the URL's hash) at `host`.

        A lease expires by itself after `lease` seconds, so a worker that dies
        mid-request frees its place.
        """
        token = uuid.uuid4().hex
        status, wait = self._take_turn(
            keys=[self._key(host, "rate"), self._key(host, "leases"), self._key(host, "line")],
            args=[_micros(interval), limit, _micros(lease), token, member, _micros(self.max_inline_wait),
                  _micros(self.STALE_SLOT)],
        )
        seconds = int(wait) / 1_000_000
        status = int(status)
        return Turn(token if status == 1 else None, seconds, busy=status == -1)

    def back_off(self, host: str, seconds: float) -> None:
        """After a 429 or 503: no request to this host before now + seconds (never shortens a backoff)."""
        self._back_off(keys=[self._key(host, "rate"), self._key(host, "line")], args=[_micros(seconds)])

    def release(self, host: str, token: str) -> None:
        self.redis.zrem(self._key(host, "leases"), token)

    def _key(self, host: str, what: str) -> str:
        return f"{self.prefix}{host.lower()}:{what}"
