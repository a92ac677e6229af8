"""The fetch→index hand-over and crawl progress, on a real Redis."""

import json

from workers.tracking.progress import FAILED, INDEXED, QUEUED, CrawlTracker
from workers.crawl.progress import Snapshot
from workers.index.staging import Staging


def test_remove_only_what_was_written(redis_client):
    stage = Staging(redis_client, "stage-a-")
    assert stage.put("a", json.dumps({"v": 1}), trigger_ttl=60)  # first entry: this caller triggers indexing
    assert not stage.put("b", json.dumps({"v": 1}), trigger_ttl=60)
    batch = stage.take(10)
    assert sorted(taken.key for taken in batch) == ["a", "b"]
    stage.put("a", json.dumps({"v": 2}), trigger_ttl=60)  # restaged while the batch was being written
    assert stage.remove(batch) == 1
    assert [(taken.key, json.loads(taken.text)) for taken in stage.take(10)] == [("a", {"v": 2})]


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
    from workers.keys import Keys
    from workers.tracking.options import CrawlOptions
    from workers.tracking.progress import CRAWL_TTL

    keys = Keys("stage-f-")
    CrawlOptions().save(redis_client, "stage-f-", "c3", ttl=CRAWL_TTL)
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


def test_staged_bytes_follow_every_put_overwrite_and_remove(redis_client):
    stage = Staging(redis_client, "stage-h-")
    stage.put("a", "x" * 100, trigger_ttl=60)
    stage.put("b", "y" * 50, trigger_ttl=60)
    stage.put("a", "z" * 30, trigger_ttl=60)  # a newer fetch of the same URL replaces the older entry
    assert stage.bytes() == 80
    assert stage.remove(stage.take(10)) == 2
    assert (stage.bytes(), stage.size()) == (0, 0)


def test_take_is_bounded_by_bytes_but_always_takes_one(redis_client):
    stage = Staging(redis_client, "stage-i-")
    for name in ("a", "b", "c"):
        stage.put(name, name * 1000, trigger_ttl=60)
    assert len(stage.take(10, max_bytes=2500)) == 2
    assert len(stage.take(10, max_bytes=10)) == 1  # an entry larger than the budget goes alone


def test_a_large_batch_is_read_a_few_megabytes_per_command(redis_client):
    stage = Staging(redis_client, "stage-l-")
    for i in range(6):
        stage.put(f"pdf{i}", "p" * 3 * 2**20, trigger_ttl=60)
    reads = redis_client.info("commandstats").get("cmdstat_hmget", {}).get("calls", 0)
    batch = stage.take(10, max_bytes=64 * 2**20)
    reads = redis_client.info("commandstats")["cmdstat_hmget"]["calls"] - reads
    # One HMGET of a 64 MB batch held Redis for 80 ms; a piece is at most READ_PIECE_BYTES (4 MB).
    assert (len(batch), reads) == (6, 6)
    stage.remove(batch)


def test_entries_staged_before_their_crawls_were_listed_are_still_taken(redis_client):
    stage = Staging(redis_client, "stage-j-")
    redis_client.hset(stage.key, "old", json.dumps({"kind": "failure", "url": "https://example.org/old"}))
    assert [taken.key for taken in stage.take(10)] == ["old"]
    assert stage.bytes() > 0


def test_a_url_staged_by_two_crawls_finishes_in_both(redis_client, settings, es):
    from workers.index.indices import IndexNames, ensure_indices
    from workers.index.tasks import BatchWriter
    from workers.records import Failure, FailureEntry

    ensure_indices(es, IndexNames(settings.index_prefix), settings.schemas_dir)
    url = "https://example.org/two-crawls"
    trackers = [CrawlTracker(redis_client, settings.index_prefix, crawl) for crawl in ("crawl-a", "crawl-b")]
    stage = Staging(redis_client, settings.index_prefix)
    for tracker in trackers:  # crawl B's fetch of the URL replaces crawl A's staged entry
        tracker.add([url])
        entry = FailureEntry(url, tracker.crawl_id, None, Failure(url, "fetch", "http_500", "server error",
                                                                  crawl_id=tracker.crawl_id))
        stage.put(entry.key, entry.to_json(), trigger_ttl=60, crawl_id=tracker.crawl_id)
    BatchWriter(es, settings, stage).write(stage.take(10), careful=False)
    assert [tracker.states([url])[url] for tracker in trackers] == [FAILED, FAILED]


def test_removing_a_batch_sends_its_versions_not_its_entries(redis_client):
    stage = Staging(redis_client, "stage-k-")
    for i in range(50):
        stage.put(f"big{i}", "p" * 100_000, trigger_ttl=60)
    batch = stage.take(50)
    before = redis_client.info("stats")["total_net_input_bytes"]
    assert stage.remove(batch) == 50
    # Comparing the entries themselves sent 5 MB to Redis and held it for 200 ms at 500 pages.
    assert redis_client.info("stats")["total_net_input_bytes"] - before < 10_000
