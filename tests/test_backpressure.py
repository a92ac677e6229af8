"""Backpressure on a real worker: while staged entries are over their byte budget, fetching waits
(parked, never dropped), and resumes by itself once indexing catches up."""

from __future__ import annotations

from tests.site import LocalSite
from tests.test_reliability import await_condition, indexed_count, serve_reports
from workers.crawl.parked import Parked
from workers.tracking.progress import INDEXED, QUEUED, CrawlTracker
from workers.crawl.progress import watch
from workers.crawl.start import start_crawl
from workers.index.staging import Staging
from workers.keys import Keys
from workers.records import Failure, FailureEntry

EXTRA_ENV = {"STAGING_MAX_BYTES": "1000", "STAGING_WAIT": "0.5", "HOUSEKEEPING_INTERVAL": "0.5"}


def test_fetching_waits_while_staging_is_over_budget_and_resumes_when_indexing_catches_up(
        worker, settings, redis_client, es, names):
    keys, site = Keys(settings.index_prefix), LocalSite()
    try:
        urls = serve_reports(site, 900, 3)
        # Elasticsearch cannot keep up: another index run holds the lock and writes nothing, and a
        # large entry is staged.
        redis_client.set(keys.index_runner, "a-stuck-run", ex=600)
        ballast = FailureEntry("https://example.org/ballast", None, None,
                               Failure("https://example.org/ballast", "fetch", "http_500", "x" * 30_000))
        staging = Staging(redis_client, settings.index_prefix)
        staging.put(ballast.key, ballast.to_json(), trigger_ttl=600)
        assert staging.bytes() > settings.staging_max_bytes

        plan = start_crawl(settings, urls, allow_networks=["127.0.0.1/32"])
        tracker = CrawlTracker(redis_client, settings.index_prefix, plan.crawl_id)
        parked = Parked(redis_client, settings.index_prefix)
        await_condition(lambda: parked.size() >= 3, what="every page parked while staging is full")
        assert not any(site.hits[path] for path in site.hits if path != "/robots.txt")
        assert tracker.counts() == {QUEUED: 3}

        redis_client.delete(keys.index_runner, keys.index_trigger)  # indexing catches up
        snap = watch(tracker, interval=0.2, timeout=90, echo=lambda _line: None)
        assert snap.counts == {INDEXED: 3}
        assert indexed_count(es, names, urls) == 3
    finally:
        site.close()
