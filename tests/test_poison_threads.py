"""In the default threads layout a worker process that dies takes every page in flight in it
along. The death is charged to the page that causes it, not to its neighbours: pages that were
in flight at a death run one at a time in their process, and are counted only then."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from tests.corpus import report_page
from tests.helpers import Worker, point_app_at, pool_children
from tests.site import LocalSite, Request, html
from tests.test_poison import crawl
from workers.tracking.progress import FAILED, INDEXED
from workers.urls import normalize_url

# Dead workers' messages go back within seconds, not the default 30; pages may take 2 s to answer.
EXTRA_ENV = {"ORPHAN_GRACE": "3", "HOUSEKEEPING_INTERVAL": "0.5", "READ_TIMEOUT": "5"}
HOST = "127.0.0.5"  # a host of its own: a killed fetch leaves its lease until it expires


@pytest.mark.slow
def test_a_page_that_kills_its_process_is_poison_and_the_pages_beside_it_are_not(test_env, settings, es, names):
    point_app_at(test_env["REDIS_URL"])
    worker = Worker(test_env, layout=(1, 4))
    site = LocalSite(host=HOST)
    answered = threading.Event()

    def kill_the_process(_req: Request):
        for pid in pool_children(worker.process.pid):  # the supervisor's one worker process
            os.kill(pid, signal.SIGKILL)
        return 200, {"Content-Type": "text/html"}, b"<p>never arrives</p>"

    def slow(n: int):
        def answer(_req: Request):
            answered.wait(2)  # answers after 2 s: in flight when the other page kills the process
            return 200, {"Content-Type": "text/html; charset=utf-8"}, report_page(n).html
        return answer

    site.routes |= {"/kills": kill_the_process, **{f"/slow-{i}": slow(60 + i) for i in range(3)}}
    urls = [normalize_url(site.url("/kills")), *(normalize_url(site.url(f"/slow-{i}")) for i in range(3))]
    try:
        states = crawl(settings, urls, HOST)
    finally:
        site.close()
        worker.stop()
    assert states == {urls[0]: FAILED, **{url: INDEXED for url in urls[1:]}}
    assert len(site.hits["/kills"]) == settings.max_deliveries
    es.indices.refresh(index=names.failures)
    record = es.search(index=names.failures, query={"term": {"url": urls[0]}})["hits"]["hits"][0]["_source"]
    assert record["reason"] == "poison"
