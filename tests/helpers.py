"""Helpers shared by test modules: import them from here (fixtures stay in conftest.py, which
pytest loads by itself and tests never import)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import kombu.pools
from elasticsearch import Elasticsearch, NotFoundError

from devtools import demo
from workers.app import app
from workers.clients import reset_clients
from workers.crawl.http import Page
from workers.crawl.polite import PoliteFetcher
from workers.index.staging import Staging
from workers.index.tasks import BatchWriter
from workers.records import Staged

REPO = Path(__file__).resolve().parent.parent
# Small limits so the failure paths (timeouts, retries, size cap) finish in seconds.
TEST_SETTINGS = {
    "CONNECT_TIMEOUT": "1",
    "READ_TIMEOUT": "1.5",
    "FETCH_MAX_RETRIES": "2",
    "FETCH_BACKOFF_BASE": "0.2",
    "FETCH_BACKOFF_MAX": "5",
    "MAX_PAGE_BYTES": "300000",
    "BULK_CHUNK_SIZE": "50",
    # Ad-hoc crawls of the local test site need not be slow; politeness has its own tests.
    "DEFAULT_HOST_RATE": "500",
    "DEFAULT_HOST_CONCURRENCY": "8",
}
# Small enough that a test can send a bulk request over it without moving 100 MB.
ES_NODE_SETTINGS = {"http.max_content_length": "10mb"}


def apply_env(env: dict[str, str]) -> None:
    """Set `env` in this process and drop the clients built from the old settings."""
    os.environ.update(env)
    reset_clients()


@contextmanager
def env_applied(env: dict[str, str]) -> Iterator[dict[str, str]]:
    """`env` in this process for the block; the environment as it was afterwards."""
    saved = {key: os.environ.get(key) for key in env}
    apply_env(env)
    try:
        yield env
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        reset_clients()


def drop_indices(es: Elasticsearch, prefix: str) -> None:
    """Delete the indices and index templates made under `prefix`. Test modules share one cluster,
    whose shard limit (1000 a node) a few dozen runs that left their indices behind used up."""
    # By name: Elasticsearch refuses to delete indices by wildcard.
    if indices := list(es.indices.get(index=f"{prefix}*", expand_wildcards="all")):
        es.indices.delete(index=",".join(indices))
    try:
        templates = es.indices.get_index_template(name=f"{prefix}*")["index_templates"]
    except NotFoundError:
        return
    for template in templates:
        es.indices.delete_index_template(name=template["name"])


def point_app_at(broker_url: str) -> None:
    """Publish and ping through `broker_url` from this process, whatever broker the app used before."""
    app.conf.broker_url = broker_url
    # Drop every pooled broker connection (kombu keeps one pool per URL, process-wide): a broker
    # used before may have been restarted since, leaving its pooled connections dead.
    kombu.pools.reset()
    app._pool = None
    app.amqp._producer_pool = None


def cli(env: dict[str, str], *args: str, timeout: float = 120, input: str | None = None) -> subprocess.CompletedProcess:
    """Run `report-ingest ARGS` as a user would, in a child process (`input` on its standard input)."""
    return subprocess.run(
        [sys.executable, "-m", "workers.cli", *args], env={**os.environ, **env}, cwd=REPO,
        capture_output=True, text=True, timeout=timeout, input=input,
    )


class Worker:
    """A `report-ingest worker` for a test: one prefork worker of `concurrency` processes, or with
    `layout=(processes, threads)` the default layout (threads-pool workers under a supervisor),
    whose nodes are `self.nodes`; `node` names it as an earlier one, to start that one again."""

    def __init__(self, env: dict[str, str], concurrency: int = 4, layout: tuple[int, int] | None = None,
                 node: str | None = None):
        self.log = Path(tempfile.mkstemp(prefix="ri-worker-", suffix=".log")[1])
        self.env = env
        self.node = node or f"test-{uuid.uuid4().hex[:6]}@{socket.gethostname()}"
        extra = ("--without-gossip", "--without-mingle", "-n", self.node)
        if layout is None:
            self.nodes = [self.node]
            self.process = demo.start_worker(concurrency, self.log, loglevel="INFO", env={**os.environ, **env},
                                             extra=extra)
        else:
            name, host = self.node.split("@")
            self.nodes = [f"{name}-{i}@{host}" for i in range(1, layout[0] + 1)]
            with self.log.open("ab") as out:
                self.process = subprocess.Popen(
                    [sys.executable, "-m", "workers.cli", "worker", "--processes", str(layout[0]),
                     "--threads", str(layout[1]), "-l", "INFO", *extra],
                    env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            for node in self.nodes:
                demo.wait_for_worker(self.process, echo=lambda _m: None, log=self.log, node=node)
        except BaseException:
            self.stop()  # a worker that never answered must not outlive the test and eat others' tasks
            raise

    def ping(self, timeout: float = 2.0) -> list:
        return app.control.ping(timeout=timeout, destination=self.nodes)

    def stop(self) -> None:
        demo.stop_worker(self.process)


class Beat:
    """A `report-ingest beat` for a test, logging at INFO to `self.log`."""

    def __init__(self, env: dict[str, str]):
        self.log = Path(tempfile.mkstemp(prefix="ri-beat-", suffix=".log")[1])
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "workers.cli", "beat", "-l", "INFO"], env={**os.environ, **env}, cwd=REPO,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def said(self, pattern: str) -> list[re.Match]:
        """The lines of its log that match `pattern` (a regular expression), in order."""
        return list(re.finditer(pattern, self.log.read_text(errors="replace"), re.MULTILINE))

    def stop(self) -> None:
        demo.stop_worker(self.process)


def pool_children(parent: int) -> list[int]:
    """The PIDs of `parent`'s child processes (a prefork worker's pool), from /proc."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent:
            children.append(int(stat.parent.name))
    return children


def write_staged(es, settings, redis_client, entries: list[Staged]) -> int:
    """Stage `entries` and write them as the index task does; how many were written (not refused)."""
    queue = Staging(redis_client, settings.index_prefix)
    for entry in entries:
        queue.put(entry.key, entry.to_json(), trigger_ttl=60)
    written = BatchWriter(es, settings, queue).write(queue.take(100), careful=False).written
    # As an index run does when it ends: a page the worker stages next must start a run at once,
    # not wait for housekeeping to find the trigger expired.
    queue.release_trigger()
    return written


def offline_fetcher(settings, client, monkeypatch, robots_txt: bytes) -> tuple[PoliteFetcher, list[str]]:
    """A PoliteFetcher whose robots.txt and pages come from memory, so that all it does with
    Redis is real and nothing else is; and the list of robots.txt URLs it fetched."""
    fetcher = PoliteFetcher(settings, client, session=lambda: None)
    robots_fetched: list[str] = []

    def fetch_robots(_profile, robots, _extra):
        robots_fetched.append(robots.url)
        return 200, robots_txt

    def fetch(_profile, page, **_kwargs):
        return Page(page.url, page.url, 200, "text/html", None, None, b"<html></html>", "2025-01-01T00:00:00+00:00")

    monkeypatch.setattr(fetcher, "_fetch_robots", fetch_robots)
    monkeypatch.setattr(fetcher, "_fetch", fetch)
    return fetcher, robots_fetched
