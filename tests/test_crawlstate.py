"""Crawl state per URL on a real Redis: validators, adaptive rechecks, due URLs."""

import time

from workers.crawl.state import GONE, OK, CrawlState

DAY = 86400.0


def test_intervals_adapt_within_bounds(redis_client):
    state = CrawlState(redis_client, "cs-a-", min_interval=DAY, max_interval=8 * DAY)
    url = "https://example.org/r"
    first = state.record_indexed(url, content_sha256="a", document_ids=["d1"], etag='"1"', last_modified=None)
    assert first.interval == DAY and first.status == OK and first.etag == '"1"'
    intervals = [state.record_unchanged(url).interval for _ in range(5)]
    assert intervals == [2 * DAY, 4 * DAY, 8 * DAY, 8 * DAY, 8 * DAY]  # doubles, then the ceiling
    changed = state.record_indexed(url, content_sha256="b", document_ids=["d1"], etag='"2"', last_modified=None)
    assert changed.interval == 4 * DAY and changed.last_changed >= first.first_seen
    loaded = state.get(url)
    assert (loaded.content_sha256, loaded.etag, loaded.document_id) == ("b", '"2"', "d1")


def test_gone_forgets_validators(redis_client):
    state = CrawlState(redis_client, "cs-b-")
    url = "https://example.org/g"
    state.record_indexed(url, content_sha256="a", document_ids=["d"], etag='"1"', last_modified="Mon")
    gone = state.get(url) and state.record_gone(url)
    assert gone.status == GONE and gone.etag is None and gone.content_sha256 is None
    assert state.get(url).document_id == "d"


def test_due_lists_new_and_overdue_urls(redis_client):
    state = CrawlState(redis_client, "cs-c-", min_interval=DAY)
    state.record_indexed("https://e.org/fresh", content_sha256="a", document_ids=["1"], etag=None, last_modified=None)
    urls = ["https://e.org/fresh", "https://e.org/new"]
    assert state.due(urls) == ["https://e.org/new"]
    assert state.due(urls, now=time.time() + 2 * DAY) == urls
