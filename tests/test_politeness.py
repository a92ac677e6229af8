"""robots.txt and per-host limits, on a real Redis shared the way separate workers share it."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field

import pytest
import redis

from workers.politeness import ROBOTS_ERROR_TTL, HostLimiter, RobotsCache

AGENT = "report-ingest/0.1 (+https://github.com/report-ingest/report-ingest)"
ROBOTS = b"""\
User-agent: report-ingest
Disallow: /private/
Crawl-delay: 2.5

User-agent: *
Disallow: /
"""


@dataclass
class FakeRobots:
    """Stands in for the real robots.txt fetch; answers in turn, the last one repeatedly."""

    answers: list[tuple[int | None, bytes]]
    calls: list[str] = field(default_factory=list)

    def __call__(self, url: str) -> tuple[int | None, bytes]:
        self.calls.append(url)
        return self.answers[min(len(self.calls), len(self.answers)) - 1]


@pytest.fixture
def namespace() -> str:
    return f"pol-{uuid.uuid4().hex[:8]}-"


def await_condition(check, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, "condition not reached in time"
        time.sleep(0.02)


def test_agent_group_wins_over_star(redis_client, namespace):
    fetch = FakeRobots([(200, ROBOTS)])
    ours = RobotsCache(redis_client, namespace, fetch, AGENT)
    assert ours.allowed("https://a.test/reports/1")
    assert not ours.allowed("https://a.test/private/x")
    assert fetch.calls == ["https://a.test/robots.txt"]
    # Another agent reading the same cached file falls under '*'.
    theirs = RobotsCache(redis_client, namespace, fetch, "otherbot/2.0")
    assert not theirs.allowed("https://a.test/reports/1")
    assert len(fetch.calls) == 1


def test_crawl_delay(redis_client, namespace):
    fetch = FakeRobots([(200, ROBOTS)])
    assert RobotsCache(redis_client, namespace, fetch, AGENT).crawl_delay("https://a.test/") == 2.5
    rate = FakeRobots([(200, b"User-agent: *\nRequest-rate: 1/10\n")])
    assert RobotsCache(redis_client, namespace, rate, AGENT).crawl_delay("https://b.test/") == 10.0
    none = FakeRobots([(200, b"User-agent: *\nDisallow: /x\n")])
    assert RobotsCache(redis_client, namespace, none, AGENT).crawl_delay("https://c.test/") is None


def test_missing_robots_allows_everything(redis_client, namespace):
    cache = RobotsCache(redis_client, namespace, FakeRobots([(404, b"<h1>Not found</h1>")]), AGENT)
    assert cache.allowed("https://a.test/private/x")
    assert cache.crawl_delay("https://a.test/") is None
    assert redis_client.ttl(f"ri:{namespace}robots:https://a.test:443") > ROBOTS_ERROR_TTL


@pytest.mark.parametrize("status", [500, 503, 429, None])
def test_failing_robots_disallows_for_a_short_while(redis_client, namespace, status):
    cache = RobotsCache(redis_client, namespace, FakeRobots([(status, b"")]), AGENT, ttl=3600)
    assert not cache.allowed("https://a.test/reports/1")
    assert 0 < redis_client.ttl(f"ri:{namespace}robots:https://a.test:443") <= ROBOTS_ERROR_TTL


def test_cache_is_shared_and_per_origin(redis_client, namespace):
    fetch = FakeRobots([(200, ROBOTS)])
    worker_a = RobotsCache(redis_client, namespace, fetch, AGENT)
    worker_b = RobotsCache(redis_client, namespace, fetch, AGENT)
    for _ in range(3):
        assert worker_a.allowed("https://a.test/x")
        assert worker_b.allowed("https://A.test:443/y")
    assert fetch.calls == ["https://a.test/robots.txt"]
    worker_a.allowed("http://a.test/x")
    worker_a.allowed("https://a.test:8443/x")
    assert fetch.calls[1:] == ["http://a.test/robots.txt", "https://a.test:8443/robots.txt"]


def test_expired_entry_is_fetched_again(redis_client, namespace):
    fetch = FakeRobots([(200, b"User-agent: *\nDisallow: /\n"), (200, b"User-agent: *\nAllow: /\n")])
    cache = RobotsCache(redis_client, namespace, fetch, AGENT, ttl=1)
    assert not cache.allowed("https://a.test/x")
    await_condition(lambda: not redis_client.exists(f"ri:{namespace}robots:https://a.test:443"))
    # The new file is used, not the parse kept in memory for the old one.
    assert cache.allowed("https://a.test/x")
    assert len(fetch.calls) == 2


@pytest.fixture
def separate_client(test_env):
    """A second connection, as another worker process would have."""
    client = redis.Redis.from_url(test_env["REDIS_URL"], decode_responses=True)
    yield client
    client.close()


def test_reservations_are_spaced_across_workers(redis_client, separate_client, namespace):
    interval, per_worker = 0.1, 10
    slots: list[tuple[float, float, float]] = []  # (called, returned, wait)
    lock = threading.Lock()

    def work(client: redis.Redis) -> None:
        limiter = HostLimiter(client, namespace)
        for _ in range(per_worker):
            called = time.time()
            wait = limiter.reserve("a.test", interval)
            returned = time.time()
            with lock:
                slots.append((called, returned, wait))

    threads = [threading.Thread(target=work, args=(c,)) for c in (redis_client, separate_client)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(slots) == 2 * per_worker
    assert min(wait for _, _, wait in slots) == 0  # a host nobody used yet: go now
    # Each slot was scheduled somewhere in [called + wait, returned + wait] on
    # this clock. Two slots closer than the interval would leave even the widest
    # reading of that window below it.
    ordered = sorted(slots, key=lambda s: (s[0] + s[1]) / 2 + s[2])
    for (called_a, _, wait_a), (_, returned_b, wait_b) in zip(ordered, ordered[1:]):
        assert (returned_b + wait_b) - (called_a + wait_a) >= interval - 1e-3


def test_back_off_pushes_the_next_slot(redis_client, namespace):
    limiter = HostLimiter(redis_client, namespace)
    assert limiter.reserve("a.test", 0.1) == 0
    before = time.time()
    limiter.back_off("a.test", 2.0)
    limiter.back_off("a.test", 0.5)  # a shorter backoff must not shorten the first
    wait = limiter.reserve("a.test", 0.1)
    after = time.time()
    assert 2.0 - (after - before) <= wait <= 2.0
    # The slot after the backoff is one interval later still.
    following = limiter.reserve("a.test", 0.1)
    assert wait + 0.1 - (time.time() - before) <= following <= wait + 0.1
    # Other hosts are not affected.
    assert limiter.reserve("b.test", 0.1) == 0


def test_idle_hosts_vanish(redis_client, namespace):
    limiter = HostLimiter(redis_client, namespace)
    limiter.reserve("a.test", 0.05)
    assert 0 < redis_client.pttl(f"ri:{namespace}host:a.test:rate") <= 1050 + 50
    token = limiter.acquire("a.test", 1, lease=0.5)
    assert token is not None
    assert 0 < redis_client.pttl(f"ri:{namespace}host:a.test:leases") <= 1500


def test_concurrency_cap(redis_client, separate_client, namespace):
    worker_a, worker_b = HostLimiter(redis_client, namespace), HostLimiter(separate_client, namespace)
    first = worker_a.acquire("a.test", limit=2)
    second = worker_b.acquire("a.test", limit=2)
    assert first and second and first != second
    assert worker_a.acquire("a.test", limit=2) is None
    assert worker_a.acquire("b.test", limit=2) is not None  # per host
    worker_b.release("a.test", second)
    third = worker_a.acquire("a.test", limit=2)
    assert third is not None
    assert worker_b.acquire("a.test", limit=2) is None


def test_expired_lease_is_reclaimed(redis_client, namespace):
    limiter = HostLimiter(redis_client, namespace)
    # A worker that died holding its lease: never released.
    assert limiter.acquire("a.test", limit=1, lease=0.3) is not None
    assert limiter.acquire("a.test", limit=1, lease=0.3) is None
    tokens: list[str | None] = []
    await_condition(lambda: tokens.append(limiter.acquire("a.test", limit=1)) or tokens[-1] is not None,
                    timeout=3)


def test_verdict_is_allowed_and_delay_from_one_fetch(redis_client):
    calls = []

    def fetch(url):
        calls.append(url)
        return 200, b"User-agent: *\nDisallow: /private/\nCrawl-delay: 3\n"

    cache = RobotsCache(redis_client, "verdict-", fetch, "report-ingest/0.1")
    assert cache.verdict("https://v.test/report.html") == (True, 3.0)
    assert cache.verdict("https://v.test/private/x.html") == (False, 3.0)
    assert len(calls) == 1
