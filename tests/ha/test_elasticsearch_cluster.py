"""One Elasticsearch node of three killed mid-crawl (the elected master, so the cluster elects
another too), then another mid-rebuild (the one holding the new index's primary): every page is
indexed once, the rebuild swaps and verifies, nothing is lost, no beat.

ELASTICSEARCH_URL lists the three nodes, as an operator would; the client goes on with the others
while one is dead. Replicas are the default ("auto": one, on three data nodes).
"""

from __future__ import annotations

import time

import pytest
from elasticsearch import ApiError

from tests.faults.helpers import await_condition, scenario_on, summary
from tests.helpers import cli
from tests.reindexing import live, rebuild_running, start_reindex

pytestmark = [pytest.mark.ha, pytest.mark.services, pytest.mark.slow]

PAGES = 200


@pytest.fixture
def scenario(ha_redis, es_cluster, session_services):
    with scenario_on(ha_redis, es_cluster, {}, session_services["urls"]["REDIS_URL"]) as case:
        yield case


def node_number(name: str) -> int:
    return int(name.rsplit("-", 1)[1])


def master(es) -> str | None:
    """The elected master's name; None while there is none (`_cat/master` answers 500 or 503 then)."""
    try:
        return es.cat.master(format="json")[0]["node"]
    except ApiError:
        return None


def green(es) -> bool:
    # A wait that times out answers 408, with the health in the body.
    return es.options(ignore_status=408).cluster.health(wait_for_status="green", timeout="2s")["status"] == "green"


def test_a_node_killed_mid_crawl_and_another_mid_rebuild_lose_nothing(scenario):
    es, cluster = scenario.es(), scenario.elasticsearch
    setup = cli(scenario.env, "setup")
    assert setup.returncode == 0 and "replicas: auto" in setup.stdout, setup.stderr
    scenario.start_worker(concurrency=2)
    await_condition(lambda: green(es), 120, "the indices' replicas assigned")
    assert {int(es.indices.get_settings(index=scenario.names.reports)[i]["settings"]["index"]["number_of_replicas"])
            for i in es.indices.get_alias(name=scenario.names.reports)} == {1}
    urls = scenario.serve(PAGES)
    scenario.crawl(urls)
    await_condition(lambda: scenario.indexed() >= PAGES * 0.3, 120, "30% indexed", interval=0.05)

    elected_before = master(es)
    cluster.kill(node_number(elected_before))
    killed = time.monotonic()
    await_condition(lambda: master(es) not in (None, elected_before), 60, "a new master")
    elected = time.monotonic() - killed
    scenario.await_indexed(PAGES, 300, "every page indexed with a node down")
    crawl_recovered = time.monotonic() - killed
    assert scenario.indexed() == PAGES and scenario.distinct_urls() == PAGES
    assert scenario.failures() == []
    cluster.restart(node_number(elected_before))
    await_condition(lambda: green(es), 180, "green again with the node back")

    old = live(es, scenario.names)
    rebuild = start_reindex(scenario.env)
    await_condition(rebuild_running(scenario.client(), scenario.names), 120, "the rebuild started")
    (target,) = [i for i in es.indices.get(index=f"{scenario.names.reports}-v*") if i != old]
    (primary,) = [s["node"] for s in es.cat.shards(index=target, format="json") if s["prirep"] == "p"]
    cluster.kill(node_number(primary))
    killed = time.monotonic()
    try:
        _out, err = rebuild.communicate(timeout=300)
    finally:
        rebuild.kill()
    rebuild_recovered = time.monotonic() - killed
    assert rebuild.returncode == 0, err
    assert live(es, scenario.names) == target
    assert scenario.indexed() == PAGES and scenario.distinct_urls() == PAGES
    assert scenario.failures() == []
    cluster.restart(node_number(primary))
    summary(f"Elasticsearch, 3 nodes, replicas 1: the master killed mid-crawl, a new one elected {elected:.1f}s "
            f"after, {PAGES}/{PAGES} indexed once {crawl_recovered:.1f}s after the kill, 0 failures; the node "
            f"holding the rebuild's new primary killed mid-rebuild, the rebuild swapped and verified "
            f"{rebuild_recovered:.1f}s after the kill, {PAGES}/{PAGES} served, no beat")
