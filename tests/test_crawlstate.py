"""Crawl state per URL on a real Redis: validators, adaptive rechecks, due URLs."""

import time

from workers.crawl.state import GONE, OK, CrawlState

DAY = 86400.0


def record_indexed(state: CrawlState, url: str, sha: str, document_ids: list[str], etag: str | None,
                   last_modified: str | None = None):
    """What the index task records once a page's documents are written."""
    return state.update(url, lambda s, now: s.indexed(now, state.recheck, content_sha256=sha,
                                                      document_ids=document_ids, etag=etag,
                                                      last_modified=last_modified))


def test_intervals_adapt_within_bounds(redis_client):
    state = CrawlState(redis_client, "cs-a-", min_interval=DAY, max_interval=8 * DAY)
    url = "https://example.org/r"
    first = record_indexed(state, url, "a", ["d1"], '"1"')
    assert first.interval == DAY and first.status == OK and first.etag == '"1"'
    intervals = [state.record_unchanged(url).interval for _ in range(5)]
    assert intervals == [2 * DAY, 4 * DAY, 8 * DAY, 8 * DAY, 8 * DAY]  # doubles, then the ceiling
    changed = record_indexed(state, url, "b", ["d1"], '"2"')
    assert changed.interval == 4 * DAY and changed.last_changed >= first.first_seen
    loaded = state.get(url)
    assert (loaded.content_sha256, loaded.etag, loaded.document_id) == ("b", '"2"', "d1")


def test_gone_forgets_validators(redis_client):
    state = CrawlState(redis_client, "cs-b-")
    url = "https://example.org/g"
    record_indexed(state, url, "a", ["d"], '"1"', "Mon")
    gone = state.update(url, lambda s, now: s.gone(now, state.recheck))
    assert gone.status == GONE and gone.etag is None and gone.content_sha256 is None
    assert state.get(url).document_id == "d"


def test_due_lists_new_and_overdue_urls(redis_client):
    state = CrawlState(redis_client, "cs-c-", min_interval=DAY)
    record_indexed(state, "https://e.org/fresh", "a", ["1"], None)
    urls = ["https://e.org/fresh", "https://e.org/new"]
    assert state.due(urls) == ["https://e.org/new"]
    assert state.due(urls, now=time.time() + 2 * DAY) == urls
