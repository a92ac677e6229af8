"""Sitemaps (https://www.sitemaps.org/protocol.html): URL sets, sitemap indexes, gzip."""

from __future__ import annotations

import gzip
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from lxml import etree

from workers.urls import InvalidURL, normalize_url

GZIP_MAGIC = b"\x1f\x8b"
# Decompressed size cap: the protocol allows 50 MB per sitemap.
MAX_SITEMAP_BYTES = 50 * 1024 * 1024
# Error lines a walk keeps: a sitemap of 50,000 bad <loc>s is counted, not listed.
ERRORS_KEPT = 100


class SitemapError(ValueError):
    pass


def parse_sitemap(body: bytes) -> tuple[list[str], list[str]]:
    """Return (page URLs, child sitemap URLs) of one sitemap document."""
    if body.startswith(GZIP_MAGIC):
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(body)) as gz:
                body = gz.read(MAX_SITEMAP_BYTES + 1)
        except (OSError, EOFError) as exc:
            raise SitemapError(f"bad gzip sitemap: {exc}") from exc
        if len(body) > MAX_SITEMAP_BYTES:
            raise SitemapError("sitemap larger than 50 MB once decompressed")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, recover=True, huge_tree=False)
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError as exc:
        raise SitemapError(f"not XML: {exc}") from exc
    if root is None:
        raise SitemapError("empty sitemap")
    kind = etree.QName(root).localname
    locs = [el.text.strip() for el in root.iter("{*}loc") if el.text and el.text.strip()]
    if kind == "sitemapindex":
        return [], locs
    if kind == "urlset":
        return locs, []
    raise SitemapError(f"not a sitemap: root element <{kind}>")


class BudgetSpent(SitemapError):
    """The walk's time is up: the sitemaps not read yet are left, not each reported as failed."""


@dataclass
class SitemapWalk:
    """A walk of a sitemap and every sitemap index below it, each sitemap once, read as it is
    iterated: page URLs (normalised, in sitemap order) come one sitemap at a time, so a walk of a
    thousand sitemaps holds one of them, and a reader that has enough stops the fetching too.

    `fetch_body` raises SitemapError for a sitemap it cannot fetch (BudgetSpent to stop the walk).
    A sitemap that cannot be fetched or read, or a <loc> that is not an http(s) URL, costs that
    entry only: it is recorded in `errors` (the first ERRORS_KEPT, the rest counted) and the walk
    goes on.
    """

    start: str
    fetch_body: Callable[[str], bytes]
    max_sitemaps: int = 1000
    found: int = 0  # page URLs given so far
    sitemaps: int = 0  # sitemap documents read
    errors: list[str] = field(default_factory=list)
    errors_left_out: int = 0

    def error(self, line: str) -> None:
        if len(self.errors) < ERRORS_KEPT:
            self.errors.append(line)
        else:
            self.errors_left_out += 1

    def __iter__(self) -> Iterator[str]:
        seen: set[str] = set()
        todo = [self.start]
        while todo and len(seen) < self.max_sitemaps:
            url = todo.pop(0)
            try:
                url = normalize_url(url)
            except InvalidURL as exc:
                self.error(f"sitemap {url!r}: {exc}")
                continue
            if url in seen:
                continue
            seen.add(url)
            try:
                pages, children = parse_sitemap(self.fetch_body(url))
            except BudgetSpent as exc:
                self.error(f"sitemap {self.start}: {exc}; {len(todo) + 1} sitemaps not read")
                return
            except SitemapError as exc:
                self.error(f"sitemap {url}: {exc}")
                continue
            self.sitemaps += 1
            for loc in pages:
                try:
                    page = normalize_url(loc)
                except InvalidURL as exc:
                    self.error(f"sitemap {url}: invalid <loc> {loc!r}: {exc}")
                    continue
                self.found += 1
                yield page
            todo.extend(children)
        if todo:
            self.error(f"sitemap {self.start}: stopped after {self.max_sitemaps} sitemaps, {len(todo)} not read")


def walk_sitemaps(start: str, fetch_body: Callable[[str], bytes], *, max_sitemaps: int = 1000) -> SitemapWalk:
    """Every page URL reachable from `start`, as a walk to iterate (SitemapWalk)."""
    return SitemapWalk(start, fetch_body, max_sitemaps)
