"""`retry-failed`: every recorded failure (workers/index/failures.py) crawled again, forced.

Above both stages, as it reads the index's failures and starts crawls: the index never imports
the crawl, and the crawl hands over to the index only through its staging."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from workers.clients import get_redis
from workers.crawl.profile import allowed_networks, load_options, sources
from workers.crawl.start import CrawlPlan, start_crawl
from workers.index.failures import failed_pages
from workers.index.indices import IndexNames
from workers.redaction import is_redacted
from workers.settings import Settings

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch


@dataclass
class Retry:
    plans: list[CrawlPlan] = field(default_factory=list)
    # Failures of sources no longer in the sources file: not crawled under a policy they never had.
    unknown_sources: dict[str, int] = field(default_factory=dict)
    # Failures of signed URLs, whose credentials the record does not keep: fetched, they would only
    # be refused. Crawl them again from a fresh link.
    redacted: int = 0


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
    for page in failed_pages(es, names):
        if is_redacted(page.url):
            retry.redacted += 1
            continue
        options = load_options(client, settings, page.crawl_id)
        source = page.source or options.source
        networks = () if source else tuple(allowed_networks(options))
        groups.setdefault((source, networks), []).append(page.url)
    known = sources(settings) if any(source for source, _ in groups) else {}
    for (source, networks), urls in groups.items():
        if source is not None and source not in known:
            retry.unknown_sources[source] = len(urls)
            continue
        retry.plans.append(start_crawl(settings, urls, source=source, allow_networks=networks, force=True))
    return retry
