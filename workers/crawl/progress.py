"""Following a crawl: its progress read every so often, shown as one line, until no URL is open."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from workers import progress_line
from workers.tracking.progress import (FAILED, FETCHED, GONE, INDEXED, OPEN_STATES, QUEUED, SKIPPED, UNCHANGED,
                                       CrawlTracker)


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
