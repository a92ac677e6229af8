"""Sitemaps (https://www.sitemaps.org/protocol.html): URL sets, sitemap indexes, gzip."""

from __future__ import annotations

import gzip
import io
from collections.abc import Callable
from dataclasses import dataclass, field

from lxml import etree

from workers.urls import InvalidURL, normalize_url

GZIP_MAGIC = b"\x1f\x8b"
# Decompressed size cap: the protocol allows 50 MB per sitemap.
MAX_SITEMAP_BYTES = 50 * 1024 * 1024


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


@dataclass
class SitemapWalk:
    urls: list[str] = field(default_factory=list)  # page URLs, normalised, in sitemap order
    sitemaps: int = 0  # sitemap documents read
    errors: list[str] = field(default_factory=list)  # one line per sitemap or <loc> that was unusable


def walk_sitemaps(
    start: str, fetch_body: Callable[[str], bytes], *, max_sitemaps: int = 1000,
) -> SitemapWalk:
    """Every page URL reachable from `start`, following sitemap indexes, each sitemap once.

    `fetch_body` raises SitemapError for a sitemap it cannot fetch. A sitemap that
    cannot be fetched or read, or a <loc> that is not an http(s) URL, costs that
    entry only: it is recorded in `errors` and the walk goes on.
    """
    walk = SitemapWalk()
    seen: set[str] = set()
    todo = [start]
    while todo and len(seen) < max_sitemaps:
        url = todo.pop(0)
        try:
            url = normalize_url(url)
        except InvalidURL as exc:
            walk.errors.append(f"sitemap {url!r}: {exc}")
            continue
        if url in seen:
            continue
        seen.add(url)
        try:
            pages, children = parse_sitemap(fetch_body(url))
        except SitemapError as exc:
            walk.errors.append(f"sitemap {url}: {exc}")
            continue
        walk.sitemaps += 1
        for loc in pages:
            try:
                walk.urls.append(normalize_url(loc))
            except InvalidURL as exc:
                walk.errors.append(f"sitemap {url}: invalid <loc> {loc!r}: {exc}")
        todo.extend(children)
    if todo:
        walk.errors.append(f"sitemap {start}: stopped after {max_sitemaps} sitemaps, {len(todo)} not read")
    return walk
