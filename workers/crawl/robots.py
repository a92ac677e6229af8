"""robots.txt per origin, fetched once by whichever worker needs it first and shared in Redis.

Workers run as many processes on many machines; a verdict kept in one process
alone would mean one robots.txt fetch per process. RFC 9309 rules: a 2xx body
is parsed (its first 500 KiB), a missing file allows everything, and a failing
server disallows everything for a while, which for one page means "not now".
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import redis
from protego import Protego

from workers.urls import DEFAULT_PORTS, PageURL
from workers.keys import Keys

# RFC 9309 2.5: crawlers must parse at least 500 KiB; beyond that is ignored.
ROBOTS_MAX_BYTES = 500 * 1024
# An unreachable or failing robots.txt forbids everything, but only until the
# site has had a chance to recover (ROBOTS_ERROR_TTL, default below).
ROBOTS_ERROR_TTL = 300
_PARSED_CACHE_SIZE = 256
_FETCH_LOCKS = 64

_ALLOW_ALL = "allow"
_UNREACHABLE = "unreachable"

RobotsFetcher = Callable[[PageURL], tuple[int | None, bytes]]


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


@dataclass(frozen=True)
class KnownVerdict:
    """A verdict from the robots.txt this process read last, good while the Redis entry `key`
    still holds the fetch made at `fetched_at`: the caller checks that in its next step."""

    verdict: RobotsVerdict
    key: str
    fetched_at: str


class RobotsCache:
    """robots.txt per origin, fetched by whichever worker needs it first and shared in Redis.

    Parses are kept per process, each with the `fetched_at` of the Redis entry it was read
    from: the entry says which fetch is current, so a refetch by any worker retires the old
    parse here too. Build one per process; `fetch_robots` is passed per call because it
    carries the crawl's network policy.
    """

    def __init__(self, client: redis.Redis, namespace: str, user_agent: str, ttl: int = 3600,
                 error_ttl: int = ROBOTS_ERROR_TTL):
        self.redis = client
        self.keys = Keys(namespace)
        self.token = product_token(user_agent)
        self.ttl, self.error_ttl = ttl, error_ttl
        self._parsed: OrderedDict[str, tuple[str, Protego | str]] = OrderedDict()  # key -> (fetched_at, rules)
        self._lock = threading.Lock()  # the threads of a threads-pool worker share the parses
        # One thread per process fetches an origin's robots.txt while its others wait for the
        # result; a fixed set of locks, chosen by origin, so the set never grows.
        self._fetching = [threading.Lock() for _ in range(_FETCH_LOCKS)]

    def verdict(self, url: str, fetch_robots: RobotsFetcher) -> RobotsVerdict:
        """Whether `url` may be fetched now, and the crawl delay asked of this agent."""
        site = origin(url)
        key = self.keys.robots(site)
        rules = self._rules(site, key, fetch_robots)
        if rules == _UNREACHABLE:
            return RobotsVerdict(False, unreachable_for=max(1.0, self.redis.pttl(key) / 1000))
        return self._verdict(url, rules)

    def known(self, url: str) -> KnownVerdict | None:
        """The verdict of the robots.txt this process read last for `url`'s origin, without asking
        Redis; None if it has read none, or one that was unreachable."""
        key = self.keys.robots(origin(url))
        with self._lock:
            fetched_at, rules = self._parsed.get(key, (None, _UNREACHABLE))
        if rules == _UNREACHABLE:
            return None
        return KnownVerdict(self._verdict(url, rules), key, fetched_at)

    def _verdict(self, url: str, rules: Protego | str) -> RobotsVerdict:
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

    def _rules(self, site: str, key: str, fetch_robots: RobotsFetcher) -> Protego | str:
        entry = self.redis.hgetall(key)
        if not entry:
            with self._fetching[hash(site) % _FETCH_LOCKS]:
                entry = self.redis.hgetall(key) or self._fetch(site, key, fetch_robots)
        entry = {_text(k): _text(v) for k, v in entry.items()}
        fetched_at = entry["fetched_at"]
        with self._lock:
            if (cached := self._parsed.get(key)) is not None and cached[0] == fetched_at:
                self._parsed.move_to_end(key)
                return cached[1]
        rules = self._parse(int(entry["status"]) if entry["status"] else None, entry["body"])
        with self._lock:
            self._parsed[key] = (fetched_at, rules)
            self._parsed.move_to_end(key)
            while len(self._parsed) > _PARSED_CACHE_SIZE:
                self._parsed.popitem(last=False)
        return rules

    def _fetch(self, site: str, key: str, fetch_robots: RobotsFetcher) -> dict[str, str]:
        status, body = fetch_robots(PageURL.of(f"{site}/robots.txt"))
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
