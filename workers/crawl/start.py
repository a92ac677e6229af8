"""Starting crawls: normalise and de-duplicate URLs, enqueue them, follow their progress."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from elasticsearch import Elasticsearch

from workers.clients import get_redis
from workers.crawl.discover import Discovered, discover
from workers.crawl.profile import allowed_networks, load_options, save_options, source_profile, sources
from workers.crawl.progress import CRAWL_TTL, CrawlTracker
from workers.crawl.state import CrawlState
from workers.crawl.tasks import fetch_page
from workers.index.failures import all_failures
from workers.index.indices import IndexNames
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
    with fetch_page.app.producer_or_acquire() as producer:
        for url in plan.queued:
            fetch_page.apply_async((url, plan.crawl_id), producer=producer)
    return plan


@dataclass
class Retry:
    plans: list[CrawlPlan] = field(default_factory=list)
    # Failures of sources no longer in the sources file: not crawled under a policy they never had.
    unknown_sources: dict[str, int] = field(default_factory=dict)


def retry_failures(settings: Settings, es: Elasticsearch, names: IndexNames) -> Retry:
    """Crawl every recorded failure again, forced, each page under the profile it failed with.

    The profile is the record's `source`, else that of the crawl that failed it (its
    options last 7 days); an ad-hoc page keeps the networks its crawl opened while
    those options last. Forced, because a failed page's validators and content hash
    are those of its last success: unforced, an unchanged page would come back
    "unchanged", neither refetched nor parsed again, and its failure would stay.
    """
    retry = Retry()
    groups: dict[tuple[str | None, tuple[str, ...]], list[str]] = {}
    client = get_redis()
    for record in all_failures(es, names, ["url", "crawl_id", "source"]):
        options = load_options(client, settings, record.get("crawl_id"))
        source = record.get("source") or options.get("source")
        networks = () if source else tuple(allowed_networks(options))
        groups.setdefault((source, networks), []).append(record["url"])
    known = sources(settings) if any(source for source, _ in groups) else {}
    for (source, networks), urls in groups.items():
        if source is not None and source not in known:
            retry.unknown_sources[source] = len(urls)
            continue
        retry.plans.append(start_crawl(settings, urls, source=source, allow_networks=networks, force=True))
    return retry


def run_source(settings: Settings, name: str, *, force: bool = False,
               echo: Callable[[str], None] | None = None) -> tuple[Discovered, CrawlPlan]:
    """Discover a source's report URLs and crawl those never seen or due for a recheck."""

    source = sources(settings)[name]
    profile = source_profile(source, force)
    found = discover(settings, profile, source, **({"echo": echo} if echo else {}))
    due = found.urls if force else CrawlState(get_redis(), settings.index_prefix).due(found.urls)
    return found, start_crawl(settings, due, source=name, force=force)
