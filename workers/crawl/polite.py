"""Fetching as a good guest: network policy, robots.txt, per-host rate and concurrency.

The limits hold across every worker process, because their state is in Redis
(workers/crawl/host_limits.py, workers/crawl/robots.py); Celery's per-worker `rate_limit`
would not.
One `PoliteFetcher` is built per process, as Scrapy builds its middleware once, and
shared by the process's threads: it keeps no state of its own but the robots parses
(locked) and takes this thread's Session per fetch.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from urllib.parse import urlsplit

import redis
import requests

from workers.clients import get_redis, per_process
from workers.crawl.http import Page, PdfLimits, PermanentFetchError, RetryableFetchError, fetch
from workers.crawl.netpolicy import get_http
from workers.crawl.robots import ROBOTS_MAX_BYTES, RobotsCache, RobotsVerdict, origin
from workers.crawl.host_limits import HostLimiter, Turn
from workers.crawl.profile import CrawlProfile
from workers.settings import Settings, get_settings
from workers.urls import PageURL

log = logging.getLogger(__name__)

# A 429/503 without Retry-After keeps the whole host quiet this long.
DEFAULT_HOST_BACKOFF = 30.0
# robots.txt fetches that end in these count as "no robots.txt" (RFC 9309 2.3.1.2-3):
# a redirect chain the fetcher gave up on, or a file we may not follow to.
_ROBOTS_UNAVAILABLE = frozenset({"too_many_redirects", "redirect_loop", "bad_redirect", "unsupported_scheme",
                                 "private_address", "link_local_address", "metadata_address",
                                 "host_not_allowed"})


class Deferred(Exception):
    """Not now: the host is busy, backing off, or its robots.txt is unreachable.

    `reason` is a short code ("host_busy", "host_slot", "robots_unreachable");
    try again in `seconds`.
    """

    def __init__(self, seconds: float, reason: str, detail: str):
        super().__init__(seconds, reason, detail)
        self.seconds, self.reason, self.detail = seconds, reason, detail

    def __str__(self) -> str:
        return self.detail


class Disallowed(Exception):
    """robots.txt forbids this URL to our user agent."""


class PoliteFetcher:
    """Network policy, robots.txt and host limits around every fetch."""

    def __init__(self, settings: Settings, client: redis.Redis, session: Callable[[], requests.Session]):
        self.settings = settings
        self.session = session
        self.robots = RobotsCache(client, settings.index_prefix, settings.user_agent, settings.robots_ttl,
                                  settings.robots_error_ttl)
        self.limiter = HostLimiter(client, settings.index_prefix, settings.host_max_inline_wait,
                                   settings.host_backoff_max)

    def _fetch(self, profile: CrawlProfile, page: PageURL, **kwargs) -> Page:
        s = self.settings
        kwargs.setdefault("max_bytes", s.max_page_bytes)
        return fetch(
            self.session(), page, connect_timeout=s.connect_timeout, read_timeout=s.read_timeout,
            max_redirects=s.max_redirects, policy=profile.policy, **kwargs,
        )

    def _fetch_robots(self, profile: CrawlProfile, robots: PageURL, extra: bool) -> tuple[int | None, bytes]:
        try:
            # A request to the host like any other: it takes a slot and a lease (many tasks meeting
            # a new host at once would otherwise all ask for its robots.txt together).
            with self._lease(profile, robots, 1 / profile.rate, extra=extra):
                # RFC 9309 2.5: the first 500 KiB are the rules; a longer file is cut, not refused.
                page = self._fetch(profile, robots, html_only=False, max_bytes=ROBOTS_MAX_BYTES,
                                   truncate=True)
        except PermanentFetchError as exc:
            return (404 if exc.reason in _ROBOTS_UNAVAILABLE else exc.status), b""
        except RetryableFetchError as exc:
            return exc.status, b""
        return page.status, page.body

    def fetch(self, profile: CrawlProfile, page: PageURL, *, html_only: bool = True,
              etag: str | None = None, last_modified: str | None = None, pdf: PdfLimits | None = None) -> Page:
        """Fetch `page` when robots.txt and the host's limits allow; raise Deferred or Disallowed if not.

        A redirect to another host takes a turn at that host too (its robots.txt,
        slot and lease); a redirect within the host takes another slot there.
        """
        profile.policy.check(page.url)  # before robots.txt, so a forbidden host is not even asked
        origin_host = urlsplit(page.url).netloc

        def hop(target: PageURL) -> AbstractContextManager[None]:
            return self._turn(profile, target, extra=urlsplit(target.url).netloc == origin_host)

        with self._turn(profile, page):
            return self._fetch(profile, page, html_only=html_only, etag=etag, last_modified=last_modified,
                               pdf=pdf, before_hop=hop)

    @contextmanager
    def _turn(self, profile: CrawlProfile, page: PageURL, *, extra: bool = False) -> Iterator[None]:
        """robots.txt's verdict, then the host's next slot and a lease, for one request to `page`.

        `extra`: a further request of one fetch already holding a lease on this host
        (a redirect within it), which takes a slot but is not refused for that lease.
        """
        with self._held(urlsplit(page.url).netloc, self._robots_and_turn(profile, page, extra)):
            yield

    def _robots_and_turn(self, profile: CrawlProfile, page: PageURL, extra: bool) -> Turn:
        """One round trip when this process has read the host's current robots.txt and it allows
        the URL: the turn is taken only if that robots.txt is still the current one. Otherwise
        robots.txt is read (or fetched) first."""
        url = page.url
        known = self.robots.known(url)
        if known is not None and known.verdict.allowed:
            turn = self._take(profile, page, self._interval(profile, known.verdict), extra=extra,
                              robots=(known.key, known.fetched_at))
            if not turn.stale:
                return turn
        verdict = self.robots.verdict(url, lambda robots: self._fetch_robots(profile, robots, extra))
        if verdict.unreachable_for is not None:
            raise Deferred(verdict.unreachable_for, "robots_unreachable",
                           f"{origin(url)}: robots.txt is unreachable; asking again in "
                           f"{verdict.unreachable_for:.0f}s")
        if not verdict.allowed:
            raise Disallowed(f"{url}: disallowed by robots.txt for {self.settings.user_agent}")
        return self._take(profile, page, self._interval(profile, verdict), extra=extra)

    @staticmethod
    def _interval(profile: CrawlProfile, verdict: RobotsVerdict) -> float:
        return max(1 / profile.rate, verdict.crawl_delay or 0.0)

    def _take(self, profile: CrawlProfile, page: PageURL, interval: float, *, extra: bool,
              robots: tuple[str, str] | None = None) -> Turn:
        """The host's next slot and a lease for one request to `page` (or a stale turn), or Deferred."""
        host = urlsplit(page.url).netloc
        limit = profile.concurrency + 1 if extra else profile.concurrency
        s = self.settings
        # The lease lasts as long as the request may: a PDF's hop is given PDF_READ_TIMEOUT more.
        lease = s.host_max_inline_wait + s.connect_timeout + s.read_timeout + s.pdf_read_timeout
        turn = self.limiter.take_turn(host, page.key, interval=interval, limit=limit, lease=lease, robots=robots)
        if turn.busy:
            pause = max(turn.wait, random.uniform(0.5, 1.5) * interval)
            raise Deferred(pause, "host_busy", f"{host}: {profile.concurrency} requests already in flight")
        if not turn.granted and not turn.stale:
            raise Deferred(turn.wait, "host_slot", f"{host}: this request's slot is in {turn.wait:.0f}s")
        return turn

    @contextmanager
    def _lease(self, profile: CrawlProfile, page: PageURL, interval: float, *, extra: bool) -> Iterator[None]:
        """The host's next slot and a lease for one request to `page`, or Deferred."""
        with self._held(urlsplit(page.url).netloc, self._take(profile, page, interval, extra=extra)):
            yield

    @contextmanager
    def _held(self, host: str, turn: Turn) -> Iterator[None]:
        """Wait for the turn's slot, make the request, give the lease back."""
        try:
            if turn.wait > 0:  # time.sleep(0) would still give the GIL away, and wait to get it back
                time.sleep(turn.wait)
            try:
                yield
            except RetryableFetchError as exc:
                # Only the host that answered 429/503 backs off, not the one that redirected to it.
                if exc.status in (429, 503) and not getattr(exc, "backed_off", False):
                    asked = exc.retry_after or DEFAULT_HOST_BACKOFF
                    if asked > self.settings.host_backoff_max:
                        log.warning("%s asked for a %.0fs back-off; its pages wait %.0fs (HOST_BACKOFF_MAX)",
                                    host, asked, self.settings.host_backoff_max)
                    self.limiter.back_off(host, asked)
                    exc.backed_off = True
                raise
        finally:
            self._release(host, turn.token)

    def _release(self, host: str, token: str) -> None:
        # Never let cleanup replace the way the fetch ended (a SystemExit on shutdown, say):
        # an unreleased lease expires by itself.
        try:
            self.limiter.release(host, token)
        except redis.RedisError as exc:
            log.warning("could not release the lease on %s (%s); it expires by itself", host, exc)


@per_process
def polite_fetcher() -> PoliteFetcher:
    return PoliteFetcher(get_settings(), get_redis(), get_http)


def polite_fetch(profile: CrawlProfile, page: PageURL, **kwargs) -> Page:
    """`PoliteFetcher.fetch` with this process's fetcher."""
    return polite_fetcher().fetch(profile, page, **kwargs)
