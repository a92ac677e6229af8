"""What the crawler knows about each URL, so it rechecks politely and only what is due.

Kept in Redis rather than Elasticsearch: every fetch reads and writes it, it
must be visible to all workers at once (Elasticsearch is only near-real-time,
so a URL fetched a second ago could still look due), and updates are single
writes. One string per URL, a JSON array of the fields in a fixed order (about
250 bytes a URL in Redis, measured in docs/scale.md; a hash with the URL in it
took 1.2 KB, and a sorted set of due times 184 B more), read in one MGET for a
batch or a sitemap's URLs.

Every write gives the URL's state URL_STATE_TTL (at least three recheck
intervals) to live: a URL that no source lists and no crawl asks for any more
is never fetched again, and its state goes by itself.

States written before this layout (a hash per URL and a sorted set of due times)
are still read, and moved to it when written again or, a page at a time, by
housekeeping (`move_legacy`).

Recheck intervals adapt: a page that did not change is checked half as often
(up to a ceiling), a page that changed twice as often (down to a floor).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from dataclasses import dataclass, fields

import orjson

import redis

from workers.batching import chunked
from workers.keys import Keys
from workers.settings import get_settings
from workers.urls import PageURL

OK, GONE = "ok", "gone"


@dataclass
class UrlState:
    url: str
    first_seen: float
    last_fetched: float | None = None
    last_changed: float | None = None
    etag: str | None = None
    last_modified: str | None = None
    content_sha256: str | None = None
    # The documents the page became, space-separated: one for a page, one per chapter for a
    # full-report PDF. (Stored under this name since the days of one document per page.)
    document_id: str | None = None
    status: str | None = None
    interval: float | None = None
    next_due: float | None = None

    @property
    def document_ids(self) -> list[str]:
        return self.document_id.split() if self.document_id else []

    # What each way a fetch can end changes. `recheck`: the (floor, ceiling) of the interval.

    def unchanged(self, now: float, recheck: tuple[float, float]) -> UrlState:
        """A 304, or the same bytes as last time: nothing to parse or index."""
        self.last_fetched, self.status = now, OK
        return self._reschedule(now, recheck, changed=False)

    def indexed(self, now: float, recheck: tuple[float, float], *, content_sha256: str, document_ids: list[str],
                etag: str | None, last_modified: str | None, fetched_at: float | None = None) -> UrlState:
        """New content reached the index: only now are its validators worth sending back."""
        changed = self.content_sha256 is not None and self.content_sha256 != content_sha256
        self.last_fetched = fetched_at or now
        self.last_changed = now if changed or self.content_sha256 is None else self.last_changed
        self.etag, self.last_modified = etag, last_modified
        self.content_sha256, self.document_id = content_sha256, " ".join(document_ids)
        self.status = OK
        return self._reschedule(now, recheck, changed=changed)

    def gone(self, now: float, recheck: tuple[float, float]) -> UrlState:
        self.last_fetched, self.status = now, GONE
        # Validators of a vanished page must not make its return look unchanged.
        self.etag = self.last_modified = self.content_sha256 = None
        return self._reschedule(now, recheck, changed=False)

    def _reschedule(self, now: float, recheck: tuple[float, float], changed: bool) -> UrlState:
        low, high = recheck
        if self.interval is None:
            interval = low
        elif changed:
            interval = self.interval / 2
        else:
            interval = self.interval * 2
        self.interval = max(low, min(high, interval))
        self.next_due = now + self.interval
        return self


# How a URL's state changes as of a time (epoch seconds); None: it does not.
Change = Callable[[UrlState, float], UrlState | None]

# The fields stored, in this order (the URL is the key's; times are whole seconds).
_STORED = ("first_seen", "last_fetched", "last_changed", "interval", "next_due", "status", "etag",
           "last_modified", "content_sha256", "document_id")
_TIMES = frozenset({"first_seen", "last_fetched", "last_changed", "interval", "next_due"})
# Read in steps of this many keys: a sitemap of 50,000 URLs is not one command.
MGET_PAGE = 1000
# How often a process looks again whether states of the old layout are left.
LEGACY_CHECK = 600.0


def pack(state: UrlState, page: PageURL) -> bytes:
    """The stored form of `page`'s state: the fields of _STORED, trailing empty ones left out, each
    as short as it goes back exactly: times in whole seconds, after the first as seconds since it; a
    content hash in base64; a Last-Modified date as its epoch; a document ID that is the page's own
    (a page's one document) left out, an empty one stored as ""."""
    data = {name: getattr(state, name) for name in _STORED}
    first = int(data["first_seen"])
    for name in _TIMES - {"first_seen", "interval"}:
        data[name] = None if data[name] is None else int(data[name]) - first
    data["first_seen"] = first
    data["interval"] = None if data["interval"] is None else int(data["interval"])
    data["content_sha256"] = _short_hash(data["content_sha256"])
    data["last_modified"] = _epoch_if_exact(data["last_modified"])
    document = data["document_id"]
    data["document_id"] = None if document == page.key else ("" if document is None else document)
    values = list(data.values())
    while values and values[-1] is None:
        values.pop()
    return orjson.dumps(values)


def unpack(page: PageURL, raw: str | bytes) -> UrlState:
    values = orjson.loads(raw)
    data = dict(zip(_STORED, values + [None] * (len(_STORED) - len(values))))
    first = data["first_seen"]
    for name in _TIMES - {"first_seen", "interval"}:
        data[name] = None if data[name] is None else first + data[name]
    data = {name: float(value) if name in _TIMES and value is not None else value for name, value in data.items()}
    data["content_sha256"] = _long_hash(data["content_sha256"])
    if isinstance(data["last_modified"], int):
        data["last_modified"] = format_datetime(datetime.fromtimestamp(data["last_modified"], UTC), usegmt=True)
    document = data["document_id"]
    data["document_id"] = page.key if document is None else (document or None)
    return UrlState(url=page.url, **data)


def _short_hash(sha256: str | None) -> str | None:
    if sha256 is not None and len(sha256) == 64:
        try:
            return base64.b64encode(bytes.fromhex(sha256)).decode().rstrip("=")
        except ValueError:
            pass
    return sha256


def _long_hash(stored: str | None) -> str | None:
    return base64.b64decode(stored + "=").hex() if stored is not None and len(stored) == 43 else stored


def _epoch_if_exact(http_date: str | None) -> str | int | None:
    """An HTTP date as its epoch when it reads back to the very same text (sent back as it came in
    If-Modified-Since); otherwise the text."""
    try:
        when = parsedate_to_datetime(http_date) if http_date else None
    except (TypeError, ValueError):
        return http_date
    if when is None or when.tzinfo is None or format_datetime(when.astimezone(UTC), usegmt=True) != http_date:
        return http_date
    return int(when.timestamp())


class CrawlState:
    def __init__(self, client: redis.Redis, namespace: str, *, min_interval: float = 86400.0,
                 max_interval: float = 30 * 86400.0, ttl: float | None = None):
        self.redis = client
        self.keys = Keys(namespace)
        self.recheck = (min_interval, max_interval)
        self.ttl = ttl if ttl is not None else get_settings().url_state_ttl

    # The URLs these methods take are canonical (normalize_url): each is taken as a page as it is,
    # and hashed once for all the keys of one call. The `*_pages` ones take pages already hashed.

    def key(self, page: PageURL) -> str:
        # The page's hash's 16 bytes in base64: 10 bytes of Redis a URL less than its hex.
        return self.keys.url_state(base64.urlsafe_b64encode(bytes.fromhex(page.key)).decode().rstrip("="))

    def get(self, url: str) -> UrlState | None:
        return self.get_many([url])[url]

    def get_many(self, urls: list[str]) -> dict[str, UrlState | None]:
        """The state of each of `urls` (None: never recorded), in one round trip a thousand."""
        return self.get_pages([PageURL(url) for url in urls])

    def get_pages(self, pages: list[PageURL]) -> dict[str, UrlState | None]:
        """`get_many` of pages, by URL."""
        found: dict[str, UrlState | None] = {}
        for chunk in chunked(pages, MGET_PAGE):
            found.update((page.url, unpack(page, raw) if raw else None)
                         for page, raw in zip(chunk, self.redis.mget([self.key(p) for p in chunk]), strict=True))
        if missing := [page for page in pages if found[page.url] is None and self._legacy_left()]:
            found.update(self._legacy(missing))
        return found

    def _save(self, page: PageURL, state: UrlState, pipe: redis.client.Pipeline) -> None:
        pipe.set(self.key(page), pack(state, page), px=self._lifetime_ms(state))
        if self._legacy_left():
            pipe.delete(self.keys.legacy_url_state(page.key))
            pipe.zrem(self.keys.legacy_due, state.url)

    def _lifetime_ms(self, state: UrlState) -> int:
        # Long enough that a URL rechecked at its longest interval is never forgotten between checks.
        return int(1000 * max(self.ttl, 3 * (state.interval or 0)))

    def update_many(self, changes: dict[str, Change], pipe: redis.client.Pipeline) -> dict[str, UrlState | None]:
        """Each URL's state read (a new one if it has none) and changed as of now by its change in
        `changes`, all read in one round trip; the writes are queued on `pipe`, which the caller
        executes. A change that returns None writes nothing. Returns the new states."""
        return self.update_pages({PageURL(url): change for url, change in changes.items()}, pipe)

    def update_pages(self, changes: dict[PageURL, Change], pipe: redis.client.Pipeline) -> dict[str, UrlState | None]:
        """`update_many` of pages, by URL."""
        before = self.get_pages(list(changes))
        now = time.time()
        after: dict[str, UrlState | None] = {}
        for page, change in changes.items():
            state = after[page.url] = change(before[page.url] or UrlState(url=page.url, first_seen=now), now)
            if state is not None:
                self._save(page, state, pipe)
        return after

    def update(self, page: PageURL, change: Change) -> UrlState:
        """The page's state read (a new one if it has none), changed as of now, and written."""
        pipe = self.redis.pipeline(transaction=False)
        state = self.update_pages({page: change}, pipe)[page.url]
        pipe.execute()
        return state

    def record_unchanged(self, page: PageURL) -> UrlState:
        return self.update(page, lambda state, now: state.unchanged(now, self.recheck))

    def due(self, urls: list[str], now: float | None = None) -> list[str]:
        """Those of `urls` never seen, or whose next check is due."""
        now = now or time.time()
        states = self.get_many(urls)
        return [url for url in urls if (state := states[url]) is None or state.next_due is None
                or state.next_due <= now]

    # --- states of the old layout (a hash per URL, a sorted set of due times) ----------------

    def _legacy_left(self) -> bool:
        checked = _LEGACY.get(self.keys.namespace)
        if checked is None or time.monotonic() - checked[0] > LEGACY_CHECK:
            checked = _LEGACY[self.keys.namespace] = (time.monotonic(), bool(self.redis.exists(self.keys.legacy_due)))
        return checked[1]

    def _legacy(self, pages: list[PageURL]) -> dict[str, UrlState | None]:
        pipe = self.redis.pipeline(transaction=False)
        for page in pages:
            pipe.hgetall(self.keys.legacy_url_state(page.key))
        return {page.url: _from_hash(page.url, data) if data else None
                for page, data in zip(pages, pipe.execute(), strict=True)}

    def move_legacy(self, page: int = 500) -> int:
        """Move up to `page` states of the old layout to the new one (a newer state is kept); how many
        were left to move before this step. Housekeeping calls it until none are left."""
        urls = self.redis.zrange(self.keys.legacy_due, 0, page - 1)
        if urls:
            pages = [PageURL(url) for url in urls]
            states = self._legacy(pages)
            pipe = self.redis.pipeline(transaction=False)
            for moved in pages:
                if (state := states[moved.url]) is not None:
                    pipe.set(self.key(moved), pack(state, moved), px=self._lifetime_ms(state), nx=True)
                pipe.delete(self.keys.legacy_url_state(moved.key))
            pipe.zrem(self.keys.legacy_due, *urls)
            pipe.execute()
        return len(urls)


# Per namespace: when this process last looked whether old-layout states are left, and the answer.
_LEGACY: dict[str, tuple[float, bool]] = {}


def _from_hash(url: str, data: dict[str, str]) -> UrlState:
    names = {f.name for f in fields(UrlState)}
    return UrlState(**{**{key: float(raw) if key in _TIMES else raw
                          for key, raw in data.items() if key in names and raw != ""}, "url": url})
