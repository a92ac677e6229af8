"""The highly available shape on one machine, for the fault scenarios (tests/ha/): a Redis master
with a replica and three Sentinels, and an Elasticsearch cluster of three small nodes, all on
loopback, built from the single services of devtools/services.py.
"""

from __future__ import annotations

import os
import signal
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import redis

from devtools import services

MASTER_NAME = "ri"
# Small heaps: three nodes share the machine with everything else.
CLUSTER_HEAP_MB = 320


def kill(service: services.Service) -> None:
    """SIGKILL, as a machine that dies: nothing is written on the way out."""
    os.killpg(service.process.pid, signal.SIGKILL)
    service.process.wait(30)


@dataclass
class RedisGroup:
    """A master, its replicas and the Sentinels that watch them; `url` names the Sentinels (and the
    master's password), `sentinel_password` is the Sentinels' own."""

    servers: list[services.Service]
    sentinels: list[services.Service]
    password: str
    sentinel_password: str
    master_name: str = MASTER_NAME

    @property
    def url(self) -> str:
        return ";".join(f"sentinel://{':' + self.password + '@' if i == 0 else ''}127.0.0.1:{port(s)}/0"
                        for i, s in enumerate(self.sentinels))

    def server_client(self, port_: int) -> redis.Redis:
        """A client of one Redis server of the group, whatever its role now."""
        return redis.Redis(port=port_, password=self.password, socket_timeout=2)

    def master_port(self) -> int:
        """The master as the Sentinels see it now."""
        for sentinel in self.sentinels:
            try:
                client = redis.Redis(port=port(sentinel), password=self.sentinel_password, socket_timeout=2)
                return int(client.sentinel_get_master_addr_by_name(self.master_name)[1])
            except (redis.RedisError, TypeError):
                continue
        raise services.ServiceError("no Sentinel answers")

    def server(self, port_: int) -> services.Service:
        return next(s for s in self.servers if port(s) == port_)

    def stop(self) -> None:
        for service in [*self.sentinels, *self.servers]:
            service.stop()


def port(service: services.Service) -> int:
    return int(service.url.rsplit(":", 1)[1].split("/")[0])


def start_redis_group(workdir: Path, replicas: int = 1, sentinels: int = 3) -> RedisGroup:
    """With passwords, as a deployment has them: the servers' one, and the Sentinels' own."""
    password, sentinel_password = uuid.uuid4().hex, uuid.uuid4().hex
    master = services.start_redis(workdir / "master", appendonly=True, password=password)
    servers = [master, *(services.start_redis(workdir / f"replica-{i}", appendonly=True, replica_of=port(master),
                                              password=password) for i in range(replicas))]
    watchers = [services.start_sentinel(workdir / f"sentinel-{i}", services.free_port(), MASTER_NAME, port(master),
                                        quorum=sentinels // 2 + 1, master_password=password,
                                        password=sentinel_password) for i in range(sentinels)]
    return RedisGroup(servers, watchers, password, sentinel_password)


@dataclass
class ElasticsearchCluster:
    """Nodes that form one cluster; `url` lists them all, as ELASTICSEARCH_URL may."""

    workdir: Path
    settings: list[dict[str, str | None]]
    nodes: list[services.Service] = field(default_factory=list)

    @property
    def url(self) -> str:
        return ",".join(node.url for node in self.nodes)

    def start(self, i: int) -> services.Service:
        http_port = int(self.nodes[i].url.rsplit(":", 1)[1]) if i < len(self.nodes) else None
        return services.start_elasticsearch(self.workdir / f"node-{i}", http_port, heap_mb=CLUSTER_HEAP_MB,
                                            echo=lambda m: None, node_settings=self.settings[i])

    def kill(self, i: int) -> None:
        kill(self.nodes[i])

    def restart(self, i: int) -> None:
        self.nodes[i] = self.start(i)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def start_elasticsearch_cluster(workdir: Path, count: int = 3, node_settings: dict[str, str] | None = None
                                ) -> ElasticsearchCluster:
    """`count` master-eligible data nodes; each waits for the cluster to form, so they start together."""
    transport = [services.free_port() for _ in range(count)]
    name = f"ri-ha-{uuid.uuid4().hex[:6]}"
    settings = [{**(node_settings or {}), "discovery.type": None, "cluster.name": name, "node.name": f"node-{i}",
                 "transport.port": str(transport[i]),
                 "discovery.seed_hosts": ",".join(f"127.0.0.1:{p}" for p in transport),
                 "cluster.initial_master_nodes": ",".join(f"node-{j}" for j in range(count))}
                for i in range(count)]
    workdir.chmod(0o755)  # the nodes' unprivileged user goes through it to its own directory
    cluster = ElasticsearchCluster(workdir, settings)
    with ThreadPoolExecutor(count) as pool:
        cluster.nodes = list(pool.map(cluster.start, range(count)))
    return cluster
