"""robots.txt and per-host limits, on a real Redis shared the way separate workers share it."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field

import pytest
import redis

from workers.crawl.errors import RetryableFetchError
from workers.crawl.host_limits import HostLimiter
from workers.crawl.polite import DEFAULT_HOST_BACKOFF, Disallowed, PoliteFetcher
from workers.crawl.profile import adhoc_profile
from workers.crawl.robots import ROBOTS_ERROR_TTL, RobotsCache, origin
from tests.helpers import offline_fetcher
from workers.urls import PageURL

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

    def __call__(self, robots: PageURL) -> tuple[int | None, bytes]:
        self.calls.append(robots.url)
        return self.answers[min(len(self.calls), len(self.answers)) - 1]


class BoundRobots:
    """A RobotsCache with one fetcher, as a worker process uses it for one crawl."""

    def __init__(self, client, namespace: str, fetch, agent: str, ttl: int = 3600):
        self.cache, self.fetch = RobotsCache(client, namespace, agent, ttl), fetch

    def allowed(self, url: str) -> bool:
        return self.cache.verdict(url, self.fetch).allowed

    def crawl_delay(self, url: str) -> float | None:
        return self.cache.verdict(url, self.fetch).crawl_delay

    def verdict(self, url: str) -> tuple[bool, float | None]:
        verdict = self.cache.verdict(url, self.fetch)
        return verdict.allowed, verdict.crawl_delay


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
    ours = BoundRobots(redis_client, namespace, fetch, AGENT)
    assert ours.allowed("https://a.test/reports/1")
    assert not ours.allowed("https://a.test/private/x")
    assert fetch.calls == ["https://a.test/robots.txt"]
    # Another agent reading the same cached file falls under '*'.
    theirs = BoundRobots(redis_client, namespace, fetch, "otherbot/2.0")
    assert not theirs.allowed("https://a.test/reports/1")
    assert len(fetch.calls) == 1


def test_crawl_delay(redis_client, namespace):
    fetch = FakeRobots([(200, ROBOTS)])
    assert BoundRobots(redis_client, namespace, fetch, AGENT).crawl_delay("https://a.test/") == 2.5
    rate = FakeRobots([(200, b"User-agent: *\nRequest-rate: 1/10\n")])
    assert BoundRobots(redis_client, namespace, rate, AGENT).crawl_delay("https://b.test/") == 10.0
    none = FakeRobots([(200, b"User-agent: *\nDisallow: /x\n")])
    assert BoundRobots(redis_client, namespace, none, AGENT).crawl_delay("https://c.test/") is None


def test_missing_robots_allows_everything(redis_client, namespace):
    cache = BoundRobots(redis_client, namespace, FakeRobots([(404, b"<h1>Not found</h1>")]), AGENT)
    assert cache.allowed("https://a.test/private/x")
    assert cache.crawl_delay("https://a.test/") is None
    assert redis_client.ttl(f"ri:{namespace}robots:https://a.test:443") > ROBOTS_ERROR_TTL


@pytest.mark.parametrize("status", [500, 503, 429, None])
def test_failing_robots_disallows_for_a_short_while(redis_client, namespace, status):
    cache = BoundRobots(redis_client, namespace, FakeRobots([(status, b"")]), AGENT, ttl=3600)
    assert not cache.allowed("https://a.test/reports/1")
    assert 0 < redis_client.ttl(f"ri:{namespace}robots:https://a.test:443") <= ROBOTS_ERROR_TTL


def test_cache_is_shared_and_per_origin(redis_client, namespace):
    fetch = FakeRobots([(200, ROBOTS)])
    worker_a = BoundRobots(redis_client, namespace, fetch, AGENT)
    worker_b = BoundRobots(redis_client, namespace, fetch, AGENT)
    for _ in range(3):
        assert worker_a.allowed("https://a.test/x")
        assert worker_b.allowed("https://A.test:443/y")
    assert fetch.calls == ["https://a.test/robots.txt"]
    worker_a.allowed("http://a.test/x")
    worker_a.allowed("https://a.test:8443/x")
    assert fetch.calls[1:] == ["http://a.test/robots.txt", "https://a.test:8443/robots.txt"]


def test_expired_entry_is_fetched_again(redis_client, namespace):
    fetch = FakeRobots([(200, b"User-agent: *\nDisallow: /\n"), (200, b"User-agent: *\nAllow: /\n")])
    cache = BoundRobots(redis_client, namespace, fetch, AGENT, ttl=1)
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


def turn(limiter: HostLimiter, host: str = "a.test", interval: float = 0.1, limit: int = 1000,
         member: str | None = None, lease: float = 120.0):
    return limiter.take_turn(host, member or uuid.uuid4().hex, interval=interval, limit=limit, lease=lease)


def test_reservations_are_spaced_across_workers(redis_client, separate_client, namespace):
    interval, per_worker = 0.1, 10
    slots: list[tuple[float, float, float]] = []  # (called, returned, wait)
    lock = threading.Lock()

    def work(client: redis.Redis) -> None:
        limiter = HostLimiter(client, namespace, max_inline_wait=60)
        for _ in range(per_worker):
            called = time.time()
            wait = turn(limiter, interval=interval).wait
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
    limiter = HostLimiter(redis_client, namespace, max_inline_wait=60)
    assert turn(limiter).wait == 0
    before = time.time()
    limiter.back_off("a.test", 2.0)
    limiter.back_off("a.test", 0.5)  # a shorter backoff must not shorten the first
    wait = turn(limiter).wait
    after = time.time()
    assert 2.0 - (after - before) <= wait <= 2.0
    # The slot after the backoff is one interval later still.
    following = turn(limiter).wait
    assert wait + 0.1 - (time.time() - before) <= following <= wait + 0.1
    # Other hosts are not affected.
    assert turn(limiter, "b.test").wait == 0


def test_a_retry_after_years_ahead_holds_the_host_back_only_up_to_the_cap(redis_client, namespace):
    """A Retry-After date in 2038 once pushed every page of its host 4,408 days out."""
    limiter = HostLimiter(redis_client, namespace, max_inline_wait=60, max_backoff=30)
    before = time.time()
    limiter.back_off("a.test", 4408 * 86400.0)
    assert turn(limiter).wait <= 30
    assert 0 < redis_client.pttl(f"ri:{namespace}host:a.test:rate") <= 31_000 + 1000
    assert limiter.asked_until("a.test") >= before + 4408 * 86400.0  # what the host asked for, recorded


def test_idle_hosts_vanish(redis_client, namespace):
    limiter = HostLimiter(redis_client, namespace, max_inline_wait=60)
    granted = turn(limiter, interval=0.05, limit=1, lease=0.5)
    assert granted.token is not None
    assert 0 < redis_client.pttl(f"ri:{namespace}host:a.test:rate") <= 1050 + 50
    assert 0 < redis_client.pttl(f"ri:{namespace}host:a.test:leases") <= 1500


def test_concurrency_cap(redis_client, separate_client, namespace):
    worker_a = HostLimiter(redis_client, namespace, max_inline_wait=60)
    worker_b = HostLimiter(separate_client, namespace, max_inline_wait=60)
    first = turn(worker_a, interval=0, limit=2).token
    second = turn(worker_b, interval=0, limit=2).token
    assert first and second and first != second
    assert turn(worker_a, interval=0, limit=2).busy
    assert turn(worker_a, "b.test", interval=0, limit=2).granted  # per host
    worker_b.release("a.test", second)
    third = turn(worker_a, interval=0, limit=2).token
    assert third is not None
    assert not turn(worker_b, interval=0, limit=2).granted


def test_expired_lease_is_reclaimed(redis_client, namespace):
    limiter = HostLimiter(redis_client, namespace, max_inline_wait=60)
    # A worker that died holding its lease: never released.
    assert turn(limiter, interval=0, limit=1, lease=0.3).granted
    assert not turn(limiter, interval=0, limit=1, lease=0.3).granted
    turns: list = []
    await_condition(lambda: turns.append(turn(limiter, interval=0, limit=1)) or turns[-1].granted, timeout=3)


def test_a_deferred_request_keeps_its_place_and_takes_no_second_slot(redis_client, namespace):
    """Defect 1: a request told to come back later used to take a slot it never used, and a new
    one each time it came back, pushing its host further out until nothing was fetched."""
    limiter = HostLimiter(redis_client, namespace, max_inline_wait=0.5)
    first = turn(limiter, interval=10, member="a")
    assert first.granted and first.wait == 0
    second = turn(limiter, interval=10, member="b")
    assert not second.granted and not second.busy and 9 < second.wait <= 10  # come back at the slot
    for _ in range(5):  # asking again and again: the same slot, never a later one
        again = turn(limiter, interval=10, member="b")
        assert not again.granted and again.wait <= second.wait
    third = turn(limiter, interval=10, member="c")
    assert 19 < third.wait <= 20  # behind b, one interval on: b's place was kept, not doubled
    rate = redis_client.hgetall(f"ri:{namespace}host:a.test:rate")
    line = redis_client.zrange(f"ri:{namespace}host:a.test:line", 0, -1)
    assert line == ["b", "c"]
    # Exactly three slots were handed out for three requests.
    assert int(rate["next"]) - int(redis_client.zscore(f"ri:{namespace}host:a.test:line", "c")) == 10_000_000


def test_a_busy_host_keeps_the_line_in_order(redis_client, namespace):
    limiter = HostLimiter(redis_client, namespace, max_inline_wait=5)
    holder = turn(limiter, interval=0.01, limit=1, member="first")
    waiting = [turn(limiter, interval=0.01, limit=1, member=m) for m in ("x", "y")]
    assert holder.granted and all(t.busy for t in waiting)
    limiter.release("a.test", holder.token)
    # The line goes in the order it was given its slots, whoever asks first.
    assert turn(limiter, interval=0.01, limit=1, member="x").granted
    assert redis_client.zrange(f"ri:{namespace}host:a.test:line", 0, -1) == ["y"]


def test_back_off_moves_the_waiting_line_behind_it_in_order(redis_client, namespace):
    limiter = HostLimiter(redis_client, namespace, max_inline_wait=0)
    for member in ("a", "b", "c"):
        turn(limiter, interval=1, member=member)  # a goes now; b and c are told to come back
    limiter.back_off("a.test", 30)
    b, c = (turn(limiter, interval=1, member=m) for m in ("b", "c"))
    # Nobody fires during the backoff, and the spacing survives it.
    assert 29 < b.wait <= 30 and 0.99 < c.wait - b.wait < 1.01
    assert 0.99 < turn(limiter, interval=1, member="d").wait - c.wait < 1.01  # newcomers queue behind


def test_verdict_is_allowed_and_delay_from_one_fetch(redis_client):
    calls = []

    def fetch(url):
        calls.append(url)
        return 200, b"User-agent: *\nDisallow: /private/\nCrawl-delay: 3\n"

    cache = BoundRobots(redis_client, "verdict-", fetch, "report-ingest/0.1")
    assert cache.verdict("https://v.test/report.html") == (True, 3.0)
    assert cache.verdict("https://v.test/private/x.html") == (False, 3.0)
    assert len(calls) == 1


@pytest.mark.parametrize(("retry_after", "backoff"), [(None, DEFAULT_HOST_BACKOFF), (1.0, 1.0)])
def test_a_503_backs_its_host_off_for_retry_after_or_the_default(settings, redis_client, monkeypatch,
                                                                retry_after, backoff):
    fetcher = PoliteFetcher(settings, redis_client, session=lambda: None)
    monkeypatch.setattr(fetcher, "_fetch_robots", lambda *args, **kwargs: (404, b""))  # no robots.txt

    def busy(*args, **kwargs):
        raise RetryableFetchError("http_503", "busy", status=503, retry_after=retry_after)

    monkeypatch.setattr(fetcher, "_fetch", busy)
    host = f"127.0.0.{uuid.uuid4().int % 200 + 2}:8080"
    with pytest.raises(RetryableFetchError):
        fetcher.fetch(adhoc_profile(settings, ["127.0.0.0/8"]), PageURL.of(f"http://{host}/page"))
    wait = turn(fetcher.limiter, host).wait
    assert backoff - 1.0 < wait <= backoff


def test_a_robots_txt_another_worker_fetched_again_is_obeyed_at_the_next_request(settings, redis_client,
                                                                               monkeypatch):
    """A process checks its last robots.txt verdict against Redis in the step that takes the turn."""
    fetcher, robots_fetched = offline_fetcher(settings, redis_client, monkeypatch, b"User-agent: *\nAllow: /\n")
    profile = adhoc_profile(settings, ["127.0.0.0/8"])
    base = f"http://127.0.0.{uuid.uuid4().int % 200 + 2}:8080"
    fetcher.fetch(profile, PageURL.of(f"{base}/reports/1"))
    fetcher.fetch(profile, PageURL.of(f"{base}/reports/2"))
    # Another worker found the entry expired and fetched the file again: it now forbids everyone.
    redis_client.hset(fetcher.robots.keys.robots(origin(base)),
                      mapping={"status": "200", "body": "User-agent: *\nDisallow: /\n", "fetched_at": repr(time.time())})
    with pytest.raises(Disallowed):
        fetcher.fetch(profile, PageURL.of(f"{base}/reports/3"))
    assert robots_fetched == [f"{base}/robots.txt"]  # the new file was read from Redis, not fetched
    assert redis_client.zcard(fetcher.limiter.keys.host(base.removeprefix("http://"), "leases")) == 0
