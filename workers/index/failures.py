"""The failures index: every page that could not become a document (workers/records.py
`Failure`), read newest first for people, and all of them crawled again by `retry-failed`.

Before the first crawl the alias does not exist; nothing can have failed then, so
both read as empty rather than as an error.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from elasticsearch import Elasticsearch
from elasticsearch.helpers import scan

from workers.clients import get_redis
from workers.crawl.profile import allowed_networks, load_options, sources
from workers.crawl.start import CrawlPlan, start_crawl
from workers.index.indices import IndexNames
from workers.redaction import is_redacted
from workers.settings import Settings


def recent_failures(es: Elasticsearch, names: IndexNames, size: int = 20) -> list[dict]:
    """The `size` newest failure records."""
    if not es.indices.exists_alias(name=names.failures):
        return []
    response = es.search(index=names.failures, size=size, sort=[{"failed_at": "desc"}])
    return [hit["_source"] for hit in response["hits"]["hits"]]


def all_failures(es: Elasticsearch, names: IndexNames, fields: Sequence[str]) -> Iterator[dict]:
    """Every failure record, with only `fields`, in no particular order."""
    if not es.indices.exists_alias(name=names.failures):
        return
    for hit in scan(es, index=names.failures, _source=list(fields)):
        yield hit["_source"]


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
    for record in all_failures(es, names, ["url", "crawl_id", "source"]):
        if is_redacted(record["url"]):
            retry.redacted += 1
            continue
        options = load_options(client, settings, record.get("crawl_id"))
        source = record.get("source") or options.source
        networks = () if source else tuple(allowed_networks(options))
        groups.setdefault((source, networks), []).append(record["url"])
    known = sources(settings) if any(source for source, _ in groups) else {}
    for (source, networks), urls in groups.items():
        if source is not None and source not in known:
            retry.unknown_sources[source] = len(urls)
            continue
        retry.plans.append(start_crawl(settings, urls, source=source, allow_networks=networks, force=True))
    return retry
