"""Per-crawl progress, kept in Redis so every worker process can report to it.

Each URL of a crawl has one state in a hash. Setting a state is idempotent,
so a redelivered task never counts a page twice.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import redis

from workers.keys import Keys

QUEUED, FETCHED, INDEXED, FAILED = "queued", "fetched", "indexed", "failed"
# Done without indexing: 304 or same bytes; robots.txt said no; 404/410 on recheck.
UNCHANGED, SKIPPED, GONE = "unchanged", "skipped", "gone"
OPEN_STATES = frozenset({QUEUED, FETCHED})
# A finished crawl's record is kept this long for `status` and late readers.
CRAWL_TTL = 7 * 24 * 3600
_SET_IF_PRESENT = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
"""


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

    def mark(self, url: str, state: str) -> None:
        # Only URLs that belong to the crawl: a stray late update must not grow it.
        self._mark(keys=[self.key], args=[url, state])

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
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        return (self.total - self.done) / self.rate if self.rate > 0 else None

    def line(self) -> str:
        eta = f"{self.eta:.0f}s" if self.eta is not None else "?"
        c = self.counts
        return (
            f"{self.done}/{self.total} done | queued {c[QUEUED]} fetched {c[FETCHED]} "
            f"indexed {c[INDEXED]} unchanged {c[UNCHANGED]} skipped {c[SKIPPED]} gone {c[GONE]} "
            f"failed {c[FAILED]} | {self.rate:.1f} pages/s | ETA {eta}"
        )


def watch(
    tracker: CrawlTracker, *, interval: float = 0.5, timeout: float | None = None,
    echo: Callable[[str], None] | None = None, every: float = 5.0,
) -> Snapshot:
    """Poll until no URL of the crawl is open (or `timeout`); return the last snapshot.

    Progress goes to `echo`: redrawn in place on each poll when stderr is a
    terminal, otherwise one line every `every` seconds (logs stay readable),
    and always the final state.
    """
    start = time.monotonic()
    live = echo is not None and sys.stderr.isatty()
    last_line = float("-inf")
    while True:
        snap = Snapshot(tracker.counts(), time.monotonic() - start)
        ended = snap.done == snap.total or (timeout is not None and snap.elapsed > timeout)
        if live:
            print("\r" + snap.line(), end="\n" if ended else "", file=sys.stderr, flush=True)
        elif echo is not None and (ended or snap.elapsed - last_line >= every):
            echo(snap.line())
            last_line = snap.elapsed
        if ended:
            return snap
        time.sleep(interval)
