"""Starting crawls: normalise and de-duplicate URLs, enqueue them, follow their progress."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from elasticsearch import Elasticsearch
from elasticsearch.helpers import scan

from workers.clients import get_redis
from workers.index import IndexNames
from workers.profile import load_options, save_options
from workers.progress import CRAWL_TTL, CrawlTracker
from workers.settings import Settings
from workers.urls import InvalidURL, normalize_url

if TYPE_CHECKING:
    from workers.discover import Discovered


@dataclass
class CrawlPlan:
    crawl_id: str
    queued: list[str] = field(default_factory=list)
    duplicates: int = 0
    invalid: list[str] = field(default_factory=list)


def start_crawl(
    settings: Settings, urls: list[str], *, source: str | None = None,
    allow_private_networks: bool = False, force: bool = False, crawl_id: str | None = None,
) -> CrawlPlan:
    """Enqueue one fetch task per distinct normalised URL; return what was queued.

    The crawl's options (its source, or the ad-hoc network policy; `force` to
    ignore validators and content hashes) are stored under its ID for the tasks.
    """
    from workers.tasks import fetch_page  # the task module imports the app; keep CLI start-up light

    plan = CrawlPlan(crawl_id or uuid.uuid4().hex[:12])
    save_options(get_redis(), settings, plan.crawl_id, {
        "source": source, "allow_private_networks": allow_private_networks, "force": force,
    }, ttl=CRAWL_TTL)
    unique: dict[str, None] = {}
    for raw in urls:
        try:
            unique.setdefault(normalize_url(raw), None)
        except InvalidURL:
            plan.invalid.append(raw)
    tracker = CrawlTracker(get_redis(), settings.index_prefix, plan.crawl_id)
    plan.queued = tracker.add(unique)
    plan.duplicates = len(urls) - len(plan.invalid) - len(plan.queued)
    for url in plan.queued:
        fetch_page.apply_async((url, plan.crawl_id))
    return plan


def retry_failures(settings: Settings, es: Elasticsearch, names: IndexNames) -> list[CrawlPlan]:
    """Crawl every recorded failure again, each with the options of the crawl that failed it.

    A page from a source keeps its source's policy; a page from an ad-hoc crawl of a
    local site keeps its permission to reach private addresses.
    """
    groups: dict[tuple, list[str]] = {}
    client = get_redis()
    for hit in scan(es, index=names.failures, _source=["url", "crawl_id"]):
        options = load_options(client, settings, hit["_source"].get("crawl_id"))
        key = (options.get("source"), bool(options.get("allow_private_networks")))
        groups.setdefault(key, []).append(hit["_source"]["url"])
    return [
        start_crawl(settings, urls, source=source, allow_private_networks=private)
        for (source, private), urls in groups.items()
    ]


def recent_failures(es: Elasticsearch, names: IndexNames, size: int = 20) -> list[dict]:
    response = es.search(index=names.failures, size=size, sort=[{"failed_at": "desc"}])
    return [hit["_source"] for hit in response["hits"]["hits"]]


def run_source(settings: Settings, name: str, *, force: bool = False,
               echo: Callable[[str], None] | None = None) -> tuple[Discovered, CrawlPlan]:
    """Discover a source's report URLs and crawl those never seen or due for a recheck."""
    from workers.crawlstate import CrawlState
    from workers.discover import discover
    from workers.profile import source_profile, sources

    source = sources(settings)[name]
    profile = source_profile(source, force)
    found = discover(settings, profile, source, **({"echo": echo} if echo else {}))
    due = found.urls if force else CrawlState(get_redis(), settings.index_prefix).due(found.urls)
    return found, start_crawl(settings, due, source=name, force=force)
