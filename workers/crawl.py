"""Starting crawls: normalise and de-duplicate URLs, enqueue them, follow their progress."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from elasticsearch import Elasticsearch
from elasticsearch.helpers import scan

from workers.clients import get_http, get_redis
from workers.fetch import fetch
from workers.index import IndexNames
from workers.progress import CrawlTracker
from workers.settings import Settings
from workers.sitemap import walk_sitemaps
from workers.urls import InvalidURL, normalize_url


@dataclass
class CrawlPlan:
    crawl_id: str
    queued: list[str] = field(default_factory=list)
    duplicates: int = 0
    invalid: list[str] = field(default_factory=list)


def sitemap_urls(settings: Settings, sitemap: str) -> list[str]:
    def body(url: str) -> bytes:
        return fetch(
            get_http(), url, connect_timeout=settings.connect_timeout, read_timeout=settings.read_timeout,
            max_bytes=settings.max_page_bytes, max_redirects=settings.max_redirects, html_only=False,
        ).body

    return walk_sitemaps(sitemap, body)


def start_crawl(settings: Settings, urls: list[str], crawl_id: str | None = None) -> CrawlPlan:
    """Enqueue one fetch task per distinct normalised URL; return what was queued."""
    from workers.tasks import fetch_page  # the task module imports the app; keep CLI start-up light

    plan = CrawlPlan(crawl_id or uuid.uuid4().hex[:12])
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


def failed_urls(es: Elasticsearch, names: IndexNames) -> list[str]:
    return [hit["_source"]["url"] for hit in scan(es, index=names.failures, _source=["url"])]


def recent_failures(es: Elasticsearch, names: IndexNames, size: int = 20) -> list[dict]:
    response = es.search(index=names.failures, size=size, sort=[{"failed_at": "desc"}])
    return [hit["_source"] for hit in response["hits"]["hits"]]
