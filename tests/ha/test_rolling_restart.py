"""A rolling restart, as docs/deploy.md tells an operator to upgrade: two workers, each stopped
(SIGTERM, a warm shutdown) mid-crawl and replaced by a new one, one after the other. Every page
is indexed once, nothing fails, no beat."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from tests.faults.helpers import await_condition, scenario_on, summary

pytestmark = [pytest.mark.ha, pytest.mark.services, pytest.mark.slow]

PAGES = 300


@pytest.fixture
def scenario(ha_redis, session_services):
    elasticsearch = SimpleNamespace(url=session_services["urls"]["ELASTICSEARCH_URL"])
    with scenario_on(ha_redis, elasticsearch, {}, session_services["urls"]["REDIS_URL"]) as case:
        yield case


def test_workers_restarted_one_at_a_time_mid_crawl_lose_no_page(scenario):
    old = [scenario.start_worker(concurrency=2), scenario.start_worker(concurrency=2)]
    urls = scenario.serve(PAGES)
    scenario.crawl(urls)
    started = time.monotonic()
    for step, worker in enumerate(old, start=1):
        await_condition(lambda s=step: scenario.indexed() >= PAGES * 0.3 * s, 120, f"{30 * step}% indexed",
                        interval=0.05)
        worker.stop()
        scenario.start_worker(concurrency=2)
    scenario.await_indexed(PAGES, 300, "every page indexed after the rolling restart")
    assert scenario.indexed() == PAGES and scenario.distinct_urls() == PAGES
    assert scenario.failures() == []
    summary(f"rolling restart of 2 workers mid-crawl (each SIGTERMed and replaced in turn): {PAGES}/{PAGES} "
            f"indexed once, 0 failures, {time.monotonic() - started:.1f}s from the crawl's start, no beat")
