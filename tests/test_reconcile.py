"""Finding the crawl URLs whose fetch message is nowhere, on a real Redis with real Celery messages."""

import json
import os
import signal
import uuid

import pytest

from tests.faults.helpers import await_condition
from tests.helpers import Worker
from workers.app import app
from workers.crawl.parked import Parked, ParkedPage
from workers.tracking.progress import INDEXED, CrawlTracker
from workers.crawl.reconcile import Reconciler, fetch_targets
from workers.heartbeats import BROKER_KEYS
from workers.keys import Keys
from workers.task_names import FETCH_PAGE, FETCH_PAGES, INDEX_PENDING
from workers.index.staging import Staging
from workers.urls import doc_id

EXTRA_ENV = {"HOUSEKEEPING_INTERVAL": "0.5"}


def test_only_queued_urls_without_any_message_are_lost(redis_client):
    namespace, queue, unacked = f"rc-{uuid.uuid4().hex[:6]}-", f"rc-queue-{uuid.uuid4().hex[:6]}", "rc-unacked"
    urls = [f"http://127.0.0.1:9/{name}" for name in ("queued", "held", "parked", "lost", "done", "other",
                                                      "batched-1", "batched-2", "failed-not-yet-indexed")]
    tracker = CrawlTracker(redis_client, namespace, "c1")
    tracker.add(urls)
    tracker.mark(urls[4], INDEXED)
    # A failure stays "queued" in its crawl until the index task writes it: its message is done.
    Staging(redis_client, namespace).put(doc_id(urls[8]), "{}", trigger_ttl=60)
    # Real messages, as Celery writes them: one waits in the queue, one a worker holds unacknowledged,
    # one is for the same URL in another crawl (so it does not count for this one).
    for url, crawl in ((urls[0], "c1"), (urls[1], "c1"), (urls[5], "c2")):
        app.send_task(FETCH_PAGE, args=(url, crawl), queue=queue)
    held = redis_client.lrange(queue, 1, 1)[0]  # LPUSH: index 1 is the second message sent
    app.send_task(FETCH_PAGES, args=(urls[6:8], "c1"), queue=queue)  # one message, two pages
    redis_client.lrem(queue, 1, held)
    redis_client.hset(unacked, "tag-1", json.dumps([json.loads(held), "", queue]))
    Parked(redis_client, namespace).park(ParkedPage(urls[2], "c1"), 600)

    reconciler = Reconciler(redis_client, namespace, queue, unacked_key=unacked)
    try:
        sent = [page for found in reconciler.lost_fetches() for page in found]
        assert sorted(sent) == sorted([(urls[3], "c1"), (urls[5], "c1")])
    finally:
        redis_client.delete(queue, unacked)


def test_a_request_is_claimed_once_and_only_when_due(redis_client):
    reconciler = Reconciler(redis_client, f"rc-{uuid.uuid4().hex[:6]}-", "unused")
    reconciler.request(due=100.0)
    reconciler.request(due=500.0)  # a pending request stands
    assert not reconciler.claim(now=99.0)
    assert reconciler.claim(now=100.0)
    assert not reconciler.claim(now=1000.0)


def test_other_tasks_are_not_fetches():
    message = {"headers": {"task": INDEX_PENDING}, "body": "", "properties": {}}
    assert fetch_targets(message) == []


def started_again(worker: Worker, test_env, redis_client) -> bool:
    """Whether `worker`, started again under its name, ran a reconciliation by its second
    housekeeping sweep (the first sweep's reconciliation ended with it: no open crawl); it is
    stopped however the wait ends, so it cannot outlive the test and take others' tasks."""
    again = Worker(test_env, layout=(1, 2), node=worker.node)
    lock = Keys(test_env["INDEX_PREFIX"]).housekeeping
    sweeps: set[str] = set()

    def swept_twice() -> bool:
        if (token := redis_client.get(lock)) and token.startswith(f"{worker.nodes[0]}:"):
            sweeps.add(token)
        return len(sweeps) >= 2

    try:
        await_condition(swept_twice, 30, "two housekeeping sweeps of the worker started again")
    finally:
        again.stop()
    return "reconciliation ended" in again.log.read_text(errors="replace")


@pytest.mark.parametrize("stopped", ["cleanly", "killed"])
def test_a_worker_stopped_cleanly_starts_again_without_a_reconciliation_and_a_killed_one_with_one(
        test_env, redis_client, stopped):
    """A killed worker may have lost a message it had just taken off the queue, so a worker started
    under its name reconciles the open crawls (a pass over all their queued URLs, minutes at a
    million). A warm shutdown loses nothing: the worker leaves, and a rolling restart costs no pass."""
    first = Worker(test_env, layout=(1, 2))  # the default layout: a threads-pool worker under a supervisor
    try:
        await_condition(lambda: redis_client.zscore(BROKER_KEYS.consumers, first.nodes[0]) is not None, 30,
                        "the worker's first heartbeat")
    finally:
        if stopped == "cleanly":
            first.stop()
        else:
            os.killpg(first.process.pid, signal.SIGKILL)
            first.process.wait(30)
    left = redis_client.zscore(BROKER_KEYS.consumers, first.nodes[0]) is None
    reconciled = started_again(first, test_env, redis_client)
    assert (left, reconciled) == ((True, False) if stopped == "cleanly" else (False, True))
