"""Workers killed mid-crawl: nothing lost, nothing indexed twice, no spurious failures."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.faults.helpers import await_condition, summary
from tests.helpers import pool_children

PAGES = 200


def test_pool_process_killed_three_times_mid_crawl(scenario):
    worker = scenario.start_worker(concurrency=2)
    urls = scenario.serve(PAGES)
    started = time.monotonic()
    scenario.crawl(urls)
    kills = 0
    for share in (0.2, 0.4, 0.6):
        await_condition(lambda: scenario.indexed() >= PAGES * share, 120, f"{share:.0%} indexed", interval=0.05)
        victims = pool_children(worker.process.pid)
        assert victims, "the worker has no pool process to kill"
        os.kill(victims[0], signal.SIGKILL)
        kills += 1
    scenario.await_indexed(PAGES, 180)
    assert scenario.indexed() == PAGES and scenario.distinct_urls() == PAGES
    assert scenario.failures() == []
    assert worker.process.poll() is None and worker.ping()
    summary(f"pool process SIGKILL x{kills}: {PAGES}/{PAGES} pages indexed once, 0 failures, "
            f"{time.monotonic() - started:.1f}s")


def test_threads_worker_process_killed_mid_crawl(scenario):
    """The default layout: one of its threads-pool worker processes SIGKILLed with tasks in flight.
    Its supervisor starts it again; housekeeping requeues what it held after ORPHAN_GRACE."""
    worker = scenario.start_worker(layout=(2, 8))
    urls = scenario.serve(PAGES)
    started = time.monotonic()
    scenario.crawl(urls)
    await_condition(lambda: scenario.indexed() >= PAGES * 0.3, 120, "30% indexed", interval=0.05)
    victims = pool_children(worker.process.pid)
    assert len(victims) == 2, victims  # the supervisor's two workers
    os.kill(victims[0], signal.SIGKILL)
    scenario.await_indexed(PAGES, 180)
    assert scenario.indexed() == PAGES and scenario.distinct_urls() == PAGES
    assert scenario.failures() == []
    await_condition(lambda: len(worker.ping()) == 2, 60, "the supervisor started the killed worker again")
    assert worker.process.poll() is None
    summary(f"threads-pool worker process SIGKILL: {PAGES}/{PAGES} pages indexed once, 0 failures, "
            f"{time.monotonic() - started:.1f}s")


@pytest.mark.slow
def test_whole_worker_killed_and_replaced(scenario):
    first = scenario.start_worker(concurrency=2)
    urls = scenario.serve(PAGES)
    scenario.crawl(urls)
    await_condition(lambda: scenario.indexed() >= PAGES * 0.3, 120, "30% indexed", interval=0.05)
    os.killpg(first.process.pid, signal.SIGKILL)
    first.process.wait(30)
    killed_at = time.monotonic()
    client = scenario.client()
    held = client.hlen("unacked")  # what the dead worker held: delivered, never acknowledged
    scenario.start_worker(concurrency=2)
    # The new worker sees the dead one's messages as orphans once its heartbeat is ORPHAN_GRACE old.
    await_condition(lambda: client.hlen("unacked") == 0 or scenario.indexed() == PAGES, 120,
                    "the dead worker's messages requeued")
    recovered_after = time.monotonic() - killed_at
    scenario.await_indexed(PAGES, 180)
    assert scenario.indexed() == PAGES and scenario.distinct_urls() == PAGES
    assert scenario.failures() == []
    summary(f"whole worker SIGKILL: {held} unacknowledged task(s) of the dead worker requeued "
            f"{recovered_after:.1f}s after the kill (ORPHAN_GRACE {scenario.settings.orphan_grace:.0f}s; "
            f"the broker alone would wait VISIBILITY_TIMEOUT {scenario.settings.visibility_timeout}s); "
            f"{PAGES}/{PAGES} indexed, 0 failures")
