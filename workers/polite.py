"""Fetching as a good guest: network policy, robots.txt, per-host rate and concurrency.

The limits hold across every worker process, because their state is in
Redis (workers/politeness.py); Celery's per-worker `rate_limit` would not.
"""

from __future__ import annotations

import random
import time
from urllib.parse import urlsplit

from workers.clients import get_http, get_redis
from workers.fetch import Page, PermanentFetchError, RetryableFetchError, fetch
from workers.politeness import HostLimiter, RobotsCache
from workers.profile import CrawlProfile
from workers.settings import Settings

# Waits longer than this give the worker slot back and come back later.
MAX_INLINE_WAIT = 30.0
# A 429/503 without Retry-After keeps the whole host quiet this long.
DEFAULT_HOST_BACKOFF = 30.0


class Deferred(Exception):
    """Not now: the host is busy or backing off; try again in `seconds`."""

    def __init__(self, seconds: float, why: str):
        super().__init__(why)
        self.seconds = seconds


class Disallowed(Exception):
    """robots.txt forbids this URL to our user agent."""


def _fetch(settings: Settings, profile: CrawlProfile, url: str, **kwargs) -> Page:
    return fetch(
        get_http(), url, connect_timeout=settings.connect_timeout, read_timeout=settings.read_timeout,
        max_bytes=settings.max_page_bytes, max_redirects=settings.max_redirects, policy=profile.policy,
        **kwargs,
    )


def robots(settings: Settings, profile: CrawlProfile) -> RobotsCache:
    def fetch_robots(robots_url: str) -> tuple[int | None, bytes]:
        try:
            page = _fetch(settings, profile, robots_url, html_only=False)
        except (PermanentFetchError, RetryableFetchError) as exc:
            return exc.status, b""
        return page.status, page.body

    return RobotsCache(get_redis(), settings.index_prefix, fetch_robots, settings.user_agent, settings.robots_ttl)


def polite_fetch(settings: Settings, profile: CrawlProfile, url: str, *, html_only: bool = True,
                 etag: str | None = None, last_modified: str | None = None) -> Page:
    profile.policy.check(url)  # before robots.txt, so a forbidden host is not even asked
    allowed, crawl_delay = robots(settings, profile).verdict(url)
    if not allowed:
        raise Disallowed(f"{url}: disallowed by robots.txt for {settings.user_agent}")
    host = urlsplit(url).netloc
    limiter = HostLimiter(get_redis(), settings.index_prefix)
    token = limiter.acquire(host, profile.concurrency)
    if token is None:
        pause = random.uniform(0.5, 1.5) * profile.concurrency / profile.rate
        raise Deferred(pause, f"{host}: {profile.concurrency} requests already in flight")
    try:
        interval = max(1 / profile.rate, crawl_delay or 0.0)
        wait = limiter.reserve(host, interval)
        if wait > MAX_INLINE_WAIT:
            raise Deferred(wait, f"{host}: next request slot in {wait:.0f}s")
        time.sleep(wait)
        try:
            return _fetch(settings, profile, url, html_only=html_only, etag=etag, last_modified=last_modified)
        except RetryableFetchError as exc:
            if exc.status in (429, 503):
                limiter.back_off(host, exc.retry_after or DEFAULT_HOST_BACKOFF)
            raise
    finally:
        limiter.release(host, token)
