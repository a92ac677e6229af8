"""What the crawler knows about each URL, so it rechecks politely and only what is due.

Kept in Redis rather than Elasticsearch: every fetch reads and writes it, it
must be visible to all workers at once (Elasticsearch is only near-real-time,
so a URL fetched a second ago could still look due), and updates are single
atomic hash writes. One hash per URL, plus a sorted set of URLs by next due
time for discovery.

Recheck intervals adapt: a page that did not change is checked half as often
(up to a ceiling), a page that changed twice as often (down to a floor).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields

import redis

from workers.urls import doc_id
from workers.keys import Keys

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

    @classmethod
    def from_hash(cls, data: dict[str, str]) -> UrlState:
        names = {f.name for f in fields(cls)}
        return cls(**{
            key: float(raw) if key in _TIMES else raw
            for key, raw in data.items() if key in names and raw != ""
        })

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

# Fields stored as numbers (epoch seconds, or seconds for the interval); the rest are text.
_TIMES = frozenset({"first_seen", "last_fetched", "last_changed", "interval", "next_due"})


class CrawlState:
    def __init__(self, client: redis.Redis, namespace: str, *, min_interval: float = 86400.0,
                 max_interval: float = 30 * 86400.0):
        self.redis = client
        self.keys = Keys(namespace)
        self.due_key = self.keys.due
        self.recheck = (min_interval, max_interval)

    def _key(self, url: str) -> str:
        return self.keys.url_state(doc_id(url))

    def get(self, url: str) -> UrlState | None:
        data = self.redis.hgetall(self._key(url))
        return UrlState.from_hash(data) if data else None

    def get_many(self, urls: list[str]) -> dict[str, UrlState | None]:
        """The state of each of `urls` (None: never recorded), in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for url in urls:
            pipe.hgetall(self._key(url))
        return {url: UrlState.from_hash(data) if data else None for url, data in zip(urls, pipe.execute())}

    def _save(self, state: UrlState, pipe: redis.client.Pipeline) -> None:
        # No MULTI: were the due time lost, the URL would only look due sooner.
        pipe.hset(self._key(state.url), mapping={k: ("" if v is None else v) for k, v in asdict(state).items()})
        if state.next_due is not None:
            pipe.zadd(self.due_key, {state.url: state.next_due})

    def update_many(self, changes: dict[str, Change], pipe: redis.client.Pipeline) -> dict[str, UrlState | None]:
        """Each URL's state read (a new one if it has none) and changed as of now by its change in
        `changes`, all read in one round trip; the writes are queued on `pipe`, which the caller
        executes. A change that returns None writes nothing. Returns the new states."""
        before = self.get_many(list(changes))
        now = time.time()
        after = {url: change(before[url] or UrlState(url=url, first_seen=now), now) for url, change in changes.items()}
        for state in after.values():
            if state is not None:
                self._save(state, pipe)
        return after

    def update(self, url: str, change: Change) -> UrlState:
        """`url`'s state read (a new one if it has none), changed as of now, and written."""
        pipe = self.redis.pipeline(transaction=False)
        state = self.update_many({url: change}, pipe)[url]
        pipe.execute()
        return state

    def record_unchanged(self, url: str) -> UrlState:
        return self.update(url, lambda state, now: state.unchanged(now, self.recheck))

    def is_due(self, url: str, now: float | None = None) -> bool:
        score = self.redis.zscore(self.due_key, url)
        return score is None or score <= (now or time.time())

    def due(self, urls: list[str], now: float | None = None) -> list[str]:
        """Those of `urls` never seen, or whose next check is due."""
        if not urls:
            return []
        now = now or time.time()
        scores = self.redis.zmscore(self.due_key, urls)
        return [u for u, s in zip(urls, scores, strict=True) if s is None or s <= now]
