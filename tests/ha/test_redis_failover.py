"""A Redis master killed mid-crawl, with one replica and three Sentinels: the crawl ends with every
page indexed once, without beat and without a recrawl.

Redis replicates asynchronously, so a failover may lose writes the old master acknowledged. The
scenario makes sure it does: the replica is cut off (pointed at a port where nothing listens: a
frozen replica would still read what the kernel had buffered for it), and the master is killed
only once it acknowledged writes the replica never got. Servers and Sentinels ask for passwords,
and run once in plain text and once over TLS (tests/ha/conftest.py).
"""

from __future__ import annotations

import time

import pytest

from devtools.cluster import kill
from devtools.services import free_port
from tests.faults.helpers import await_condition, summary
from workers.crawl.progress import OPEN_STATES, CrawlTracker

pytestmark = [pytest.mark.ha, pytest.mark.services, pytest.mark.slow]

PAGES = 200


def test_a_master_killed_mid_crawl_fails_over_and_every_page_is_indexed_once(sentinel_scenario):
    scenario = sentinel_scenario
    group = scenario.redis
    old_master = group.master()
    (replica,) = [s for s in group.servers if s is not old_master]

    def replication_offset(server) -> int:
        info = group.admin(server).info("replication")
        return int(info.get("master_repl_offset") or info.get("slave_repl_offset") or 0)

    scenario.start_worker(concurrency=2)
    urls = scenario.serve(PAGES)
    crawl_id = scenario.crawl(urls)
    await_condition(lambda: scenario.indexed() >= PAGES * 0.3, 120, "30% indexed", interval=0.05)

    group.admin(replica).replicaof("127.0.0.1", free_port())
    cut_at = replication_offset(replica)
    await_condition(lambda: replication_offset(old_master) > cut_at + 10_000, 30,
                    "the master acknowledged writes the replica never got")
    lost = replication_offset(old_master) - cut_at  # at least: the master may take more before it dies
    kill(old_master)
    killed = time.monotonic()

    await_condition(lambda: group.master() is replica, 60, "every Sentinel hands out the promoted replica")
    promoted = time.monotonic() - killed
    tracker = CrawlTracker(scenario.client(), scenario.settings.index_prefix, crawl_id)

    def crawl_finished() -> bool:
        return not OPEN_STATES.intersection(tracker.counts()) and scenario.indexed() >= PAGES

    await_condition(crawl_finished, 300, "every URL of the crawl indexed after the failover", interval=0.5)
    recovered = time.monotonic() - killed
    assert scenario.indexed() == PAGES and scenario.distinct_urls() == PAGES
    assert scenario.failures() == []
    assert all(worker.process.poll() is None for worker in scenario.workers), "a worker died in the failover"
    summary(f"Redis master SIGKILLed mid-crawl (1 replica, 3 Sentinels, passwords{', TLS' if group.tls else ''}; "
            f"at least {lost} bytes of writes the master had acknowledged lost with it): replica promoted "
            f"{promoted:.1f}s after the kill, crawl finished with {PAGES}/{PAGES} indexed once {recovered:.1f}s "
            f"after it, 0 failures, no beat, no recrawl")
