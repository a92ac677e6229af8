"""A page that kills the worker process on every delivery is redelivered, then recorded, not looped on."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.corpus import report_page
from tests.helpers import Worker, cli, point_app_at
from tests.site import LocalSite, Request, html
from workers.urls import normalize_url


def pool_children(parent: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent:
            children.append(int(stat.parent.name))
    return children


@pytest.fixture(scope="module")
def worker_and_site(test_env):
    point_app_at(test_env["REDIS_URL"])
    worker = Worker(test_env, concurrency=1)
    site = LocalSite()

    def kill_the_fetcher(_req: Request):
        # Stands in for a page that crashes the parser's C code or exhausts memory.
        for pid in pool_children(worker.process.pid):
            os.kill(pid, signal.SIGKILL)
        return 200, {"Content-Type": "text/html"}, b"<p>never arrives</p>"

    site.routes["/poison"] = kill_the_fetcher
    site.routes["/fine"] = html(report_page(7).html)
    yield worker, site
    site.close()
    worker.stop()


def test_poison_page_is_recorded_after_capped_redeliveries(worker_and_site, test_env, es, names, settings):
    worker, site = worker_and_site
    result = cli(test_env, "crawl", site.url("/poison"), site.url("/fine"), "--allow-private-networks",
                 "--timeout", "120", timeout=150)
    assert result.returncode == 0, result.stderr
    assert "2 URLs, 1 indexed, 1 failed" in result.stdout
    assert len(site.hits["/poison"]) == settings.max_deliveries  # then no more fetches
    es.indices.refresh(index=names.failures)
    record = es.search(index=names.failures, query={"term": {"url": normalize_url(site.url("/poison"))}})
    assert record["hits"]["hits"][0]["_source"]["reason"] == "poison"
    assert worker.process.poll() is None and worker.ping()  # the worker survived it all
