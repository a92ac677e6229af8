"""Starting crawls: normalise and de-duplicate URLs, enqueue them, follow their progress.

`report-ingest crawl` runs this and nothing heavier: the fetch task is sent by name, so
starting a crawl imports neither the parsers nor the Elasticsearch client.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from workers.app import app
from workers.clients import get_redis
from workers.crawl.profile import save_options
from workers.crawl.progress import CRAWL_TTL, CrawlTracker
from workers.crawl.reconcile import FETCH_TASK
from workers.settings import Settings
from workers.urls import InvalidURL, normalize_url


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
    """Enqueue one fetch task per distinct normalised URL; return what was queued.

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
    # One producer for the whole batch: a connection acquired per message was most of the cost.
    with app.producer_or_acquire() as producer:
        for url in plan.queued:
            app.send_task(FETCH_TASK, (url, plan.crawl_id), producer=producer)
    return plan
