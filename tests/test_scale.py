"""A crawl of 200,000 queued URLs on a real Redis: recovery and progress do bounded work per command.

The messages are Celery's own (one sent for real, the rest its copies with another URL), so the
reconciliation parses what it parses in production. The million-URL version, with its timings,
is benchmarks/scale.py.
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from dataclasses import replace

import pytest

from tests.helpers import cli
from workers.app import app
from workers.crawl.progress import watch
from workers.crawl.reconcile import PAGE, Reconciler
from workers.heartbeats import BROKER_KEYS
from workers.housekeeping import Sweeper
from workers.task_names import FETCH_PAGE
from workers.tracking.progress import INDEXED, QUEUED, CrawlTracker

URLS = 200_000
LOST = 3
# Redis's own measure of one command (SLOWLOG, microseconds): far above a page of work (about a
# millisecond), far below reading a whole queue or crawl of this size.
SLOW_US = 50_000


def message_for(template: dict, url: str, crawl_id: str) -> str:
    """`template`, a fetch_page message as Celery wrote it, for another URL."""
    body = [[url, crawl_id], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]
    return json.dumps({**template, "body": base64.b64encode(json.dumps(body).encode()).decode()})


@pytest.fixture(scope="module")
def big_crawl(redis_client, settings):
    """A crawl of URLS queued URLs with a message each in a queue of its own, but LOST of them."""
    crawl_id, queue = f"big-{uuid.uuid4().hex[:6]}", f"scale-fetch-{uuid.uuid4().hex[:6]}"
    urls = [f"https://reports.example.org/country/{i:07d}/trafficking-in-persons-report" for i in range(URLS)]
    tracker = CrawlTracker(redis_client, settings.index_prefix, crawl_id)
    assert len(tracker.add(urls)) == URLS
    app.send_task(FETCH_PAGE, args=(urls[0], crawl_id), queue=queue)
    template = json.loads(redis_client.lpop(queue))
    lost = set(urls[1000:1000 + LOST])
    pipe = redis_client.pipeline(transaction=False)
    for i, url in enumerate(urls):
        if url not in lost:
            pipe.lpush(queue, message_for(template, url, crawl_id))
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()
    yield tracker, queue, lost
    redis_client.delete(queue, tracker.key, tracker.counts_key)


@pytest.fixture
def slowlog(redis_client):
    """Redis's slow log, emptied and set to log every command over SLOW_US, for one test."""
    before = redis_client.config_get("slowlog-log-slower-than")["slowlog-log-slower-than"]
    redis_client.config_set("slowlog-log-slower-than", SLOW_US)
    redis_client.slowlog_reset()
    yield lambda: [(entry["duration"], entry["command"][:80]) for entry in redis_client.slowlog_get(128)]
    redis_client.config_set("slowlog-log-slower-than", before)


def test_reconciliation_of_a_large_crawl_finds_the_lost_pages_a_page_of_work_per_command(
        big_crawl, redis_client, settings, slowlog):
    tracker, queue, lost = big_crawl
    reconciler = Reconciler(redis_client, settings.index_prefix, queue)
    steps, sent = 0, []
    for found in reconciler.lost_fetches():
        steps += 1
        sent += found
    assert sorted(sent) == sorted((url, tracker.crawl_id) for url in lost)
    # Two reads of the crawl and one of the queue, a page per step: work in bounded steps.
    assert steps >= 3 * URLS // PAGE
    assert slowlog() == []


def test_progress_and_status_of_a_large_crawl_read_a_few_fields(big_crawl, redis_client, test_env, slowlog):
    tracker, _queue, _lost = big_crawl
    tracker.mark(f"https://reports.example.org/country/{0:07d}/trafficking-in-persons-report", INDEXED)
    redis_client.config_resetstat()
    snap = watch(tracker, timeout=0, echo=lambda _line: None)
    assert (snap.total, snap.counts[QUEUED], snap.counts[INDEXED]) == (URLS, URLS - 1, 1)
    result = cli(test_env, "status")
    assert result.returncode == 0, result.stderr
    commands = redis_client.info("commandstats")
    assert not {"cmdstat_hvals", "cmdstat_hkeys", "cmdstat_lrange", "cmdstat_smembers", "cmdstat_keys"} & set(commands)
    assert slowlog() == []


def test_a_reconciliation_whose_worker_died_is_taken_over_and_a_new_request_waits_for_the_next(
        redis_client, settings):
    reconciler = Reconciler(redis_client, f"lease-{uuid.uuid4().hex[:6]}-", "unused")
    reconciler.request(due=100.0)
    assert reconciler.claim(now=100.0, node="a", lease=0.05)
    assert not reconciler.claim(now=100.0, node="b", lease=30)  # a holds it
    reconciler.request(due=150.0)  # a worker died during a's run: another run is due after it
    gone = threading.Event()
    while not gone.wait(0.01):  # a dies: its lease runs out
        if not redis_client.exists(reconciler.keys.reconcile_lease):
            gone.set()
    assert not reconciler.renew(node="a")
    assert reconciler.claim(now=100.0, node="b", lease=30)  # b takes a's run over from the start
    reconciler.end(node="b")
    assert not reconciler.claim(now=149.0, node="b")
    assert reconciler.claim(now=150.0, node="b")  # the request made during the run


def test_heartbeat_goes_on_while_a_sweep_is_stuck(redis_client, test_env):
    from tests.helpers import point_app_at

    point_app_at(test_env["REDIS_URL"])
    node = f"stuck-{uuid.uuid4().hex[:6]}@test"
    sweeper = Sweeper(app, node, lambda: set(), redis_client)
    release = threading.Event()
    sweeper.sweep = lambda qos: release.wait(60)  # a reconciliation step that never ends
    sweeper.settings = replace(sweeper.settings, housekeeping_interval=0.05)
    threads = [threading.Thread(target=sweeper.beat_forever, daemon=True),
               threading.Thread(target=sweeper.sweep_forever, daemon=True)]
    for thread in threads:
        thread.start()
    try:
        beats = set()
        for _poll in range(1000):  # at most about 10 s
            if len(beats) >= 3:
                break
            release.wait(0.01)
            if (score := redis_client.zscore(BROKER_KEYS.consumers, node)) is not None:
                beats.add(score)
        assert len(beats) >= 3
    finally:
        sweeper.stopped.set()
        release.set()
        for thread in threads:
            thread.join(5)
        redis_client.zrem(BROKER_KEYS.consumers, node)
