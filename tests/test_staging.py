"""The fetch→index hand-over and crawl progress, on a real Redis."""

import json

from workers.crawl.progress import FAILED, INDEXED, QUEUED, CrawlTracker, Snapshot
from workers.index.staging import Staging


def test_remove_only_what_was_written(redis_client):
    stage = Staging(redis_client, "stage-a-")
    assert stage.put("a", json.dumps({"v": 1}), trigger_ttl=60)  # first entry: this caller triggers indexing
    assert not stage.put("b", json.dumps({"v": 1}), trigger_ttl=60)
    batch = stage.take(10)
    assert sorted(k for k, _ in batch) == ["a", "b"]
    stage.put("a", json.dumps({"v": 2}), trigger_ttl=60)  # restaged while the batch was being written
    assert stage.remove(batch) == 1
    assert [(k, json.loads(v)) for k, v in stage.take(10)] == [("a", {"v": 2})]


def test_take_respects_limit(redis_client):
    stage = Staging(redis_client, "stage-b-")
    for i in range(300):
        stage.put(f"k{i}", json.dumps({"i": i}), trigger_ttl=60)
    assert len(stage.take(100)) == 100
    assert stage.size() == 300


def test_one_trigger_at_a_time(redis_client):
    stage = Staging(redis_client, "stage-c-")
    assert stage.claim_trigger(ttl=60)
    assert not stage.claim_trigger(ttl=60)
    stage.release_trigger()
    assert stage.claim_trigger(ttl=60)


def test_tracker_counts_each_url_once(redis_client):
    tracker = CrawlTracker(redis_client, "stage-d-", "crawl1")
    assert tracker.add(["u1", "u2", "u3"]) == ["u1", "u2", "u3"]
    assert tracker.add(["u1", "u4"]) == ["u4"]
    tracker.mark("u1", INDEXED)
    tracker.mark("u1", INDEXED)  # a redelivered task
    tracker.mark("u2", FAILED)
    tracker.mark("stray", INDEXED)  # not part of the crawl
    assert tracker.counts() == {QUEUED: 2, INDEXED: 1, FAILED: 1}


def test_snapshot_rate_and_eta():
    from collections import Counter

    snap = Snapshot(Counter({INDEXED: 30, FAILED: 10, QUEUED: 40}), elapsed=10.0)
    assert (snap.total, snap.done, snap.rate, snap.eta) == (80, 40, 4.0, 10.0)
    assert "40/80 done" in snap.line() and "ETA 10s" in snap.line()


def test_watch_reports_final_state_and_stops_on_timeout(redis_client):
    from workers.crawl.progress import watch

    tracker = CrawlTracker(redis_client, "stage-e-", "crawl2")
    tracker.add(["u1", "u2"])
    tracker.mark("u1", INDEXED)
    lines: list[str] = []
    snap = watch(tracker, interval=0.01, timeout=0.05, echo=lines.append)
    assert (snap.done, snap.total) == (1, 2)  # gave up waiting, one still open
    assert lines[-1].startswith("1/2 done")
    tracker.mark("u2", FAILED)
    lines.clear()
    assert watch(tracker, echo=lines.append).done == 2
    assert lines == [lines[-1]] and "failed 1" in lines[-1]


def test_an_open_crawl_keeps_its_keys_and_a_finished_one_expires_after_crawl_ttl(redis_client, settings):
    from workers.crawl.profile import save_options
    from workers.crawl.progress import CRAWL_TTL
    from workers.keys import Keys

    keys = Keys("stage-f-")
    save_options(redis_client, settings.model_copy(update={"index_prefix": "stage-f-"}), "c3", {"force": False},
                 ttl=CRAWL_TTL)
    tracker = CrawlTracker(redis_client, "stage-f-", "c3")
    tracker.add(["u1", "u2"])
    crawl_keys = [keys.crawl("c3"), keys.crawl_counts("c3"), keys.crawl_options("c3")]
    # A crawl that takes longer than a week (one host at 0.5 req/s) must not lose its options.
    assert [redis_client.ttl(key) for key in crawl_keys] == [-1, -1, -1]
    assert redis_client.sismember(keys.open_crawls, "c3")
    tracker.mark("u1", INDEXED)
    assert redis_client.ttl(keys.crawl("c3")) == -1
    tracker.mark("u2", FAILED)
    assert all(0 < redis_client.ttl(key) <= CRAWL_TTL for key in crawl_keys)
    assert not redis_client.sismember(keys.open_crawls, "c3")
    tracker.mark("u2", QUEUED)  # sent again: open once more
    assert [redis_client.ttl(key) for key in crawl_keys] == [-1, -1, -1]
    assert tracker.counts() == {INDEXED: 1, QUEUED: 1}


def test_counts_of_a_large_crawl_are_read_without_reading_the_crawl(redis_client):
    tracker = CrawlTracker(redis_client, "stage-g-", "big")
    urls = [f"https://example.org/{i}" for i in range(5000)]
    assert len(tracker.add(urls)) == 5000
    for url in urls[:10]:
        tracker.mark(url, INDEXED)
    redis_client.config_resetstat()
    assert tracker.counts() == {QUEUED: 4990, INDEXED: 10}
    stats = redis_client.info("commandstats")
    assert "cmdstat_hvals" not in stats and "cmdstat_hscan" not in stats
    assert stats["cmdstat_hgetall"]["calls"] == 1
