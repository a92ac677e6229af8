"""How a crawl is cut into fetch messages (batches of fetch_pages), and when a batch hands its pages
on as messages of their own. What becomes of a batch's pages on a real worker, one that dies on a
page included, is in tests/test_poison.py."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

from celery.exceptions import SoftTimeLimitExceeded

from workers.crawl import tasks
from workers.crawl.start import MIN_MESSAGES, batches


def test_a_small_crawl_is_one_url_per_message():
    urls = [f"http://h{i % 3}.test/p{i}" for i in range(2 * MIN_MESSAGES - 1)]
    assert batches(urls, most=8) == [[url] for url in urls]


def test_a_large_crawl_is_batched_by_host_with_hosts_taking_turns():
    urls = [f"http://h{i % 4}.test/p{i}" for i in range(300)]
    cut = batches(urls, most=8)
    assert sorted(url for batch in cut for url in batch) == sorted(urls)  # every URL once
    assert max(map(len, cut)) == 300 // MIN_MESSAGES
    assert all(len({urlsplit(url).netloc for url in batch}) == 1 for batch in cut)
    hosts = [urlsplit(batch[0]).netloc for batch in cut]
    assert hosts[:8] == ["h0.test", "h1.test", "h2.test", "h3.test"] * 2
    for host in {*hosts}:  # a host's URLs keep their order
        mine = [url for batch in cut for url in batch if urlsplit(url).netloc == host]
        assert mine == [url for url in urls if urlsplit(url).netloc == host]


def test_batches_never_exceed_the_most_asked():
    assert max(map(len, batches([f"http://h.test/p{i}" for i in range(10_000)], most=8))) == 8
    assert max(map(len, batches([f"http://h.test/p{i}" for i in range(10_000)], most=1))) == 1


def test_a_batch_past_its_soft_time_limit_sends_the_page_it_was_on_and_the_rest_on_their_own(
        redis_client, monkeypatch):
    done, sent = [], []

    def page(_task, _settings, url, _crawl_id, _robots_deferrals=0, *, delivery=None, known=None, page=None):
        assert delivery is None  # the batch's delivery is counted, not each page's
        assert known == dict.fromkeys(urls)  # every page's crawl state read at once: none yet
        assert page.url == url  # each URL normalised once, for the batch
        if url.endswith("/2"):
            raise SoftTimeLimitExceeded()
        done.append(url)
        return "fetched"

    monkeypatch.setattr(tasks, "_page", page)
    monkeypatch.setattr(tasks, "send_fetches", lambda urls, crawl_id: sent.extend((u, crawl_id) for u in urls))
    urls = [f"http://127.0.0.1:9/{i}" for i in range(4)]
    assert tasks.fetch_pages.apply(args=(urls, "c1")).get() == "fetched:2 split:2"
    assert done == urls[:2] and sent == [(url, "c1") for url in urls[2:]]


def test_a_batch_delivered_again_is_split_without_fetching(redis_client, monkeypatch):
    fetched, sent = [], []
    monkeypatch.setattr(tasks, "_page", lambda _t, _s, url, *_a, **_k: fetched.append(url) or "fetched")
    monkeypatch.setattr(tasks, "send_fetches", lambda urls, crawl_id: sent.extend(urls))
    urls, task_id = [f"http://127.0.0.1:9/{i}" for i in range(3)], uuid.uuid4().hex
    assert tasks.fetch_pages.apply(args=(urls, None), task_id=task_id).get() == "fetched:3"
    # The same message again: its worker died before acknowledging it.
    assert tasks.fetch_pages.apply(args=(urls, None), task_id=task_id).get() == "split:3"
    assert fetched == urls and sent == urls
