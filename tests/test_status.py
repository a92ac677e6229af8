"""`report-ingest status` and the queries behind it, each owned by the module whose data it reads."""

from __future__ import annotations

import time
import uuid

import pytest

from tests.helpers import cli
from workers.crawl.parked import Parked, ParkedPage
from workers.heartbeats import BROKER_KEYS, live_workers
from workers.index.failures import FailedPage, failed_pages, recent_failures
from workers.index.indices import document_counts, ensure_indices
from workers.queues import queue_depths
from workers.records import Failure


@pytest.fixture
def heartbeats(redis_client):
    """Two worker nodes of this test: one that beat just now, one that stopped long ago."""
    now = time.time()
    fresh, stale = f"status-{uuid.uuid4().hex[:6]}@fresh", f"status-{uuid.uuid4().hex[:6]}@stale"
    redis_client.zadd(BROKER_KEYS.consumers, {fresh: now, stale: now - 3600})
    yield fresh, stale, now
    redis_client.zrem(BROKER_KEYS.consumers, fresh, stale)


def test_live_workers_are_those_whose_housekeeping_beat_within_the_grace(redis_client, heartbeats):
    fresh, stale, now = heartbeats
    live = live_workers(redis_client, grace=30, now=now)
    assert fresh in live and stale not in live
    assert stale in live_workers(redis_client, grace=7200, now=now)


def test_queue_depths_name_the_crawl_queues(redis_client):
    depths = queue_depths(redis_client)
    assert set(depths) == {"fetch", "index"} and all(isinstance(n, int) and n >= 0 for n in depths.values())


def test_failure_queries_read_nothing_before_the_first_crawl(es, names):
    assert recent_failures(es, names) == [] and list(failed_pages(es, names)) == []
    assert document_counts(es, names) == {names.reports: None, names.raw_pages: None, names.failures: None}


def test_status_shows_each_number_from_its_owner(es, names, settings, redis_client, test_env, heartbeats):
    ensure_indices(es, names, settings.schemas_dir)
    for i, failed_at in enumerate(["2024-01-01T00:00:00+00:00", "2024-03-01T00:00:00+00:00",
                                   "2024-02-01T00:00:00+00:00"]):
        record = Failure(f"http://127.0.0.1:9/r{i}", "fetch", "timeout", "no answer", failed_at=failed_at)
        es.index(index=names.failures, id=str(i), document=record.to_source())
    es.indices.refresh(index=names.failures)
    Parked(redis_client, settings.index_prefix).park(ParkedPage("http://127.0.0.1:9/later"), 600)

    assert [r.url for r in recent_failures(es, names, 2)] == ["http://127.0.0.1:9/r1", "http://127.0.0.1:9/r2"]
    assert sorted(failed_pages(es, names), key=lambda page: page.url) == [
        FailedPage(f"http://127.0.0.1:9/r{i}") for i in range(3)]
    assert document_counts(es, names) == {names.reports: 0, names.raw_pages: 0, names.failures: 3}

    result = cli(test_env, "status")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "  parked     1" in lines
    [workers] = [line for line in lines if line.startswith("live workers: ")]
    assert int(workers.removeprefix("live workers: ")) >= 1  # this test's fresh heartbeat, and any real worker
    assert f"  {names.failures:20} 3" in lines and f"  {names.reports:20} 0" in lines
    assert lines.index("recent failures:") < lines.index(f"  2024-03-01T00:00:00+00:00 {'timeout':16} "
                                                         "http://127.0.0.1:9/r1")
