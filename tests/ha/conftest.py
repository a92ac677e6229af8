"""The `ha` scenarios' services: a Redis master with a replica and three Sentinels, and an
Elasticsearch cluster of three small nodes (devtools/cluster.py), each for its module.

They cost minutes, so the default run leaves them out (pyproject's addopts); run them with
`pytest -m ha tests/ha` (docs/reliability.md has the figures of the last run).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from devtools import cluster, services
from tests.helpers import ES_NODE_SETTINGS


@pytest.fixture(scope="module", params=["plain", "tls"])
def redis_group(request):
    """With TLS, clients reach the servers and the Sentinels over TLS only (REDIS_SENTINEL_TLS)."""
    group = cluster.start_redis_group(Path(tempfile.mkdtemp(prefix="ri-ha-redis-")), tls=request.param == "tls")
    yield group
    group.stop()


@pytest.fixture(scope="module")
def es_cluster():
    nodes = cluster.start_elasticsearch_cluster(Path(tempfile.mkdtemp(prefix="ri-ha-es-")),
                                                node_settings=ES_NODE_SETTINGS)
    yield nodes
    nodes.stop()


@pytest.fixture(scope="module")
def ha_redis():
    """A Redis of the module's own: a scenario empties it."""
    server = services.start_redis(Path(tempfile.mkdtemp(prefix="ri-ha-redis-")), appendonly=True)
    yield server
    server.stop()
