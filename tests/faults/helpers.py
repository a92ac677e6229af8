"""Helpers for fault scenarios: waiting for a condition, and the summary line each one prints."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import redis

from devtools.cluster import stop_all
from tests.corpus import report_page
from tests.helpers import TEST_SETTINGS, Beat, Worker, drop_indices, env_applied, point_app_at
from tests.site import LocalSite, html
from workers.clients import get_es, get_redis
from workers.crawl.start import start_crawl
from workers.index.indices import IndexNames
from workers.settings import get_settings

# Scenario settings: short grace and backoff so recovery takes seconds, not the production minutes.
FAULT_SETTINGS = {
    "HOUSEKEEPING_INTERVAL": "0.5",
    "ORPHAN_GRACE": "5",
    "INDEX_BACKOFF_MAX": "5",
}
# Read by the `faults` section tests/faults/conftest.py adds to pytest's report.
SUMMARIES: list[str] = []


def await_condition(check: Callable[[], object], timeout: float, what: str, interval: float = 0.2):
    end = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < end, f"{what}: not reached within {timeout:.0f}s"
        time.sleep(interval)
    return result


def summary(line: str) -> None:
    SUMMARIES.append(line)
    print(f"\n[fault] {line}")


@dataclass
class Scenario:
    env: dict[str, str]
    site: LocalSite
    # The fault's handles: RestartableRedis and StoppableElasticsearch (tests/faults/conftest.py),
    # or the highly available shapes of devtools/cluster.py (tests/ha/).
    redis: object
    elasticsearch: object
    workers: list[Worker] = field(default_factory=list)
    beats: list[Beat] = field(default_factory=list)

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

    def start_beat(self) -> Beat:
        beat = Beat(self.env)
        self.beats.append(beat)
        return beat

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


@contextmanager
def scenario_on(redis_handle, es_handle, extra_env: dict[str, str], restore_broker: str) -> Iterator[Scenario]:
    """A clean state on these services (an empty Redis, a fresh index prefix, a new site), the
    workers and beats the scenario started stopped after it, and the app's broker `restore_broker` again."""
    from workers.app import app, celery_config

    env = {"REDIS_URL": redis_handle.url, "ELASTICSEARCH_URL": es_handle.url, **TEST_SETTINGS, **FAULT_SETTINGS,
           "INDEX_PREFIX": f"f{uuid.uuid4().hex[:8]}-", **extra_env}
    broker_keys = ("broker_transport", "broker_transport_options", "broker_use_ssl")
    saved = {key: app.conf[key] for key in broker_keys}
    with env_applied(env):
        get_redis().flushall()
        # The broker's transport and TLS too: with Sentinels they differ (workers/sentinel.py).
        config = celery_config(get_settings())
        app.conf.update({key: config.get(key, saved[key]) for key in broker_keys})
        point_app_at(get_settings().redis_url)
        case = Scenario(env, LocalSite(), redis_handle, es_handle)
        try:
            yield case
        finally:
            try:
                # Standbys first: the firing beat stopped first would hand them its lock.
                stop_all([*reversed(case.beats), *case.workers])
            finally:
                case.site.close()
                drop_indices(get_es(), env["INDEX_PREFIX"])
    app.conf.update(saved)
    point_app_at(restore_broker)
