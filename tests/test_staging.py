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
