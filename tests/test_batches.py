"""How a crawl is cut into fetch messages (batches of fetch_pages). What becomes of a batch's pages
on a real worker, one that dies on a page included, is in tests/test_poison.py."""

from __future__ import annotations

from urllib.parse import urlsplit

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
