"""Starting crawls: normalise and de-duplicate URLs, record them as queued, and send their fetches.

`report-ingest crawl` runs this and nothing heavier: the fetch task is sent by name, so
starting a crawl imports neither the parsers nor the Elasticsearch client.

A start streams: its URLs are read, recorded and sent START_CHUNK at a time, so a list of a
million URLs costs the memory of a chunk. A URL is recorded as queued before its message is
sent; a start that stops in between (Ctrl-C, a broker error, a task's time limit) would leave
URLs queued with no message. So a start holds a lease while it runs (workers/crawl/starts.py): one whose
lease ran out without finishing gets a reconciliation from housekeeping, which sends what the
start did not (workers/crawl/reconcile.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import zip_longest

from workers.app import app
from workers.batching import chunked
from workers.clients import get_redis
from workers.crawl.starts import CrawlStarts
from workers.settings import Settings
from workers.task_names import FETCH_PAGE, FETCH_PAGES, FETCH_QUEUE
from workers.tracking.options import CrawlOptions
from workers.tracking.progress import CRAWL_TTL, CrawlTracker
from workers.urls import InvalidURL, normalize_url

# A crawl is cut into at least this many messages (if it has the URLs), so that many pages can
# be fetched at once; only beyond that do messages carry several URLs (workers/crawl/tasks.py).
MIN_MESSAGES = 64
# URLs normalised, recorded and sent per step of a start.
START_CHUNK = 1000
# Invalid URLs whose reasons a plan keeps (the rest are counted): a file of garbage stays small.
INVALID_KEPT = 100


@dataclass
class CrawlPlan:
    crawl_id: str
    queued: int = 0
    duplicates: int = 0
    invalid: list[str] = field(default_factory=list)  # why each invalid URL was refused (the first ones)
    invalid_count: int = 0

    def refuse(self, reason: str) -> None:
        self.invalid_count += 1
        if len(self.invalid) < INVALID_KEPT:
            self.invalid.append(reason)


def start_crawl(
    settings: Settings, urls: Iterable[str], *, source: str | None = None,
    allow_networks: Sequence[str] = (), force: bool = False, crawl_id: str | None = None,
    progress: Callable[[CrawlPlan], None] | None = None,
) -> CrawlPlan:
    """Enqueue a fetch of each distinct normalised URL of `urls` (read as it goes); return the counts.

    The crawl's options (its source, or for an ad-hoc crawl the non-public
    networks it may reach, as CIDRs; `force` to ignore validators and content
    hashes) are stored under its ID for the tasks. `progress` is called after each step.
    """
    plan = CrawlPlan(crawl_id or uuid.uuid4().hex[:12])
    client = get_redis()
    tracker, starts = CrawlTracker(client, settings.index_prefix, plan.crawl_id), None
    # One producer for all the messages: a connection acquired per message was most of the cost.
    with app.producer_or_acquire() as producer:
        for chunk in chunked(urls, START_CHUNK):
            canonical = []
            for raw in chunk:
                try:
                    canonical.append(normalize_url(raw))
                except InvalidURL as exc:
                    plan.refuse(str(exc))
            if not canonical:
                continue
            if starts is None:
                CrawlOptions(source, tuple(allow_networks), force).save(client, settings.index_prefix,
                                                                        plan.crawl_id, ttl=CRAWL_TTL)
                starts = CrawlStarts(client, settings.index_prefix)
                # Declared once: Celery declares a task's queue with every message it sends, binding
                # a copy of the queue each time, a tenth of a start's time.
                producer.maybe_declare(app.amqp.queues[FETCH_QUEUE])
            starts.hold(plan.crawl_id)
            added = tracker.add(dict.fromkeys(canonical))
            plan.queued += len(added)
            plan.duplicates += len(canonical) - len(added)
            # A step's messages go in one pipelined round trip (kombu >= 5.7): sent one by one,
            # the round trips were most of a start's time.
            with producer.batch():
                for batch in batches(added, settings.fetch_batch_max):
                    if len(batch) == 1:
                        app.send_task(FETCH_PAGE, (batch[0], plan.crawl_id), producer=producer, declare=[])
                    else:
                        # Celery's own repr of the URL list was a tenth of a start's time, for a log line.
                        app.send_task(FETCH_PAGES, (batch, plan.crawl_id), producer=producer, declare=[],
                                      argsrepr=f"({len(batch)} URLs from {batch[0]!r}, {plan.crawl_id!r})")
            if progress is not None:
                progress(plan)
    if starts is not None:
        starts.release(plan.crawl_id)
    return plan


def batches(urls: list[str], most: int) -> list[list[str]]:
    """The crawl's URLs cut into fetch messages: one URL each, until there are enough for
    MIN_MESSAGES. A batch holds one host's URLs (each runs after the one before, so it never
    asks its host for two leases at once), and hosts take turns in the queue, as in `urls`."""
    size = max(1, min(most, len(urls) // MIN_MESSAGES))
    by_host: dict[str, list[str]] = {}
    for url in urls:
        by_host.setdefault(url.split("/", 3)[2], []).append(url)  # canonical: scheme://host/path
    runs = [[group[i:i + size] for i in range(0, len(group), size)] for group in by_host.values()]
    return [batch for turn in zip_longest(*runs) for batch in turn if batch]
