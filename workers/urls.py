"""URL normalisation and the stable document ID derived from it.

One report must be one document, whatever form of its address a listing page,
a sitemap or a user typed: scheme and host case, default ports, fragments,
tracking parameters and dot segments do not make a new document.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from contextlib import suppress
from dataclasses import dataclass
from functools import cached_property
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

DEFAULT_PORTS = {"http": 80, "https": 443}
TRACKING_PARAMS = frozenset(
    {"fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "_ga", "_gl", "igshid", "ref_src"}
)
# Characters left as they are when re-quoting a path: RFC 3986 reserved and unreserved.
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"


class InvalidURL(ValueError):
    """The text is not an absolute http(s) URL."""


class UnsupportedScheme(InvalidURL):
    """An absolute URL of another scheme (file:, ftp:, mailto:, ...): never fetched."""


# An address already in canonical form, which the rules below would give back as it is: lower-case
# http(s) scheme and host (no trailing dot), a port only if not the default one, a path of
# characters quoting keeps and no empty or dot segment, no query, no fragment. A list of a million
# such addresses (a sitemap's, a file's) spent a third of a start's time splitting and rejoining them.
_CANONICAL = re.compile(r"(https?)://[a-z0-9-]+(?:\.[a-z0-9-]+)*(?::([1-9][0-9]{0,4}))?"
                        r"(?:/[A-Za-z0-9:@!$&'()*+,;=_~%-]+(?:\.[A-Za-z0-9:@!$&'()*+,;=_~%-]*)*)*/?")


def _is_tracking(name: str) -> bool:
    return name.lower().startswith("utm_") or name.lower() in TRACKING_PARAMS


def normalize_url(url: str) -> str:
    """Return the canonical form of an absolute http(s) URL, or raise InvalidURL."""
    text = url.strip()
    if (match := _CANONICAL.fullmatch(text)) and text.count("/") > 2 and (
            match[2] is None or int(match[2]) <= 65535 and int(match[2]) != DEFAULT_PORTS[match[1]]):
        return text
    return _split_and_rejoin(text, url)


def _split_and_rejoin(text: str, url: str) -> str:
    try:
        parts = urlsplit(text)
    except ValueError as exc:  # e.g. an unclosed IPv6 bracket
        raise InvalidURL(f"not a URL: {url!r} ({exc})") from exc
    scheme = parts.scheme.lower()
    if not scheme:
        raise InvalidURL(f"not an http(s) URL: {url!r} has no scheme (e.g. https://)")
    if scheme not in DEFAULT_PORTS:
        raise UnsupportedScheme(f"not an http(s) URL: {url!r} has scheme {scheme}:")
    if not parts.hostname:
        raise InvalidURL(f"URL has no host: {url!r}")
    host = parts.hostname.lower().rstrip(".")
    try:
        port = parts.port
    except ValueError as exc:
        raise InvalidURL(f"bad port in URL: {url!r}") from exc
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host if port in (None, DEFAULT_PORTS[scheme]) else f"{host}:{port}"

    path = parts.path or "/"
    trailing = path.endswith("/")
    path = posixpath.normpath(path)
    if path.startswith("//"):
        path = "/" + path.lstrip("/")
    if trailing and path != "/":
        path += "/"
    path = quote(path, safe=_PATH_SAFE)

    query = urlencode(
        [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _is_tracking(k)]
    )
    return urlunsplit((scheme, netloc, path, query, ""))


def doc_id(canonical_url: str) -> str:
    """Stable document ID: crawling the same report again overwrites, never duplicates."""
    return hashlib.sha256(canonical_url.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class PageURL:
    """One page's URL as a fetch carries it, as Scrapy carries its Request through every stage:
    normalised once (`of`), hashed once, on first use (`key`: the `_id` of its raw page and failure
    record, and what its delivery count, crawl state, host lease and staged entry are keyed by).

    Built directly, it is taken as it is: a URL already in canonical form (a redirect's hop that
    `normalize_url` gave), or text that is no URL at all, which only becomes a failure record.
    """

    url: str

    @classmethod
    def of(cls, url: str) -> PageURL:
        """`url` normalised; raises InvalidURL."""
        return cls(normalize_url(url))

    @cached_property
    def key(self) -> str:
        return doc_id(self.url)


def page_url(url: str | PageURL) -> PageURL:
    """`url` as a page: as it is when it is one, normalised when it is text; raises InvalidURL."""
    return url if isinstance(url, PageURL) else PageURL.of(url)


def pages_of(urls: list[str]) -> dict[str, PageURL]:
    """Those of `urls` that are URLs, as pages, by the text they came as."""
    pages = {}
    for url in urls:
        with suppress(InvalidURL):
            pages[url] = PageURL.of(url)
    return pages
