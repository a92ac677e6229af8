"""Crawl state per URL on a real Redis: validators, adaptive rechecks, due URLs."""

import threading
import time

from workers.tracking.state import GONE, OK, CrawlState
from workers.urls import PageURL, doc_id

DAY = 86400.0


def record_indexed(state: CrawlState, url: str, sha: str, document_ids: list[str], etag: str | None,
                   last_modified: str | None = None):
    """What the index task records once a page's documents are written."""
    return state.update(PageURL(url), lambda s, now: s.indexed(now, state.recheck, content_sha256=sha,
                                                      document_ids=document_ids, etag=etag,
                                                      last_modified=last_modified))


def test_intervals_adapt_within_bounds(redis_client):
    state = CrawlState(redis_client, "cs-a-", min_interval=DAY, max_interval=8 * DAY)
    url = "https://example.org/r"
    first = record_indexed(state, url, "a", ["d1"], '"1"')
    assert first.interval == DAY and first.status == OK and first.etag == '"1"'
    intervals = [state.record_unchanged(PageURL(url)).interval for _ in range(5)]
    assert intervals == [2 * DAY, 4 * DAY, 8 * DAY, 8 * DAY, 8 * DAY]  # doubles, then the ceiling
    changed = record_indexed(state, url, "b", ["d1"], '"2"')
    assert changed.interval == 4 * DAY and changed.last_changed >= first.first_seen
    loaded = state.get(url)
    assert (loaded.content_sha256, loaded.etag, loaded.document_id) == ("b", '"2"', "d1")


def test_gone_forgets_validators(redis_client):
    state = CrawlState(redis_client, "cs-b-")
    url = "https://example.org/g"
    record_indexed(state, url, "a", ["d"], '"1"', "Mon")
    gone = state.update(PageURL(url), lambda s, now: s.gone(now, state.recheck))
    assert gone.status == GONE and gone.etag is None and gone.content_sha256 is None
    assert state.get(url).document_id == "d"


def test_due_lists_new_and_overdue_urls(redis_client):
    state = CrawlState(redis_client, "cs-c-", min_interval=DAY)
    record_indexed(state, "https://e.org/fresh", "a", ["1"], None)
    urls = ["https://e.org/fresh", "https://e.org/new"]
    assert state.due(urls) == ["https://e.org/new"]
    assert state.due(urls, now=time.time() + 2 * DAY) == urls


def test_a_url_state_at_rest_takes_at_most_300_bytes_of_redis(redis_client):
    state = CrawlState(redis_client, "cs-d-")
    urls = [f"https://www.refworld.org/docid/{i:08x}/trafficking-in-persons-report-2024-country.html"
            for i in range(10_000)]
    before = redis_client.info("memory")["used_memory"]
    pipe = redis_client.pipeline(transaction=False)
    state.update_many({url: lambda s, now: s.indexed(
        now, state.recheck, content_sha256="9f" * 32, document_ids=[doc_id(s.url)], etag='"5f3c-61a8e2b9c4d00"',
        last_modified="Mon, 24 Jun 2024 14:05:10 GMT") for url in urls}, pipe)
    pipe.execute()
    per_url = (redis_client.info("memory")["used_memory"] - before) / len(urls)
    assert per_url <= 300, f"{per_url:.0f} bytes per URL"
    assert state.get(urls[0]).document_ids == [doc_id(urls[0])]


def test_the_state_of_a_url_nothing_crawls_any_more_expires(redis_client):
    state = CrawlState(redis_client, "cs-e-", min_interval=0.1, max_interval=0.2, ttl=0.1)
    url = "https://e.org/forgotten"
    record_indexed(state, url, "a", ["d"], None)
    assert 0 < redis_client.pttl(state.key(PageURL(url))) <= 1000
    gone = threading.Event()
    while not gone.wait(0.05):
        if state.get(url) is None:
            gone.set()


def test_states_of_the_old_layout_are_read_and_moved(redis_client):
    state = CrawlState(redis_client, "cs-f-")
    url = "https://e.org/old"
    redis_client.hset(state.keys.legacy_url_state(doc_id(url)), mapping={
        "url": url, "first_seen": "100.0", "etag": '"x"', "document_id": "d1", "next_due": "200.0", "interval": "50"})
    redis_client.zadd(state.keys.legacy_due, {url: 200.0})
    assert state.get(url).etag == '"x"'
    assert state.due([url], now=150.0) == []
    assert state.move_legacy() == 1
    assert not redis_client.exists(state.keys.legacy_url_state(doc_id(url)), state.keys.legacy_due)
    assert (state.get(url).etag, state.get(url).document_ids) == ('"x"', ["d1"])


def test_a_packed_state_reads_back_as_it_was_written():
    from workers.tracking.state import UrlState, pack, unpack

    url = "https://e.org/packed"
    exact = UrlState(url, first_seen=1_700_000_000.0, last_fetched=1_700_000_100.0, last_changed=None, etag='W/"1"',
                     last_modified="Tue, 14 Nov 2023 22:13:20 GMT", content_sha256="ab" * 32,
                     document_id=doc_id(url), status=OK, interval=DAY, next_due=1_700_086_500.0)
    odd = UrlState(url, first_seen=1_700_000_000.0, last_modified="Tuesday, 14-Nov-23 22:13:20 GMT",
                   content_sha256="a", document_id="c1 c2")
    empty = UrlState(url, first_seen=1_700_000_000.0)
    page = PageURL(url)
    for state in (exact, odd, empty):
        assert unpack(page, pack(state, page)) == state
    assert len(pack(exact, page)) < 120  # what keeps a URL under 300 bytes of Redis
