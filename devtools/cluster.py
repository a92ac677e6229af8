"""The highly available shape on one machine, for the fault scenarios (tests/ha/): a Redis master
with a replica and three Sentinels, and an Elasticsearch cluster of three small nodes, all on
loopback, built from the single services of devtools/services.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import redis

from devtools import services

MASTER_NAME = "ri"
# Small heaps: three nodes share the machine with everything else.
CLUSTER_HEAP_MB = 320
# How long a new group may take to settle (Sentinels find each other and the replica in seconds).
SETTLE_SECONDS = 60


def kill(service: services.Service) -> None:
    """SIGKILL, as a machine that dies: nothing is written on the way out."""
    os.killpg(service.process.pid, signal.SIGKILL)
    service.process.wait(30)


class Stoppable(Protocol):
    def stop(self) -> None: ...


def stop_all(started: Iterable[Stoppable]) -> None:
    """Stop every one, even when stopping one fails: the others must not outlive the run (they
    run in sessions of their own, so nothing else would end them). The first failure is raised."""
    errors = []
    for service in started:
        try:
            service.stop()
        except Exception as exc:  # noqa: BLE001 - raised below, once the rest are stopped
            errors.append(exc)
    if errors:
        raise errors[0]


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

    def _views(self) -> list[tuple[dict, list[dict]]] | None:
        """Each Sentinel's state of the master and of its replicas; None while one does not answer."""
        views = []
        for sentinel in self.sentinels:
            with redis.Redis(port=port(sentinel), password=self.sentinel_password, socket_timeout=2) as client:
                try:
                    views.append((client.sentinel_master(self.master_name), client.sentinel_slaves(self.master_name)))
                except redis.RedisError:
                    return None
        return views

    def master(self) -> services.Service | None:
        """The server every Sentinel hands out as the master now, as clients ask for it (SENTINEL
        MASTERS, which redis-py reads: a master down or in failover is no answer); None while one
        Sentinel has none to give or they disagree. GET-MASTER-ADDR-BY-NAME is no such sign: mid-
        failover it already names the promoted replica while clients still get MasterNotFoundError."""
        return self._master_in(self._views())

    def _master_in(self, views: list[tuple[dict, list[dict]]] | None) -> services.Service | None:
        if views is None or any(m["is_sdown"] or m["is_odown"] or not m["is_master"] for m, _ in views):
            return None
        named = {m["port"] for m, _ in views}
        if len(named) != 1:
            return None
        (named_port,) = named
        return next((s for s in self.servers if self.client_port(s) == named_port), None)

    def settled(self) -> bool:
        """The group as a deployment runs it: every Sentinel names the master, knows the other
        Sentinels and every replica, and every replica is in sync. Before that a client may get
        MasterNotFoundError, and a master killed may leave no replica the Sentinels would promote."""
        views = self._views()
        master = self._master_in(views)
        if master is None:
            return False
        replicas = len(self.servers) - 1
        if any(m["is_disconnected"] or m["num-other-sentinels"] != len(self.sentinels) - 1
               or m["num-slaves"] != replicas
               or any(r["is_sdown"] or r["is_disconnected"] or r.get("master-link-status") != "ok" for r in rs)
               for m, rs in views):
            return False
        for server in self.servers:
            if server is not master:
                with self.admin(server) as client:
                    try:
                        info = client.info("replication")
                    except redis.RedisError:
                        return False
                if info.get("master_link_status") != "up" or info.get("master_sync_in_progress"):
                    return False
        return True

    def await_settled(self) -> None:
        def died() -> str | None:
            dead = [s.workdir.name for s in [*self.servers, *self.sentinels] if s.process.poll() is not None]
            return f"{', '.join(dead)} exited" if dead else None

        services.wait_for(self.settled, deadline=SETTLE_SECONDS, alive=died, what="the Sentinel group settling")

    def stop(self) -> None:
        stop_all([*self.sentinels, *self.servers])


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

    group = RedisGroup([], [], password, sentinel_password, client_ports, certs)
    try:
        master_port = services.free_port()
        group.servers.append(services.start_redis(workdir / "master", master_port, appendonly=True,
                                                  password=password, options=listen(master_port)))
        for i in range(replicas):
            plain = services.free_port()
            group.servers.append(services.start_redis(
                workdir / f"replica-{i}", plain, appendonly=True, password=password,
                replica_of=client_ports[master_port], options=listen(plain)))
        for i in range(sentinels):
            plain = services.free_port()
            group.sentinels.append(services.start_sentinel(
                workdir / f"sentinel-{i}", plain, MASTER_NAME, client_ports[master_port],
                quorum=sentinels // 2 + 1, master_password=password, password=sentinel_password,
                options=listen(plain)))
        group.await_settled()
    except BaseException:
        # A server that failed to start (a free port taken meanwhile by another run, say) must not
        # leave the ones already running behind: the caller never gets the group to stop.
        group.stop()
        raise
    return group


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
        stop_all(self.nodes)


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
        starting = [pool.submit(cluster.start, i) for i in range(count)]
        try:
            cluster.nodes = [f.result() for f in starting]
        except BaseException:
            # Two nodes of three elect a master without the third: they would run on, unstopped.
            wait(starting)
            cluster.nodes = [f.result() for f in starting if f.exception() is None]
            cluster.stop()
            raise
    return cluster
