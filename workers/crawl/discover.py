"""Finding report URLs (sitemaps, indexes and gzip included; listing pages with pagination),
and crawling what a source's discovery found."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urljoin

from bs4 import BeautifulSoup

from workers.clients import get_redis
from workers.crawl.http import FetchError, Page
from workers.crawl.polite import Deferred, Disallowed, polite_fetch
from workers.crawl.profile import CrawlProfile, source_profile, sources
from workers.crawl.start import CrawlPlan, start_crawl
from workers.tracking.state import CrawlState
from workers.settings import Settings
from workers.crawl.sitemap import BudgetSpent, SitemapError, SitemapWalk, walk_sitemaps
from workers.crawl.sources import Source
from workers.urls import PageURL, normalize_url

log = logging.getLogger(__name__)

# How long one discovery may wait for hosts that ask it to slow down, within the
# discover task's 30-minute limit (workers/app.py).
DISCOVERY_WAIT_BUDGET = 20 * 60.0


@dataclass
class Discovered:
    urls: list[str] = field(default_factory=list)
    listing_pages: int = 0
    sitemaps: int = 0
    errors: list[str] = field(default_factory=list)


def patient_fetch(settings: Settings, profile: CrawlProfile, url: str, until: float, *,
                  html_only: bool = True) -> Page:
    """A polite fetch that waits out a busy or backing-off host (until `until`, monotonic)
    instead of giving up: discovery has no queue to come back through later. Past `until` it
    fetches nothing (a wait for a slot inside the fetch counts against it too)."""
    page = PageURL.of(url)
    while True:
        if time.monotonic() >= until:
            raise BudgetSpent(f"discovery's wait budget ({DISCOVERY_WAIT_BUDGET / 60:.0f} min) is spent")
        try:
            return polite_fetch(profile, page, html_only=html_only)
        except Deferred as exc:
            if time.monotonic() + exc.seconds > until:
                raise
            time.sleep(exc.seconds)


def sitemap_urls(settings: Settings, profile: CrawlProfile, sitemap: str,
                 until: float | None = None) -> SitemapWalk:
    """The walk of every page URL the sitemap lists (read as it is iterated), with one error line
    per sitemap or <loc> that failed; it stops when the wait budget is spent."""
    until = time.monotonic() + DISCOVERY_WAIT_BUDGET if until is None else until

    def body(url: str) -> bytes:
        try:
            return patient_fetch(settings, profile, url, until, html_only=False).body
        except (FetchError, Deferred, Disallowed) as exc:
            raise SitemapError(f"not fetched: {_why(exc, url)}") from exc

    return walk_sitemaps(sitemap, body)


def _why(exc: Exception, url: str) -> str:
    detail = str(exc).removeprefix(f"{url}: ")
    return f"{detail} ({exc.reason})" if isinstance(exc, FetchError) else detail


def _links(soup: BeautifulSoup, base: str, selector: str | None) -> list[str]:
    anchors = soup.select(selector) if selector else soup.find_all("a")
    found = []
    for anchor in anchors:
        href = anchor.get("href") if anchor.name == "a" else None
        if href is None:  # a selector may pick a container: take the links inside it
            found += [a.get("href") for a in anchor.find_all("a") if a.get("href")]
        else:
            found.append(href)
    out = []
    for href in found:
        try:
            out.append(normalize_url(urljoin(base, href)))
        except ValueError:  # InvalidURL, or urljoin's own (an unclosed IPv6 bracket): not a report link
            continue
    return out


def discover(settings: Settings, profile: CrawlProfile, source: Source,
             echo: Callable[[str], None] = log.info) -> Discovered:
    """Report URLs of `source`: from its sitemaps, then its listing pages and their "next" pages."""
    result = Discovered()
    rules = source.discovery
    found: dict[str, None] = {}

    def keep(url: str) -> None:
        if source.allows_host(url) and (rules.pattern is None or rules.pattern.search(url)):
            if len(found) < rules.max_pages:
                found.setdefault(url, None)

    until = time.monotonic() + DISCOVERY_WAIT_BUDGET
    for sitemap in source.sitemaps:
        walk = sitemap_urls(settings, profile, sitemap, until)
        for url in walk:
            keep(url)
            if len(found) >= rules.max_pages:
                break  # and no more of its sitemaps are fetched
        result.sitemaps += walk.sitemaps
        result.errors += walk.errors

    todo = [(normalize_url(seed), 0) for seed in source.seeds]
    seen: set[str] = set()
    while todo and len(found) < rules.max_pages:
        url, depth = todo.pop(0)
        if url in seen:
            continue
        seen.add(url)
        try:
            page = patient_fetch(settings, profile, url, until)
        except BudgetSpent as exc:
            result.errors.append(f"listing {url}: {exc}; {len(todo) + 1} listing pages not read")
            break
        except (FetchError, Deferred, Disallowed) as exc:
            result.errors.append(f"listing {url}: not fetched: {_why(exc, url)}")
            continue
        result.listing_pages += 1
        soup = BeautifulSoup(page.body, "lxml")  # once per page, for report links and "next" links
        for link in _links(soup, page.final_url, rules.link_selector):
            keep(link)
        if rules.next_selector and depth < rules.max_depth:
            todo += [(link, depth + 1) for link in _links(soup, page.final_url, rules.next_selector)
                     if source.allows_host(link)]
        echo(f"{source.name}: {result.listing_pages} listing pages, {len(found)} report URLs")
    result.urls = list(found)
    return result


def run_source(settings: Settings, name: str, *, force: bool = False,
               echo: Callable[[str], None] | None = None) -> tuple[Discovered, CrawlPlan]:
    """Discover a source's report URLs and crawl those never seen or due for a recheck."""

    source = sources(settings)[name]
    profile = source_profile(source, force)
    found = discover(settings, profile, source, **({"echo": echo} if echo else {}))
    due = found.urls if force else CrawlState(get_redis(), settings.index_prefix).due(found.urls)
    return found, start_crawl(settings, due, source=name, force=force)
