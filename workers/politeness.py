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
from urllib.parse import urlsplit

import redis
from protego import Protego

from workers.urls import normalize_url

# RFC 9309 2.5: crawlers must parse at least 500 KiB; beyond that is ignored.
ROBOTS_MAX_BYTES = 500 * 1024
# An unreachable or failing robots.txt forbids everything, but only until the
# site has had a chance to recover.
ROBOTS_ERROR_TTL = 300
_PARSED_CACHE_SIZE = 256
_DEFAULT_PORTS = {"http": 80, "https": 443}

_ALLOW_ALL = "allow"
_DISALLOW_ALL = "disallow"


def origin(url: str) -> str:
    """scheme://host:port, the scope of one robots.txt."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if ":" in host:
        host = f"[{host}]"
    port = parts.port or _DEFAULT_PORTS.get(scheme)
    return f"{scheme}://{host}:{port}"


def product_token(user_agent: str) -> str:
    """'report-ingest' from 'report-ingest/0.1 (+https://...)': what robots.txt groups name."""
    return user_agent.split()[0].split("/")[0] if user_agent.strip() else "*"


def _unreachable(status: int | None) -> bool:
    # 429 is formally a 4xx, but it means "too busy", not "no rules": treated as a server error.
    return status is None or status >= 500 or status == 429


def _text(value: str | bytes | None) -> str | None:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


# Parsed robots.txt per process, keyed by (Redis key, fetched_at): the Redis entry says which
# fetch is current, so a refetch by any worker retires the old parse here too. Shared by all
# RobotsCache objects, which callers may create per request.
_PARSED: OrderedDict[tuple[str, str], Protego | str] = OrderedDict()


class RobotsCache:
    def __init__(
        self, client: redis.Redis, namespace: str,
        fetch_robots: Callable[[str], tuple[int | None, bytes]], user_agent: str, ttl: int = 3600,
    ):
        self.redis = client
        self.prefix = f"ri:{namespace}robots:"
        self.fetch_robots = fetch_robots
        self.token = product_token(user_agent)
        self.ttl = ttl

    def allowed(self, url: str) -> bool:
        return self._allowed(url, self._rules(url))

    def crawl_delay(self, url: str) -> float | None:
        """Seconds between requests that robots.txt asks of this agent, if any."""
        return self._crawl_delay(self._rules(url))

    def verdict(self, url: str) -> tuple[bool, float | None]:
        """(allowed, crawl delay) from one look-up: what a fetch needs to know."""
        rules = self._rules(url)
        return self._allowed(url, rules), self._crawl_delay(rules)

    def _allowed(self, url: str, rules: Protego | str) -> bool:
        if isinstance(rules, str):
            return rules == _ALLOW_ALL
        return rules.can_fetch(url, self.token)

    def _crawl_delay(self, rules: Protego | str) -> float | None:
        if isinstance(rules, str):
            return None
        delay = rules.crawl_delay(self.token)
        rate = rules.request_rate(self.token)
        # Request-rate (n requests per m seconds) is the same wish in other words.
        from_rate = rate.seconds / rate.requests if rate and rate.requests else None
        candidates = [float(d) for d in (delay, from_rate) if d is not None]
        return max(candidates) if candidates else None

    def _rules(self, url: str) -> Protego | str:
        site = origin(url)
        key = self.prefix + site
        entry = self.redis.hgetall(key)
        if not entry:
            entry = self._fetch(site, key)
        entry = {_text(k): _text(v) for k, v in entry.items()}
        cache_key = (key, entry["fetched_at"])
        if (rules := _PARSED.get(cache_key)) is None:
            rules = self._verdict(int(entry["status"]) if entry["status"] else None, entry["body"])
            _PARSED[cache_key] = rules
            while len(_PARSED) > _PARSED_CACHE_SIZE:
                _PARSED.popitem(last=False)
        else:
            _PARSED.move_to_end(cache_key)
        return rules

    def _fetch(self, site: str, key: str) -> dict[str, str]:
        status, body = self.fetch_robots(normalize_url(f"{site}/robots.txt"))
        entry = {
            "status": "" if status is None else str(status),
            # RFC 9309 robots.txt is UTF-8; stored as text so any Redis client can read it back.
            "body": body[:ROBOTS_MAX_BYTES].decode("utf-8", "replace") if 200 <= (status or 0) < 300 else "",
            "fetched_at": repr(time.time()),
        }
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(key, mapping=entry)
        pipe.expire(key, min(self.ttl, ROBOTS_ERROR_TTL) if _unreachable(status) else self.ttl)
        pipe.execute()
        return entry

    @staticmethod
    def _verdict(status: int | None, body: str) -> Protego | str:
        """RFC 9309 2.3.1: parse a 2xx body; a missing file allows all; a failing server forbids all."""
        if _unreachable(status):
            return _DISALLOW_ALL
        if 200 <= status < 300:
            return Protego.parse(body)
        # 4xx, and redirects the fetcher gave up on (RFC 9309 2.3.1.2), count as unavailable.
        return _ALLOW_ALL


# Times are integer microseconds of Redis TIME, written with %.0f: Lua's
# default number formatting keeps 14 digits and would round them.
_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
"""

# KEYS[1] host hash {next, backoff}; ARGV[1] min interval (µs). Returns the wait (µs).
_RESERVE = _NOW + """
local interval = tonumber(ARGV[1])
local stored = tonumber(redis.call('HGET', KEYS[1], 'next') or '0')
local backoff = tonumber(redis.call('HGET', KEYS[1], 'backoff') or '0')
local slot = math.max(stored, now, backoff)
local following = slot + interval
redis.call('HSET', KEYS[1], 'next', string.format('%.0f', following))
redis.call('PEXPIRE', KEYS[1], math.ceil((math.max(following, backoff) - now) / 1000) + 1000)
return slot - now
"""

# KEYS[1] host hash; ARGV[1] backoff (µs). Only ever moves the backoff later.
_BACK_OFF = _NOW + """
local backoff = tonumber(redis.call('HGET', KEYS[1], 'backoff') or '0')
local until_ = math.max(backoff, now + tonumber(ARGV[1]))
local stored = tonumber(redis.call('HGET', KEYS[1], 'next') or '0')
redis.call('HSET', KEYS[1], 'backoff', string.format('%.0f', until_))
redis.call('PEXPIRE', KEYS[1], math.ceil((math.max(until_, stored) - now) / 1000) + 1000)
return 1
"""

# KEYS[1] lease zset token -> expiry (µs); ARGV limit, lease (µs), token. 1 if granted.
_ACQUIRE = _NOW + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
local expiry = now + tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], string.format('%.0f', expiry), ARGV[3])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[1], math.ceil((tonumber(last[2]) - now) / 1000) + 1000)
return 1
"""


def _micros(seconds: float) -> int:
    return max(0, round(seconds * 1_000_000))


class HostLimiter:
    """Per-host request spacing and concurrency, shared by all workers through Redis."""

    def __init__(self, client: redis.Redis, namespace: str):
        self.redis = client
        self.prefix = f"ri:{namespace}host:"
        self._reserve = client.register_script(_RESERVE)
        self._back_off = client.register_script(_BACK_OFF)
        self._acquire = client.register_script(_ACQUIRE)

    def reserve(self, host: str, min_interval: float) -> float:
        """Take the host's next request slot; return the seconds to wait before sending (0 if none)."""
        waited = self._reserve(keys=[self._rate_key(host)], args=[_micros(min_interval)])
        return int(waited) / 1_000_000

    def back_off(self, host: str, seconds: float) -> None:
        """After a 429 or 503: no slot for this host before now + seconds (never shortens a backoff)."""
        self._back_off(keys=[self._rate_key(host)], args=[_micros(seconds)])

    def acquire(self, host: str, limit: int, lease: float = 120.0) -> str | None:
        """A lease token if fewer than `limit` requests to host are in flight, else None.

        A lease expires by itself after `lease` seconds, so a worker that dies
        mid-request frees its place.
        """
        token = uuid.uuid4().hex
        granted = self._acquire(keys=[self._lease_key(host)], args=[limit, _micros(lease), token])
        return token if granted else None

    def release(self, host: str, token: str) -> None:
        self.redis.zrem(self._lease_key(host), token)

    def _rate_key(self, host: str) -> str:
        return f"{self.prefix}{host.lower()}:rate"

    def _lease_key(self, host: str) -> str:
        return f"{self.prefix}{host.lower()}:leases"
