"""Per-crawl progress, kept in Redis so every worker process can report to it.

Each URL of a crawl has one state in a hash. Setting a state is idempotent,
so a redelivered task never counts a page twice.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import redis

from workers.keys import Keys
from workers import progress_line

QUEUED, FETCHED, INDEXED, FAILED = "queued", "fetched", "indexed", "failed"
# Done without indexing: 304 or same bytes; robots.txt said no; 404/410 on recheck.
UNCHANGED, SKIPPED, GONE = "unchanged", "skipped", "gone"
OPEN_STATES = frozenset({QUEUED, FETCHED})
# A finished crawl's record is kept this long for `status` and late readers.
CRAWL_TTL = 7 * 24 * 3600


def set_if_present(key: str, url: str, state: str) -> str:
    """Lua that sets `url`'s state in the crawl hash `key`, only if the URL is part of the crawl
    (a stray late update must not grow it). Arguments: Lua expressions, such as "KEYS[1]"."""
    return f"""
if redis.call('HEXISTS', {key}, {url}) == 1 then
  redis.call('HSET', {key}, {url}, {state})
end
"""


_SET_IF_PRESENT = set_if_present("KEYS[1]", "ARGV[1]", "ARGV[2]")


class CrawlTracker:
    def __init__(self, client: redis.Redis, namespace: str, crawl_id: str):
        self.redis = client
        self.crawl_id = crawl_id
        self.key = Keys(namespace).crawl(crawl_id)
        self._mark = client.register_script(_SET_IF_PRESENT)

    def add(self, urls: Iterable[str]) -> list[str]:
        """Record URLs as queued; return those not already part of this crawl."""
        urls = list(urls)
        pipe = self.redis.pipeline()
        for url in urls:
            pipe.hsetnx(self.key, url, QUEUED)
        pipe.expire(self.key, CRAWL_TTL)
        added = pipe.execute()[:-1]
        return [url for url, new in zip(urls, added, strict=True) if new]

    def mark(self, url: str, state: str, pipe: redis.client.Pipeline | None = None) -> None:
        """Set `url`'s state, if it belongs to the crawl; on `pipe` if given (its caller executes it)."""
        self._mark(keys=[self.key], args=[url, state], client=pipe)

    def counts(self) -> Counter:
        return Counter(self.redis.hvals(self.key))

    def states(self) -> dict[str, str]:
        return self.redis.hgetall(self.key)


@dataclass
class Snapshot:
    counts: Counter
    elapsed: float

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def done(self) -> int:
        return self.total - sum(self.counts[s] for s in OPEN_STATES)

    @property
    def rate(self) -> float:
        return progress_line.rate(self.done, self.elapsed)

    @property
    def eta(self) -> float | None:
        return progress_line.eta(self.done, self.total, self.elapsed)

    def line(self) -> str:
        c = self.counts
        return (
            f"{self.done}/{self.total} done | queued {c[QUEUED]} fetched {c[FETCHED]} "
            f"indexed {c[INDEXED]} unchanged {c[UNCHANGED]} skipped {c[SKIPPED]} gone {c[GONE]} "
            f"failed {c[FAILED]} | {progress_line.rate_and_eta(self.done, self.total, self.elapsed, 'pages')}"
        )


def watch(
    tracker: CrawlTracker, *, interval: float = 0.5, timeout: float | None = None,
    echo: Callable[[str], None] | None = None, every: float = 5.0,
) -> Snapshot:
    """Poll until no URL of the crawl is open (or `timeout`); return the last snapshot.

    Progress goes to `echo` (see workers.progress_line), the final state always.
    """
    start = time.monotonic()
    show = progress_line.ProgressPrinter(echo, every)
    while True:
        snap = Snapshot(tracker.counts(), time.monotonic() - start)
        ended = snap.done == snap.total or (timeout is not None and snap.elapsed > timeout)
        show(snap.line(), final=ended)
        if ended:
            return snap
        time.sleep(interval)
