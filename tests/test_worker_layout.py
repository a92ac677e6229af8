"""The default worker layout (threads-pool workers under a supervisor) keeps politeness exact.

Real Redis, Elasticsearch and `report-ingest worker --processes 2 --threads 8`: 16 tasks in
flight against a per-host limit of 3 on each of two loopback hosts whose server counts the
requests it is answering at once. No timing is asserted, only counts.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict

import pytest

from tests.corpus import report_page
from tests.helpers import Worker, cli, point_app_at
from tests.site import LocalSite, Request
from workers.app import app
from workers.cli.layout import Layout, node_name
from workers.task_names import FETCH_PAGE

HOSTS = ("127.0.0.8", "127.0.0.9")
LIMIT = 3
PAGES_PER_HOST = 30
EXTRA_ENV = {"DEFAULT_HOST_CONCURRENCY": str(LIMIT), "DEFAULT_HOST_RATE": "1000"}


class InFlight:
    """Counts the requests each host is answering at once (robots.txt included), and the most seen."""

    def __init__(self):
        self.lock = threading.Lock()
        self.now: dict[str, int] = defaultdict(int)
        self.most: dict[str, int] = defaultdict(int)

    def handler(self, host: str, body: bytes, hold: float = 0.1):
        def answer(_req: Request):
            with self.lock:
                self.now[host] += 1
                self.most[host] = max(self.most[host], self.now[host])
            try:
                time.sleep(hold)  # long enough that the worker's threads pile up on the host
            finally:
                with self.lock:
                    self.now[host] -= 1
            return 200, {"Content-Type": "text/html; charset=utf-8"}, body
        return answer


@pytest.fixture(scope="module")
def sites():
    counter = InFlight()
    sites = [LocalSite(host=host) for host in HOSTS]
    for site in sites:
        site.routes["/robots.txt"] = counter.handler(site.host, b"User-agent: *\nDisallow: /private/\n", hold=0.3)
        for i in range(PAGES_PER_HOST):
            site.routes[f"/r{i}.html"] = counter.handler(site.host, report_page(300 + i).html)
    yield sites, counter
    for site in sites:
        site.close()


@pytest.fixture(scope="module")
def threads_worker(test_env):
    point_app_at(test_env["REDIS_URL"])
    worker = Worker(test_env, layout=(2, 8))
    yield worker
    worker.stop()


def test_per_host_concurrency_holds_across_threads_and_processes(test_env, sites, threads_worker):
    sites, counter = sites
    urls = [site.url(f"/r{i}.html") for i in range(PAGES_PER_HOST) for site in sites]
    nets = [arg for host in HOSTS for arg in ("--allow-network", f"{host}/32")]
    result = cli(test_env, "crawl", *urls, *nets, "--timeout", "150", timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(urls)} URLs, {len(urls)} indexed" in result.stdout
    assert all(counter.most[host] <= LIMIT for host in HOSTS), dict(counter.most)
    assert max(counter.most.values()) > 1  # the test had requests in flight together at all
    stats = app.control.inspect(timeout=2.0, destination=threads_worker.nodes).stats() or {}
    fetched = {node: stats[node]["total"].get(FETCH_PAGE, 0) for node in stats}
    assert len(fetched) == 2 and all(fetched.values()), fetched  # both processes fetched
    assert all(stats[node]["pool"]["max-concurrency"] == 8 for node in stats)


def test_layout_defaults_and_names():
    layout = Layout.for_machine()
    assert layout.processes >= 1 and layout.threads > 1
    assert Layout.for_machine(3, 4) == Layout(3, 4)
    assert node_name(None, 2) == "celery-2@%h"
    assert node_name("fetch@box", 1) == "fetch-1@box"
