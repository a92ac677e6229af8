"""Redis round trips that do not grow with a batch, on a real Redis and Elasticsearch.

Each round trip costs a worker thread a turn at the GIL and a wait; counted here at the
socket (one packed send per command, or per pipeline), never timed.
"""

import uuid

import pytest
from redis.connection import AbstractConnection

from tests.corpus import report_page
from tests.helpers import offline_fetcher
from workers.crawl.http import Page
from workers.crawl.profile import adhoc_profile
from workers.tracking.progress import FAILED, INDEXED, CrawlTracker
from workers.tracking.state import CrawlState
from workers.index.indices import ensure_indices
from workers.index.staging import Staging
from workers.index.tasks import BatchWriter
from workers.parse import parse_page
from workers.records import DocumentEntry, Failure, FailureEntry, RawPage
from workers.urls import PageURL


@pytest.fixture
def round_trips(monkeypatch):
    """A counter of the requests every Redis client of this process sends (stage timings are
    written at most once a second, so they are held back here)."""
    monkeypatch.setattr("workers.timings.FLUSH_EVERY", float("inf"))
    sent = [0]
    send = AbstractConnection.send_packed_command

    def counting(self, command, check_health=True):
        sent[0] += 1
        return send(self, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counting)
    return sent


def _entry(url: str, crawl_id: str, n: int) -> DocumentEntry:
    body = report_page(n).html
    page = Page(url=url, final_url=url, status=200, content_type="text/html; charset=utf-8", etag=f'"{n}"',
                last_modified=None, body=body, fetched_at="2025-01-01T00:00:00+00:00")
    document = parse_page(body, url).indexable(page.fetched_at)
    raw = RawPage.of(page)
    raw.canonical_url, raw.source = document.canonical_url, document.source
    return DocumentEntry(url, crawl_id, None, [document], raw)


def test_an_index_batch_remembers_its_pages_in_round_trips_that_do_not_grow_with_it(
        es, names, settings, redis_client, round_trips):
    ensure_indices(es, names, settings.schemas_dir)
    queue, state = Staging(redis_client, settings.index_prefix), CrawlState(redis_client, settings.index_prefix)
    trips = {}
    for size in (3, 2, 20):  # the first loads the scripts
        crawl_id = f"trips-{size}"
        urls = [f"https://example.org/trips/{size}/{i}.html" for i in range(size)]
        tracker = CrawlTracker(redis_client, settings.index_prefix, crawl_id)
        tracker.add(urls)
        entries = [_entry(url, crawl_id, i) for i, url in enumerate(urls[:-1])]
        entries.append(FailureEntry(urls[-1], crawl_id, None, Failure(urls[-1], "fetch", "http_error", "404")))
        for entry in entries:
            queue.put(entry.key, entry.to_json(), trigger_ttl=60)
        batch = queue.take(100)
        before = round_trips[0]
        assert BatchWriter(es, settings, queue).write(batch, careful=False).removed == size
        trips[size] = round_trips[0] - before

        assert tracker.counts() == {INDEXED: size - 1, FAILED: 1}
        kept = state.get_many(urls)
        assert [kept[url].etag for url in urls[:-1]] == [f'"{i}"' for i in range(size - 1)]
        assert kept[urls[-1]] is None  # a failure leaves the crawl state as it was
    queue.release_trigger()
    assert trips[2] == trips[20]


def test_staging_a_page_sets_its_progress_in_the_same_round_trip(redis_client, round_trips):
    queue = Staging(redis_client, "trips-stage-")
    tracker = CrawlTracker(redis_client, "trips-stage-", "c1")
    tracker.add(["https://example.org/a"])
    before = round_trips[0]
    assert queue.put("a", "{}", trigger_ttl=60, progress=("c1", "https://example.org/a", "fetched"))
    assert round_trips[0] - before == 1
    # A URL that is not part of the crawl is staged, but does not join it.
    assert not queue.put("b", "{}", trigger_ttl=60, progress=("c1", "https://example.org/b", "fetched"))
    assert tracker.states(["https://example.org/a", "https://example.org/b"]) == {
        "https://example.org/a": "fetched", "https://example.org/b": None}
    assert sorted(taken.key for taken in queue.take(10)) == ["a", "b"]


def test_a_fetch_from_a_host_whose_robots_txt_was_read_takes_two_round_trips(settings, redis_client, monkeypatch,
                                                                           round_trips):
    fetcher, robots_fetched = offline_fetcher(settings, redis_client, monkeypatch, b"User-agent: *\nAllow: /\n")
    profile = adhoc_profile(settings, ["127.0.0.0/8"])
    base = f"http://127.0.0.{uuid.uuid4().int % 200 + 2}:8081"
    fetcher.fetch(profile, PageURL.of(f"{base}/trips/1"))
    before = round_trips[0]
    fetcher.fetch(profile, PageURL.of(f"{base}/trips/2"))
    # The turn, taken only if robots.txt is still the one read before; the lease, given back.
    assert round_trips[0] - before == 2
    assert robots_fetched == [f"{base}/robots.txt"]
