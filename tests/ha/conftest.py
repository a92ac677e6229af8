"""The `ha` scenarios' services: a Redis master with a replica and three Sentinels, and an
Elasticsearch cluster of three small nodes (devtools/cluster.py), each for its module.

They cost minutes, so the default run leaves them out (pyproject's addopts); run them with
`pytest -m ha tests/ha` (docs/reliability.md has the figures of the last run).
"""

from __future__ import annotations

import signal
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import TypeVar

import pytest

from devtools import cluster, services
from tests.faults.helpers import scenario_on
from tests.helpers import ES_NODE_SETTINGS

Started = TypeVar("Started", cluster.RedisGroup, cluster.ElasticsearchCluster, services.Service)


def running(start: Callable[[], Started]) -> Iterator[Started]:
    """What `start` starts, for a fixture to yield, stopped however the run ends. The services run
    in sessions of their own, so nothing else ends them; and on SIGTERM (a `timeout`, a cancelled
    job) Python dies at once, without finalizers: here SIGTERM ends the run as Ctrl-C does."""

    def interrupt(_signum, _frame):
        raise KeyboardInterrupt("SIGTERM")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        started = start()
        try:
            yield started
        finally:
            started.stop()
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture(scope="module", params=["plain", "tls"])
def redis_group(request):
    """With TLS, clients reach the servers and the Sentinels over TLS only (REDIS_SENTINEL_TLS)."""
    yield from running(lambda: cluster.start_redis_group(Path(tempfile.mkdtemp(prefix="ri-ha-redis-")),
                                                         tls=request.param == "tls"))


@pytest.fixture
def sentinel_scenario(redis_group, session_services):
    """A fault scenario on the Sentinel group, with the session's Elasticsearch. The servers and the
    Sentinels ask for passwords (each their own), as in a deployment: REDIS_URL carries the
    master's, REDIS_SENTINEL_PASSWORD the Sentinels'."""
    elasticsearch = SimpleNamespace(url=session_services["urls"]["ELASTICSEARCH_URL"])
    extra = {"REDIS_SENTINEL_MASTER": redis_group.master_name, "REDIS_SENTINEL_PASSWORD": redis_group.sentinel_password}
    if redis_group.tls:
        extra |= {"REDIS_SENTINEL_TLS": "true", "REDIS_CA_CERTS": str(redis_group.tls.ca)}
    with scenario_on(redis_group, elasticsearch, extra, session_services["urls"]["REDIS_URL"]) as case:
        yield case


@pytest.fixture(scope="module")
def es_cluster():
    yield from running(lambda: cluster.start_elasticsearch_cluster(Path(tempfile.mkdtemp(prefix="ri-ha-es-")),
                                                                   node_settings=ES_NODE_SETTINGS))


@pytest.fixture(scope="module")
def ha_redis():
    """A Redis of the module's own: a scenario empties it."""
    yield from running(lambda: services.start_redis(Path(tempfile.mkdtemp(prefix="ri-ha-redis-")), appendonly=True))
