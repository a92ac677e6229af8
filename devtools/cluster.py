"""The highly available shape on one machine, for the fault scenarios (tests/ha/): a Redis master
with a replica and three Sentinels, and an Elasticsearch cluster of three small nodes, all on
loopback, built from the single services of devtools/services.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
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


@dataclass(frozen=True)
class Tls:
    """A CA and one certificate for 127.0.0.1, made with openssl, for Redis servers and Sentinels."""

    ca: Path
    cert: Path
    key: Path

    @classmethod
    def make(cls, workdir: Path) -> Tls:
        workdir.mkdir(parents=True, exist_ok=True)
        ca, ca_key, cert, key, csr = (workdir / n for n in ("ca.crt", "ca.key", "redis.crt", "redis.key", "redis.csr"))
        san = workdir / "san.cnf"
        san.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        for command in (
            ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca, "-days", "2",
             "-subj", "/CN=report-ingest test CA"],
            ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1"],
            ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert, "-days", "2",
             "-extfile", san],
        ):
            subprocess.run(["openssl", *map(str, command)], check=True, capture_output=True)
        return cls(ca, cert, key)

    def options(self, tls_port: int) -> dict[str, str]:
        """Clients on `tls_port` only over TLS; replication and Sentinels' links over TLS too."""
        return {"tls-port": str(tls_port), "tls-cert-file": str(self.cert), "tls-key-file": str(self.key),
                "tls-ca-cert-file": str(self.ca), "tls-replication": "yes", "tls-auth-clients": "no"}


@dataclass
class RedisGroup:
    """A master, its replicas and the Sentinels that watch them; `url` names the Sentinels (and the
    master's password), `sentinel_password` is the Sentinels' own. With `tls`, clients reach every
    one of them over TLS (`client_ports`); the plain ports serve the harness alone."""

    servers: list[services.Service]
    sentinels: list[services.Service]
    password: str
    sentinel_password: str
    client_ports: dict[int, int]
    tls: Tls | None = None
    master_name: str = MASTER_NAME

    def client_port(self, service: services.Service) -> int:
        return self.client_ports[port(service)]

    @property
    def url(self) -> str:
        return ";".join(f"sentinel://{':' + self.password + '@' if i == 0 else ''}127.0.0.1:{self.client_port(s)}/0"
                        for i, s in enumerate(self.sentinels))

    def admin(self, service: services.Service) -> redis.Redis:
        """A client of one Redis server of the group, whatever its role now, on its plain port."""
        return redis.Redis(port=port(service), password=self.password, socket_timeout=2)

    def master(self) -> services.Service:
        """The master as the Sentinels see it now."""
        for sentinel in self.sentinels:
            try:
                client = redis.Redis(port=port(sentinel), password=self.sentinel_password, socket_timeout=2)
                named = int(client.sentinel_get_master_addr_by_name(self.master_name)[1])
            except (redis.RedisError, TypeError):
                continue
            return next(s for s in self.servers if self.client_port(s) == named)
        raise services.ServiceError("no Sentinel answers")

    def stop(self) -> None:
        for service in [*self.sentinels, *self.servers]:
            service.stop()


def port(service: services.Service) -> int:
    return int(service.url.rsplit(":", 1)[1].split("/")[0])


def start_redis_group(workdir: Path, replicas: int = 1, sentinels: int = 3, tls: bool = False) -> RedisGroup:
    """With passwords, as a deployment has them: the servers' one, and the Sentinels' own."""
    password, sentinel_password = uuid.uuid4().hex, uuid.uuid4().hex
    certs = Tls.make(workdir / "tls") if tls else None
    client_ports: dict[int, int] = {}

    def listen(plain: int) -> dict[str, str]:
        client_ports[plain] = services.free_port() if certs else plain
        return certs.options(client_ports[plain]) if certs else {}

    master_port = services.free_port()
    master = services.start_redis(workdir / "master", master_port, appendonly=True, password=password,
                                  options=listen(master_port))
    servers = [master]
    for i in range(replicas):
        plain = services.free_port()
        servers.append(services.start_redis(workdir / f"replica-{i}", plain, appendonly=True, password=password,
                                            replica_of=client_ports[master_port], options=listen(plain)))
    watchers = []
    for i in range(sentinels):
        plain = services.free_port()
        watchers.append(services.start_sentinel(
            workdir / f"sentinel-{i}", plain, MASTER_NAME, client_ports[master_port], quorum=sentinels // 2 + 1,
            master_password=password, password=sentinel_password,
            options=listen(plain)))
    return RedisGroup(servers, watchers, password, sentinel_password, client_ports, certs)


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
