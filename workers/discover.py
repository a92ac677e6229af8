"""Finding report URLs: sitemaps (indexes, gzip) and listing pages with pagination."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urljoin

from bs4 import BeautifulSoup

from workers.fetch import FetchError
from workers.polite import Deferred, Disallowed, polite_fetch
from workers.profile import CrawlProfile
from workers.settings import Settings
from workers.sitemap import SitemapError, walk_sitemaps
from workers.sources import Source
from workers.urls import InvalidURL, normalize_url

log = logging.getLogger(__name__)


@dataclass
class Discovered:
    urls: list[str] = field(default_factory=list)
    listing_pages: int = 0
    sitemaps: int = 0
    errors: list[str] = field(default_factory=list)


def sitemap_urls(settings: Settings, profile: CrawlProfile, sitemap: str) -> list[str]:
    def body(url: str) -> bytes:
        return polite_fetch(settings, profile, url, html_only=False).body

    return walk_sitemaps(sitemap, body)


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
        except InvalidURL:
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

    for sitemap in source.sitemaps:
        try:
            for url in sitemap_urls(settings, profile, sitemap):
                keep(normalize_url(url))
            result.sitemaps += 1
        except (FetchError, SitemapError, Deferred, Disallowed, InvalidURL) as exc:
            result.errors.append(f"sitemap {sitemap}: {exc}")

    todo = [(normalize_url(seed), 0) for seed in source.seeds]
    seen: set[str] = set()
    while todo and len(found) < rules.max_pages:
        url, depth = todo.pop(0)
        if url in seen:
            continue
        seen.add(url)
        try:
            page = polite_fetch(settings, profile, url)
        except (FetchError, Deferred, Disallowed) as exc:
            result.errors.append(f"listing {url}: {exc}")
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
