"""A page that kills the worker process on every delivery is redelivered, then recorded, not looped on;
sent in a batch (fetch_pages), it costs the batch's other pages nothing, and neither does a retry."""

from __future__ import annotations

import os
import signal
from urllib.parse import urlsplit

import pytest

from tests.corpus import report_page
from tests.faults.helpers import await_condition
from tests.helpers import Worker, point_app_at, pool_children
from tests.site import LocalSite, Request, html
from workers.app import app
from workers.clients import get_redis
from workers.crawl.host_limits import HostLimiter
from workers.tracking.progress import FAILED, INDEXED, UNCHANGED, CrawlTracker
from workers.crawl.progress import watch
from workers.crawl.start import batches, start_crawl
from workers.task_names import FETCH_PAGE, FETCH_PAGES
from workers.urls import doc_id, normalize_url


def poison_site(worker: Worker, host: str = "127.0.0.1") -> LocalSite:
    """The pages of these tests, on loopback address `host`. Each page that kills its fetcher
    leaves the host a lease until it expires: a test that kills on a host of its own never finds
    every lease taken by those of another."""
    site = LocalSite(host=host)

    def kill_the_fetcher(_req: Request):
        # Stands in for a page that crashes the parser's C code or exhausts memory.
        for pid in pool_children(worker.process.pid):
            os.kill(pid, signal.SIGKILL)
        return 200, {"Content-Type": "text/html"}, b"<p>never arrives</p>"

    def flaky(req: Request):
        if req.hit == 1:
            return 503, {"Content-Type": "text/html", "Retry-After": "1"}, b"<h1>busy</h1>"
        return 200, {"Content-Type": "text/html; charset=utf-8"}, report_page(41).html

    site.routes |= {"/poison": kill_the_fetcher, "/poison-in-batch": kill_the_fetcher, "/flaky": flaky,
                    "/fine": html(report_page(7).html), "/gone": html(b"", status=404)}
    site.routes |= {f"/fine-{i}": html(report_page(30 + i).html) for i in range(3)}
    return site


@pytest.fixture(scope="module")
def worker_and_site(test_env):
    point_app_at(test_env["REDIS_URL"])
    worker = Worker(test_env, concurrency=1)
    site = poison_site(worker)
    yield worker, site
    site.close()
    worker.stop()


def crawl(settings, urls: list[str], host: str = "127.0.0.1") -> dict[str, str]:
    """Crawl `urls` and wait for every one to end; their states."""
    plan = start_crawl(settings, urls, allow_networks=[f"{host}/32"])
    tracker = CrawlTracker(get_redis(), settings.index_prefix, plan.crawl_id)
    snap = watch(tracker, interval=0.2, timeout=120, echo=lambda _line: None)
    assert snap.done == snap.total == len(urls)
    return tracker.states([normalize_url(url) for url in urls])


def crawl_as_one_batch(settings, monkeypatch, urls: list[str], host: str = "127.0.0.1") -> dict[str, str]:
    monkeypatch.setattr("workers.crawl.start.MIN_MESSAGES", 1)  # these few URLs, one message
    assert batches(urls, settings.fetch_batch_max) == [urls]
    return crawl(settings, urls, host)


def test_a_poison_page_is_recorded_after_capped_deliveries_however_many_messages_carry_it(
        worker_and_site, settings, monkeypatch, es, names):
    """Sent twice here, as the reconciliation may send it: a message taken off the queue by a
    worker busy with a dead pool process, and not yet recorded as unacknowledged, is nowhere."""
    worker, site = worker_and_site
    urls = [normalize_url(site.url("/poison")), normalize_url(site.url("/fine"))]
    monkeypatch.setattr("workers.crawl.start.batches", lambda queued, _most: [[url] for url in queued] + [queued[:1]])
    assert crawl(settings, urls) == {urls[0]: FAILED, urls[1]: INDEXED}
    assert len(site.hits["/poison"]) == settings.max_deliveries  # the page's count, not each message's
    es.indices.refresh(index=names.failures)
    record = es.search(index=names.failures, query={"term": {"url": urls[0]}})
    assert record["hits"]["hits"][0]["_source"]["reason"] == "poison"
    assert worker.process.poll() is None and worker.ping()  # the worker survived it all


def test_a_batch_whose_worker_dies_is_split_and_only_the_page_that_killed_it_fails(
        worker_and_site, settings, monkeypatch, es, names):
    worker = worker_and_site[0]
    site = poison_site(worker, "127.0.0.4")  # see poison_site
    urls = [site.url("/fine-0"), site.url("/poison-in-batch"), site.url("/fine-1")]
    try:
        states = crawl_as_one_batch(settings, monkeypatch, urls, "127.0.0.4")
    finally:
        site.close()
    poison, fine = normalize_url(urls[1]), [normalize_url(urls[0]), normalize_url(urls[2])]
    assert states[poison] == FAILED
    # A page the batch finished before its worker died is fetched again on its own: unchanged,
    # if its document was written in between.
    assert all(states[url] in (INDEXED, UNCHANGED) for url in fine)
    es.indices.refresh(index=names.reports)
    assert es.count(index=names.reports, query={"ids": {"values": [doc_id(url) for url in fine]}})["count"] == 2
    # Once in the batch, then as its own message up to the delivery cap.
    assert len(site.hits["/poison-in-batch"]) == 1 + settings.max_deliveries
    es.indices.refresh(index=names.failures)
    record = es.search(index=names.failures, query={"term": {"url": normalize_url(site.url("/poison-in-batch"))}})
    assert record["hits"]["hits"][0]["_source"]["reason"] == "poison"
    assert worker.process.poll() is None and worker.ping()


def test_a_page_of_a_batch_is_retried_on_its_own_and_the_rest_goes_on(worker_and_site, settings, monkeypatch):
    _worker, site = worker_and_site
    urls = [site.url("/flaky"), site.url("/gone"), site.url("/fine-2")]
    states = crawl_as_one_batch(settings, monkeypatch, urls)
    assert states == {normalize_url(urls[0]): INDEXED, normalize_url(urls[1]): FAILED,
                      normalize_url(urls[2]): INDEXED}
    first, second = site.hits["/flaky"]
    assert second - first >= 1.0  # its Retry-After, honoured by the fetch_page sent for it
    assert len(site.hits["/gone"]) == 1 and len(site.hits["/fine-2"]) == 1


def test_a_busy_host_defers_the_rest_of_a_batch_as_one_message(worker_and_site, settings, monkeypatch):
    worker = worker_and_site[0]
    # A host of its own: the pages killed above left their leases on the shared one until they expire.
    site = LocalSite(host="127.0.0.2")
    site.routes |= {f"/page-{i}": html(report_page(50 + i).html) for i in range(3)}

    def sent(task: str) -> int:
        stats = app.control.inspect(timeout=2.0, destination=worker.nodes).stats() or {}
        return sum(node["total"].get(task, 0) for node in stats.values())

    # Every lease of the host taken, as by other workers' requests.
    limiter = HostLimiter(get_redis(), settings.index_prefix, settings.host_max_inline_wait)
    host = urlsplit(site.base).netloc
    held = [limiter.take_turn(host, f"elsewhere-{i}", interval=0, limit=settings.default_host_concurrency)
            for i in range(settings.default_host_concurrency)]
    assert all(turn.granted for turn in held)
    singles, batched = sent(FETCH_PAGE), sent(FETCH_PAGES)
    monkeypatch.setattr("workers.crawl.start.MIN_MESSAGES", 1)
    try:
        plan = start_crawl(settings, [site.url(f"/page-{i}") for i in range(3)], allow_networks=["127.0.0.2/32"])
        await_condition(lambda: sent(FETCH_PAGES) >= batched + 3, timeout=60,
                        what="the batch deferred, and delivered again, twice")
        for turn in held:
            limiter.release(host, turn.token)
        tracker = CrawlTracker(get_redis(), settings.index_prefix, plan.crawl_id)
        snap = watch(tracker, interval=0.2, timeout=60, echo=lambda _line: None)
    finally:
        site.close()
    assert snap.counts[INDEXED] == 3
    assert sent(FETCH_PAGE) == singles  # no page went on alone
