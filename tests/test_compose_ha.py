"""docker-compose.ha.yml over docker-compose.yml (Redis with a replica and three Sentinels,
Elasticsearch as three nodes), checked without a Docker engine, as tests/test_compose.py checks
the single-machine file: merged as compose merges them, then every rule of both."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from tests.test_compose import (COMPOSE_FILE, ENV_EXAMPLE, environment, healthcheck_gaps, redis_memory_problems,
                                secret_problems, services, undocumented_variables, unpinned_images)
from workers.es_nodes import elasticsearch_nodes
from workers.sentinel import Sentinels
from workers.settings import REPO_ROOT

HA_FILE = REPO_ROOT / "docker-compose.ha.yml"
SENTINEL_CONF = REPO_ROOT / "deploy" / "redis" / "sentinel.conf"
APP_SERVICES = ("setup", "worker", "beat", "flower")


def merged(base: Any, override: Any) -> Any:
    """Compose's merge of an override file: mappings merge key by key, anything else is replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        return {key: merged(base[key], value) if key in base else value for key, value in override.items()} | {
            key: value for key, value in base.items() if key not in override}
    return override


def monitored(sentinel_conf: str) -> tuple[str, str, int, int]:
    """(master name, host, port, quorum) from a Sentinel config's `sentinel monitor` line."""
    name, host, port, quorum = re.search(r"^sentinel monitor (\S+) (\S+) (\d+) (\d+)$", sentinel_conf, re.M).groups()
    return name, host, int(port), int(quorum)


def sentinel_services(compose: dict[str, Any]) -> list[str]:
    return [name for name, s in services(compose).items() if "redis-sentinel" in " ".join(s.get("command") or [])]


def ha_problems(compose: dict[str, Any], sentinel_conf: str) -> list[str]:
    """What would keep the shape from surviving the loss of one Redis or one Elasticsearch node."""
    problems = []
    all_services = services(compose)
    nodes = {name: environment(s) for name, s in all_services.items() if "cluster.name" in environment(s)}
    if len(nodes) < 3:
        problems.append(f"{len(nodes)} Elasticsearch node(s): a cluster that loses one keeps a majority from 3")
    for name, env in nodes.items():
        if env.get("discovery.type") == "single-node":
            problems.append(f"{name}: discovery.type is single-node")
        if set(env.get("cluster.initial_master_nodes", "").split(",")) != {e["node.name"] for e in nodes.values()}:
            problems.append(f"{name}: cluster.initial_master_nodes does not name every node")
        if set(env.get("discovery.seed_hosts", "").split(",")) != set(nodes):
            problems.append(f"{name}: discovery.seed_hosts does not list every node")
    data = [v for s in nodes for v in all_services[s].get("volumes", []) if v.endswith("/usr/share/elasticsearch/data")]
    if len(set(data)) != len(nodes):
        problems.append("the Elasticsearch nodes do not each have a data volume of their own")
    master_name, master_host, master_port, quorum = monitored(sentinel_conf)
    sentinels = sentinel_services(compose)
    if len(sentinels) < 3 or quorum <= len(sentinels) // 2:
        problems.append(f"{len(sentinels)} Sentinel(s) with quorum {quorum}: 3 or more, and a majority to fail over")
    replicas = [name for name, s in all_services.items()
                if f"--replicaof {master_host} {master_port} " in " ".join(s.get("command") or []) + " "]
    if not replicas:
        problems.append(f"no Redis replica of {master_host}:{master_port}")
    for name in APP_SERVICES:
        env = environment(all_services[name])
        named = Sentinels.parse(env.get("REDIS_URL", ""))
        if named is None or {host for host, _ in named.hosts} != set(sentinels):
            problems.append(f"{name}: REDIS_URL does not name every Sentinel")
        if env.get("REDIS_SENTINEL_MASTER") != master_name:
            problems.append(f"{name}: REDIS_SENTINEL_MASTER is not {master_name}, the name the Sentinels watch")
        listed = {re.sub(r"^https?://|:\d+$", "", n) for n in elasticsearch_nodes(env.get("ELASTICSEARCH_URL", ""))}
        if listed != set(nodes):
            problems.append(f"{name}: ELASTICSEARCH_URL does not list every node")
    return problems


@pytest.fixture(scope="module")
def ha_text() -> str:
    return HA_FILE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def ha_compose(ha_text) -> dict[str, Any]:
    return merged(yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8")), yaml.safe_load(ha_text))


def test_the_ha_override_survives_the_loss_of_one_redis_or_one_elasticsearch_node(ha_compose) -> None:
    assert ha_problems(ha_compose, SENTINEL_CONF.read_text()) == []


def test_the_ha_override_keeps_every_rule_of_the_single_machine_file(ha_compose, ha_text) -> None:
    assert unpinned_images(ha_compose) == []
    assert healthcheck_gaps(ha_compose) == []
    assert secret_problems(ha_compose, ha_text) == []
    # The Sentinels hold no data: the memory rule is for the Redis servers, master and replica.
    sentinels = sentinel_services(ha_compose)
    servers = {**ha_compose, "services": {n: s for n, s in services(ha_compose).items() if n not in sentinels}}
    assert redis_memory_problems(servers) == []
    assert undocumented_variables(ha_text, ENV_EXAMPLE.read_text()) == set()


def test_the_ha_check_rejects_a_single_node_and_a_redis_url_without_sentinels(ha_compose) -> None:
    bad = merged(ha_compose, {"services": {"es03": {"environment": {"discovery.type": "single-node"}},
                                           "worker": {"environment": {"REDIS_URL": "redis://redis:6379/0"}}}})
    del bad["services"]["redis-replica"]
    conf = SENTINEL_CONF.read_text().replace("report-ingest redis 6379 2", "report-ingest redis 6379 1")
    assert ha_problems(bad, conf) == [
        "es03: discovery.type is single-node",
        "3 Sentinel(s) with quorum 1: 3 or more, and a majority to fail over",
        "no Redis replica of redis:6379",
        "worker: REDIS_URL does not name every Sentinel",
    ]
