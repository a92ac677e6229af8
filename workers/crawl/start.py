"""Starting crawls: normalise and de-duplicate URLs, record them as queued, and send their fetches.

`report-ingest crawl` runs this and nothing heavier: the fetch task is sent by name, so
starting a crawl imports neither the parsers nor the Elasticsearch client.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import zip_longest
from urllib.parse import urlsplit

from workers.app import app
from workers.clients import get_redis
from workers.crawl.profile import save_options
from workers.crawl.progress import CRAWL_TTL, CrawlTracker
from workers.crawl.reconcile import FETCH_BATCH_TASK, FETCH_TASK
from workers.settings import Settings
from workers.urls import InvalidURL, normalize_url

# A crawl is cut into at least this many messages (if it has the URLs), so that many pages can
# be fetched at once; only beyond that do messages carry several URLs (workers/crawl/tasks.py).
MIN_MESSAGES = 64


@dataclass
class CrawlPlan:
    crawl_id: str
    queued: list[str] = field(default_factory=list)
    duplicates: int = 0
    invalid: list[str] = field(default_factory=list)  # why each invalid URL was refused


def start_crawl(
    settings: Settings, urls: list[str], *, source: str | None = None,
    allow_networks: Sequence[str] = (), force: bool = False, crawl_id: str | None = None,
) -> CrawlPlan:
    """Enqueue a fetch of each distinct normalised URL; return what was queued.

    The crawl's options (its source, or for an ad-hoc crawl the non-public
    networks it may reach, as CIDRs; `force` to ignore validators and content
    hashes) are stored under its ID for the tasks.
    """

    plan = CrawlPlan(crawl_id or uuid.uuid4().hex[:12])
    unique: dict[str, None] = {}
    for raw in urls:
        try:
            unique.setdefault(normalize_url(raw), None)
        except InvalidURL as exc:
            plan.invalid.append(str(exc))
    if not unique:
        return plan
    save_options(get_redis(), settings, plan.crawl_id, {
        "source": source, "allow_networks": list(allow_networks), "force": force,
    }, ttl=CRAWL_TTL)
    tracker = CrawlTracker(get_redis(), settings.index_prefix, plan.crawl_id)
    plan.queued = tracker.add(unique)
    plan.duplicates = len(urls) - len(plan.invalid) - len(plan.queued)
    # One producer for all the messages: a connection acquired per message was most of the cost.
    with app.producer_or_acquire() as producer:
        for batch in batches(plan.queued, settings.fetch_batch_max):
            if len(batch) == 1:
                app.send_task(FETCH_TASK, (batch[0], plan.crawl_id), producer=producer)
            else:
                app.send_task(FETCH_BATCH_TASK, (batch, plan.crawl_id), producer=producer)
    return plan


def batches(urls: list[str], most: int) -> list[list[str]]:
    """The crawl's URLs cut into fetch messages: one URL each, until there are enough for
    MIN_MESSAGES. A batch holds one host's URLs (each runs after the one before, so it never
    asks its host for two leases at once), and hosts take turns in the queue, as in `urls`."""
    size = max(1, min(most, len(urls) // MIN_MESSAGES))
    by_host: dict[str, list[str]] = {}
    for url in urls:
        by_host.setdefault(urlsplit(url).netloc, []).append(url)
    runs = [[group[i:i + size] for i in range(0, len(group), size)] for group in by_host.values()]
    return [batch for turn in zip_longest(*runs) for batch in turn if batch]
