"""The fault suite's harness: its own Redis (AOF on, so it can be restarted and killed), an
Elasticsearch node it may stop, a local site, and a fresh worker and index prefix per scenario.

Every scenario prints one summary line (run pytest with -s to see them, or read the
`faults` section pytest prints at the end).
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from devtools import services as devservices
from tests.corpus import report_page
from tests.faults.helpers import SUMMARIES, await_condition
from tests.helpers import ES_NODE_SETTINGS, TEST_SETTINGS, Worker, drop_indices, env_applied, point_app_at
from tests.site import LocalSite, html
from workers.clients import get_es, get_redis, reset_clients
from workers.crawl.start import start_crawl
from workers.index.indices import IndexNames
from workers.settings import get_settings

# Scenario settings: short grace and backoff so recovery takes seconds, not the production minutes.
FAULT_SETTINGS = {
    "HOUSEKEEPING_INTERVAL": "0.5",
    "ORPHAN_GRACE": "5",
    "INDEX_BACKOFF_MAX": "5",
}


def pytest_terminal_summary(terminalreporter) -> None:
    if SUMMARIES:
        terminalreporter.section("faults")
        for line in SUMMARIES:
            terminalreporter.write_line(line)


@dataclass
class RestartableRedis:
    """redis-server with AOF everysec on a fixed port and data directory."""

    workdir: Path
    port: int
    service: devservices.Service | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.service = devservices.start_redis(self.workdir, self.port, appendonly=True)
        reset_clients()  # this process's pooled connections died with the old server
        point_app_at(self.url)

    def shutdown(self) -> None:
        """Graceful: Redis writes its AOF and exits."""
        subprocess.run(["redis-cli", "-p", str(self.port), "shutdown"], capture_output=True, timeout=30)
        self.service.process.wait(30)

    def kill(self) -> None:
        os.killpg(self.service.process.pid, signal.SIGKILL)
        self.service.process.wait(30)

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()


@pytest.fixture(scope="session")
def fault_redis():
    server = RestartableRedis(Path(tempfile.mkdtemp(prefix="ri-fault-redis-")), devservices.free_port())
    server.start()
    yield server
    server.stop()


@dataclass
class StoppableElasticsearch:
    """The session's node when this run started it, else a node of the fault suite's own."""

    service: devservices.Service
    # The session's services by kind, when the node is the session's: its entry follows a
    # restart, so the session's teardown stops the node that runs, not the one stopped here.
    session_started: dict | None = None

    @property
    def url(self) -> str:
        return self.service.url

    def stop(self) -> None:
        self.service.stop()

    def start(self) -> None:
        port = int(self.service.url.rsplit(":", 1)[1])
        self.service = devservices.start_elasticsearch(self.service.workdir, port, echo=lambda m: None,
                                                       node_settings=ES_NODE_SETTINGS)
        if self.session_started is not None:
            self.session_started["elasticsearch"] = self.service


@pytest.fixture(scope="session")
def fault_elasticsearch(session_services):
    if (managed := session_services["started"].get("elasticsearch")) is not None:
        yield StoppableElasticsearch(managed, session_services["started"])
        return
    own = StoppableElasticsearch(devservices.start_elasticsearch(
        Path(tempfile.mkdtemp(prefix="ri-fault-es-")), echo=lambda m: None, node_settings=ES_NODE_SETTINGS))
    yield own
    own.stop()


@dataclass
class Scenario:
    env: dict[str, str]
    site: LocalSite
    redis: RestartableRedis
    elasticsearch: StoppableElasticsearch
    workers: list[Worker] = field(default_factory=list)

    @property
    def settings(self):
        return get_settings()

    @property
    def names(self):
        return IndexNames(self.settings.index_prefix)

    def es(self):
        return get_es()

    def client(self) -> redis.Redis:
        return get_redis()

    def start_worker(self, concurrency: int = 2, layout: tuple[int, int] | None = None) -> Worker:
        worker = Worker(self.env, concurrency=concurrency, layout=layout)
        self.workers.append(worker)
        return worker

    def serve(self, count: int, first: int = 0) -> list[str]:
        urls = []
        for i in range(first, first + count):
            page = report_page(i)
            self.site.routes[page.path] = html(page.html)
            urls.append(self.site.url(page.path))
        return urls

    def crawl(self, urls: list[str]) -> str:
        return start_crawl(self.settings, urls, allow_networks=["127.0.0.0/8"]).crawl_id

    def indexed(self, urls: list[str] | None = None) -> int:
        es = self.es()
        es.indices.refresh(index=self.names.reports)
        query = {"terms": {"url": urls}} if urls else {"match_all": {}}
        return es.count(index=self.names.reports, query=query)["count"]

    def distinct_urls(self) -> int:
        es = self.es()
        response = es.search(index=self.names.reports, size=0,
                             aggs={"urls": {"cardinality": {"field": "url", "precision_threshold": 40000}}})
        return response["aggregations"]["urls"]["value"]

    def failures(self) -> list[dict]:
        es = self.es()
        es.indices.refresh(index=self.names.failures)
        return [h["_source"] for h in es.search(index=self.names.failures, size=1000)["hits"]["hits"]]

    def await_indexed(self, count: int, timeout: float, what: str = "every page indexed") -> float:
        started = time.monotonic()
        await_condition(lambda: self.indexed() >= count, timeout, what, interval=0.5)
        return time.monotonic() - started


@pytest.fixture
def scenario(fault_redis, fault_elasticsearch, session_services, request):
    """A clean state per scenario: an empty Redis, a fresh index prefix, a new worker and site."""
    redis.Redis.from_url(fault_redis.url).flushall()
    env = {"REDIS_URL": fault_redis.url, "ELASTICSEARCH_URL": fault_elasticsearch.url, **TEST_SETTINGS,
           **FAULT_SETTINGS, "INDEX_PREFIX": f"f{uuid.uuid4().hex[:8]}-",
           **getattr(request.module, "EXTRA_ENV", {})}
    with env_applied(env):
        point_app_at(env["REDIS_URL"])
        site = LocalSite()
        case = Scenario(env, site, fault_redis, fault_elasticsearch)
        yield case
        for worker in case.workers:
            worker.stop()
        site.close()
        drop_indices(get_es(), env["INDEX_PREFIX"])
    point_app_at(session_services["urls"]["REDIS_URL"])
