"""Issue 9's defects, each reproduced against real Redis, Elasticsearch and a Celery worker.

Every test here failed on the code before its fix (commit 2ce5914) and is named for the defect.
"""

from __future__ import annotations

import json
import pickle
import socket
import subprocess
import sys
import time
import uuid

import pytest

from tests.helpers import cli
from tests.corpus import report_page
from tests.site import LocalSite, Request, html
from workers.crawl.start import start_crawl
from workers.crawl.http import Page, PermanentFetchError, RetryableFetchError
from workers.index.bulk import BulkItemError, BulkResult, BulkWriteError
from workers.keys import Keys
from workers.task_names import INDEX_PENDING
from workers.parse import parse_page
from workers.crawl.polite import Deferred
from workers.tracking.progress import CrawlTracker
from workers.crawl.progress import watch
from workers.index.staging import Staging
from workers.index.tasks import IndexBackoff
from workers.records import DocumentEntry, Failure, FailureEntry, RawPage
from workers.urls import doc_id, normalize_url

EXTRA_ENV = {
    # Short enough that the waits below are seconds, long enough to exercise the paths.
    "HOST_MAX_INLINE_WAIT": "1.5",
    "ROBOTS_ERROR_TTL": "2",
    "MAX_COUNTDOWN": "30",
    "HOUSEKEEPING_INTERVAL": "0.5",
}


def await_condition(check, timeout: float = 60.0, interval: float = 0.1, what: str = "condition"):
    end = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < end, f"{what} not reached within {timeout:.0f}s"
        time.sleep(interval)
    return result


@pytest.fixture(scope="module")
def live_indices(es, names, settings):
    from workers.index.indices import ensure_indices

    return ensure_indices(es, names, settings.schemas_dir)


@pytest.fixture(scope="module")
def site():
    site = LocalSite()
    yield site
    site.close()


def serve_reports(site: LocalSite, first: int, count: int, prefix: str = "") -> list[str]:
    urls = []
    for i in range(first, first + count):
        page = report_page(i)
        site.routes[prefix + page.path] = html(page.html)
        urls.append(site.url(prefix + page.path))
    return urls


def failures_for(es, names, urls: list[str]) -> dict[str, dict]:
    es.indices.refresh(index=names.failures)
    hits = es.search(index=names.failures, size=100, query={"terms": {"url": [normalize_url(u) for u in urls]}})
    return {h["_source"]["url"]: h["_source"] for h in hits["hits"]["hits"]}


def indexed_count(es, names, urls: list[str]) -> int:
    es.indices.refresh(index=names.reports)
    return es.count(index=names.reports, query={"terms": {"url": [normalize_url(u) for u in urls]}})["count"]


def test_a_crawl_delay_beyond_the_inline_wait_still_fetches_every_page(worker, test_env, es, names):
    """Defect 1: deferred pages took request slots they never used, so the host stalled for good."""
    site = LocalSite()
    try:
        site.routes["/robots.txt"] = html("User-agent: *\nCrawl-delay: 1\n", content_type="text/plain")
        urls = serve_reports(site, 100, 8)
        result = cli(test_env, "crawl", *urls, "--allow-private-networks", "--timeout", "90", timeout=120)
        assert result.returncode == 0, result.stderr
        assert "8 URLs, 8 indexed" in result.stdout
        fetched = sorted(t for path, times in site.hits.items() if path != "/robots.txt" for t in times)
        assert len(fetched) == 8  # each page once: no slot was wasted, no page asked twice
        # And the host was still treated politely: eight slots one Crawl-delay apart. (A request may
        # leave a little after its slot on a busy machine, so the span is checked, not each gap.)
        assert fetched[-1] - fetched[0] >= 7 * 1.0 - 0.5
    finally:
        site.close()


def _document_entry(url: str, n: int) -> str:
    body = report_page(n).html
    page = Page(url=url, final_url=url, status=200, content_type="text/html; charset=utf-8", etag=None,
                last_modified=None, body=body, fetched_at="2025-01-01T00:00:00+00:00")
    document = parse_page(body, url).indexable(page.fetched_at)
    raw = RawPage.of(page)
    raw.canonical_url, raw.source = document.canonical_url, document.source
    return DocumentEntry(url, None, None, [document], raw).to_json()


def test_a_refused_failure_record_never_blocks_the_batch(worker, settings, redis_client, es, names):
    """Defect 3: a failure record Elasticsearch refused made the index task retry one batch forever."""
    from workers.app import app

    huge = "https://example.org/" + "x" * 40_000  # longer than a keyword may be
    good = "https://example.org/defect3-good"
    queue = Staging(redis_client, settings.index_prefix)
    queue.put(doc_id(huge), FailureEntry(huge, None, None, Failure(huge, "fetch", "http_404", "not found", 404))
              .to_json(), trigger_ttl=60)
    queue.put(doc_id(good), _document_entry(good, 300), trigger_ttl=60)
    app.send_task(INDEX_PENDING)
    await_condition(lambda: queue.size() == 0, what="staging drained")
    assert indexed_count(es, names, [good]) == 1
    es.indices.refresh(index=names.failures)
    record = es.get(index=names.failures, id=doc_id(huge))["_source"]
    assert record["reason"] == "http_404"  # the original reason, kept
    assert record["url"] == huge[:2000] and "cut short" in record["detail"]


def _block_writes(es, index: str, on: bool) -> None:
    # The flood-stage block: Elasticsearch answers writes with 429 while it is set.
    es.indices.put_settings(index=index, settings={"index.blocks.read_only_allow_delete": True if on else None})


def test_an_overloaded_cluster_delays_indexing_but_fails_nothing(worker, test_env, es, names,
                                                                         redis_client, settings):
    """Defect 4: item-level 429s were retried for ~3.5 s, then the pages became index_error failures."""
    from workers.tracking.state import CrawlState

    site = LocalSite()
    reports = next(iter(es.indices.get_alias(name=names.reports)))

    def raw_writes() -> int:
        stats = es.indices.stats(index=names.raw_pages, metric="indexing")
        return stats["_all"]["primaries"]["indexing"]["index_total"]

    written_before = raw_writes()
    try:
        urls = serve_reports(site, 200, 5)
        _block_writes(es, reports, True)
        result = cli(test_env, "crawl", *urls, "--allow-private-networks", "--no-wait", timeout=60)
        assert result.returncode == 0, result.stderr

        def raw_rewritten() -> bool:
            # Raw pages are not blocked: each attempt of the index run rewrites them (under the same
            # version, their fetch time). Three writes each = the run was refused twice, well past
            # the old 3.5 s of item retries.
            return raw_writes() >= written_before + 3 * len(urls)

        await_condition(raw_rewritten, timeout=90, what="three refused index attempts")
        assert failures_for(es, names, urls) == {}
    finally:
        _block_writes(es, reports, False)
        site.close()
    await_condition(lambda: indexed_count(es, names, urls) == 5, timeout=90, what="all pages indexed")
    assert failures_for(es, names, urls) == {}
    # Their crawl state was kept, so the next crawl can skip them when unchanged.
    state = CrawlState(redis_client, settings.index_prefix)
    assert all(state.get(normalize_url(u)).content_sha256 for u in urls)


def test_bulk_requests_are_sized_by_bytes(es, names, live_indices):
    from workers.index.bulk import bulk_write

    sent: list[int] = []
    original = es.bulk

    def counting_bulk(**kwargs):
        sent.append(sum(len(line) + 1 for line in kwargs["operations"]))
        return original(**kwargs)

    big = "y" * 300_000
    actions = [{"_op_type": "index", "_index": names.failures, "_id": f"big-{i}",
                "_source": {"url": f"https://example.org/big/{i}", "detail": big}} for i in range(6)]
    es.bulk = counting_bulk
    try:
        result = bulk_write(es, actions, chunk_size=200, max_bytes=700_000)
    finally:
        del es.bulk
    assert result.succeeded == 6 and len(sent) == 3 and max(sent) <= 700_000


def test_a_request_over_the_node_limit_is_split_not_failed(es, names, live_indices):
    from workers.index.bulk import bulk_write

    defaults = es.cluster.get_settings(include_defaults=True, flat_settings=True)
    limit_text = (defaults["persistent"] | defaults["transient"] | defaults["defaults"])["http.max_content_length"]
    limit = _bytes(limit_text)
    if limit > 20 * 1024 * 1024:
        pytest.skip(f"this node accepts {limit_text}; the suite's own node is started with a small limit")
    item = "z" * (limit // 3)
    actions = [{"_op_type": "index", "_index": names.failures, "_id": f"split-{i}",
                "_source": {"url": f"https://example.org/split/{i}", "detail": item}} for i in range(4)]
    result = bulk_write(es, actions, chunk_size=200, max_bytes=10 * limit)  # one request: too large
    assert result.succeeded == 4


def _bytes(text: str) -> int:
    units = {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}
    number = text.rstrip("kmgb")
    return int(float(number) * units[text[len(number):] or "b"])


def test_a_long_wait_is_parked_in_redis_not_held_by_the_broker(worker, test_env, es, names,
                                                                       redis_client, settings):
    """Defect 5: a Retry-After of hours became a broker countdown, redelivered every visibility timeout."""
    site = LocalSite()
    try:
        page = report_page(400)

        def busy_for_hours(req: Request):
            if req.hit == 1:
                return 429, {"Content-Type": "text/html", "Retry-After": "7200"}, b"<h1>slow down</h1>"
            return 200, {"Content-Type": "text/html; charset=utf-8"}, page.html

        site.routes[page.path] = busy_for_hours
        url = site.url(page.path)
        result = cli(test_env, "crawl", url, "--allow-private-networks", "--no-wait", timeout=60)
        assert result.returncode == 0, result.stderr
        parked_key = Keys(settings.index_prefix).parked

        def parked() -> list[tuple[str, float]]:
            return redis_client.zrange(parked_key, 0, -1, withscores=True)

        (member, due), = await_condition(parked, what="the page parked")
        assert json.loads(member)["url"] == normalize_url(url)
        assert 7000 < due - time.time() <= 7200
        # Nothing the broker holds is due later than a countdown may be.
        for raw in redis_client.hvals("unacked"):
            message = json.loads(raw)[0]
            eta = message["headers"].get("eta")
            assert eta is None or "fetch_page" not in message["headers"]["task"] or \
                time.mktime(time.strptime(eta[:19], "%Y-%m-%dT%H:%M:%S")) - time.time() < 3600
        # Two hours on: the host's backoff is over and the page is due. Housekeeping sends it.
        host = f"ri:{settings.index_prefix}host:{site.base.split('//')[1]}"
        redis_client.delete(f"{host}:rate", f"{host}:line")
        redis_client.zadd(parked_key, {member: time.time()})
        await_condition(lambda: indexed_count(es, names, [url]) == 1, what="the parked page indexed")
        assert parked() == []
    finally:
        site.close()


def test_a_crawl_whose_source_was_removed_records_every_page(worker, settings, es, names, site):
    """Defect 6: a source removed from sources.yaml while its crawl was queued made every task raise;
    Celery acknowledged them: neither indexed nor in failures, progress stuck at "queued"."""
    urls = serve_reports(site, 500, 3, prefix="/removed")
    plan = start_crawl(settings, urls, source="no-longer-configured")
    from workers.clients import get_redis

    snap = watch(CrawlTracker(get_redis(), settings.index_prefix, plan.crawl_id), interval=0.2, timeout=60)
    assert snap.done == 3
    failures = await_condition(lambda: (f := failures_for(es, names, urls)) and len(f) == 3 and f)
    assert {f["reason"] for f in failures.values()} == {"source_unavailable"}
    assert all("no-longer-configured" in f["detail"] for f in failures.values())


def test_a_hard_time_limit_requeues_instead_of_acknowledging():
    """Defect 6: a task killed by the hard time limit was acknowledged as failed and left no record.
    Now it is requeued like a task whose worker died, and the delivery cap records it as poison
    (tests/test_poison.py shows that cap end to end)."""
    from workers.crawl.tasks import fetch_page
    from workers.index.tasks import index_pending

    assert fetch_page.acks_late and index_pending.acks_late
    assert fetch_page.app.conf.task_acks_on_timeout is False
    # The soft limit comes first, so a task normally ends with a `time_limit` failure record.
    assert fetch_page.app.conf.task_soft_time_limit < fetch_page.app.conf.task_time_limit


def test_an_unreachable_robots_txt_delays_pages_instead_of_skipping_them(worker, test_env, es, names):
    """Defect 9: a 503 on robots.txt recorded the page as skipped for good (`robots_disallowed`)."""
    site = LocalSite()
    try:
        def robots_down_once(req: Request):
            if req.hit == 1:  # Retry-After keeps the host's back-off short (the default is 30 s)
                return 503, {"Content-Type": "text/plain", "Retry-After": "1"}, b"maintenance"
            return 200, {"Content-Type": "text/plain"}, b"User-agent: *\nAllow: /\n"

        site.routes["/robots.txt"] = robots_down_once
        urls = serve_reports(site, 600, 2)
        result = cli(test_env, "crawl", *urls, "--allow-private-networks", "--timeout", "60", timeout=90)
        assert result.returncode == 0, result.stderr
        assert "2 URLs, 2 indexed" in result.stdout
        assert len(site.hits["/robots.txt"]) >= 2  # asked again once the error entry expired
        assert failures_for(es, names, urls) == {}
    finally:
        site.close()


def test_a_robots_txt_redirect_loop_counts_as_no_robots_txt(worker, test_env, es, names):
    site = LocalSite()
    try:
        site.routes["/robots.txt"] = html(b"", status=302, Location="/robots-elsewhere.txt")
        site.routes["/robots-elsewhere.txt"] = html(b"", status=302, Location="/robots.txt")
        urls = serve_reports(site, 650, 1)
        result = cli(test_env, "crawl", *urls, "--allow-private-networks", "--timeout", "60", timeout=90)
        assert result.returncode == 0, result.stderr
        assert "1 URLs, 1 indexed" in result.stdout
    finally:
        site.close()


def test_a_lost_index_trigger_is_recovered_without_beat(worker, settings, redis_client, es, names):
    """Defect 12: the trigger of a lost index run stayed for 20 minutes and nothing was indexed meanwhile
    unless beat ran (the no-Docker path runs no beat)."""
    queue = Staging(redis_client, settings.index_prefix)
    redis_client.set(queue.flag, "1", ex=3)  # what an index run killed mid-way leaves behind
    url = "https://example.org/defect12"
    assert not queue.put(doc_id(url), _document_entry(url, 700), trigger_ttl=60)  # nobody triggers now
    await_condition(lambda: queue.size() == 0, what="staging drained by housekeeping")
    assert indexed_count(es, names, [url]) == 1


def test_exceptions_cross_process_boundaries_intact():
    """Defect 13: BulkWriteError could not be pickled, so a pool process could not report it."""
    bulk = BulkWriteError(BulkResult(1, [BulkItemError({"_id": "a"}, 503, "connection: refused")]))
    for exc in (bulk, RetryableFetchError("timeout", "slow", 504, retry_after=3.0),
                PermanentFetchError("http_404", "gone", 404), Deferred(5.0, "host_slot", "later"),
                IndexBackoff("busy")):
        again = pickle.loads(pickle.dumps(exc))
        assert type(again) is type(exc) and str(again) == str(exc)
        assert vars(again).keys() == vars(exc).keys()
    assert pickle.loads(pickle.dumps(bulk)).result.errors[0].status == 503


def test_take_does_not_report_empty_on_a_nonzero_cursor(redis_client, settings):
    """HSCAN may answer a page with no items but a cursor to go on; `take` used to stop there."""
    queue = Staging(redis_client, f"{settings.index_prefix}scan-")
    for i in range(3000):
        queue.put(f"k{i}", json.dumps({"i": i}), trigger_ttl=60)
    queue.remove([taken for taken in queue.take(3000) if taken.key not in {f"k{i}" for i in range(2990, 3000)}])
    # a sparse table now, as after a big batch
    assert len(queue.take(5)) == 5


def test_a_redirect_hop_obeys_the_robots_txt_of_the_host_it_goes_to(worker, test_env, es, names):
    """Redirect hops count against the host they go to: its robots.txt, slot and lease."""
    origin, elsewhere = LocalSite(), LocalSite()
    try:
        elsewhere.routes["/robots.txt"] = html("User-agent: *\nDisallow: /\n", content_type="text/plain")
        page = report_page(750)
        elsewhere.routes[page.path] = html(page.html)
        origin.routes["/moved"] = html(b"", status=301, Location=elsewhere.url(page.path))
        url = origin.url("/moved")
        result = cli(test_env, "crawl", url, "--allow-private-networks", "--timeout", "60", timeout=90)
        assert result.returncode == 0, result.stderr
        assert failures_for(es, names, [url])[normalize_url(url)]["reason"] == "robots_disallowed"
        assert page.path not in elsewhere.hits  # asked robots.txt, never the page
    finally:
        origin.close()
        elsewhere.close()


def test_an_oversized_robots_txt_is_read_up_to_500_kib_not_treated_as_an_outage(worker, test_env, es, names):
    """RFC 9309 2.5: parse the first 500 KiB. It used to fail as too_large and forbid the whole site."""
    site = LocalSite()
    try:
        rules = "User-agent: *\nDisallow: /private/\n" + "# padding\n" * 80_000  # about 800 KB
        site.routes["/robots.txt"] = html(rules, content_type="text/plain")
        ok, private = report_page(760), report_page(761)
        site.routes[ok.path] = html(ok.html)
        site.routes["/private" + private.path] = html(private.html)
        urls = [site.url(ok.path), site.url("/private" + private.path)]
        result = cli(test_env, "crawl", *urls, "--allow-private-networks", "--timeout", "60", timeout=90)
        assert result.returncode == 0, result.stderr
        assert indexed_count(es, names, urls[:1]) == 1
        assert failures_for(es, names, urls[1:])[normalize_url(urls[1])]["reason"] == "robots_disallowed"
    finally:
        site.close()


def test_one_index_run_writes_at_a_time_and_a_redelivered_run_takes_the_lock_only_from_a_dead_process(
        redis_client, settings):
    """Two index runs writing at once could write an older staged version of a page after a newer one.
    Measured: under the task ID, the same message redelivered while its first run still wrote took
    the lock as its own, and both wrote."""
    from workers.index.runner import IndexRunner

    namespace = f"{settings.index_prefix}runner-"
    first = IndexRunner(redis_client, namespace, "runner-a@test", lease=30)
    assert first.hold() and first.hold()  # renewed by its own run
    # The same message delivered again to another worker while the first run lives: it waits.
    redelivered = IndexRunner(redis_client, namespace, "runner-b@test", lease=30)
    assert not redelivered.hold()
    # ... and a run on the first run's own worker is another run too.
    assert not IndexRunner(redis_client, namespace, "runner-a@test", lease=30).hold()
    # A run in a process of this host that is gone (a pool process killed mid-run) is taken over
    # at once, though its worker lives on.
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    first.release()
    killed = IndexRunner(redis_client, namespace, "runner-a@test", lease=30)
    killed.token = f"runner-a@test {socket.gethostname()} {gone.pid} {uuid.uuid4().hex}"
    assert killed.hold() and redelivered.hold()
    redelivered.release()
    assert killed.hold() and first.hold() and not killed.hold()
    first.release()


def test_a_running_index_run_keeps_its_short_lease_and_a_lease_it_left_behind_lapses_within_one(
        redis_client, settings):
    """Measured in the Sentinel failover scenario (tests/ha): the promoted replica held a lock whose
    run had released it on the old master, and every index run found it held for 150 s, as long as
    the lock lasted to cover one bulk request with all its retries."""
    from workers.index.runner import IndexRunner

    namespace, lease = f"{settings.index_prefix}lease-", 0.4
    run = IndexRunner(redis_client, namespace, "lease-a@test", lease=lease)
    successor = IndexRunner(redis_client, namespace, "lease-b@test", lease=lease)
    assert run.hold()
    with run.renewed():  # a bulk request that takes many leases: the run's thread keeps the lock
        until = time.monotonic() + 6 * lease
        while time.monotonic() < until:
            assert not successor.hold()
            time.sleep(lease / 8)
    # The run ended and its release never took effect (it met the old master): nothing renews the lease.
    assert not successor.hold()
    await_condition(successor.hold, 5 * lease, what="the lease left behind lapses")
    successor.release()


def test_an_index_run_that_finds_a_lease_with_no_run_behind_it_leaves_the_trigger_no_longer_than_the_lease(
        redis_client, settings):
    """Measured in the Sentinel failover scenario (tests/ha): the promoted replica brought back a lease and
    the index trigger, both released on the old master; the redelivered index run found the lease held
    and left, and the staged pages waited for the trigger's minute, 40 s after the lease had gone."""
    from workers.index.runner import IndexRunner
    from workers.index.tasks import _leave_to_holder

    namespace = f"{settings.index_prefix}behind-"
    queue = Staging(redis_client, namespace)
    assert queue.claim_trigger(ttl=60)
    IndexRunner(redis_client, namespace, "gone@test", lease=3).hold()  # released on the old master
    redelivered = IndexRunner(redis_client, namespace, "next@test")
    assert not redelivered.hold()
    assert _leave_to_holder(queue, redelivered) == 0
    assert 0 < redis_client.ttl(Keys(namespace).index_trigger) <= 5
    redis_client.delete(Keys(namespace).index_trigger, Keys(namespace).index_runner)


def test_a_lost_index_run_blocks_no_other_once_its_lock_lapses_and_never_writes_after(
        redis_client, settings, es, names):
    """Measured: a run cut off by a Redis restart kept its lock for 300 s, and every run
    housekeeping started meanwhile found it held and indexed nothing."""
    from workers.index.indices import ensure_indices
    from workers.index.runner import IndexRunner
    from workers.index.tasks import BatchWriter, LostRunnerLock, _keep

    ensure_indices(es, names, settings.schemas_dir)
    url = "https://example.org/lost-run"
    namespace = f"{settings.index_prefix}lost-"  # out of sight of this module's worker
    queue = Staging(redis_client, namespace)
    queue.put(doc_id(url), _document_entry(url, 301), trigger_ttl=60)
    lost = IndexRunner(redis_client, namespace, "lost@test", lease=0.3)  # nothing renews it
    assert lost.hold()
    successor = IndexRunner(redis_client, namespace, "next@test", lease=30)
    assert not successor.hold()
    await_condition(successor.hold, 5, what="the lost run's lock lapses")
    # The lost run wakes up: it must not write what it took, which stays staged for its successor.
    with pytest.raises(LostRunnerLock):
        BatchWriter(es, settings, queue, keep_lock=lambda: _keep(lost)).write(queue.take(10), careful=False)
    assert queue.size() == 1 and indexed_count(es, names, [url]) == 0
    written = BatchWriter(es, settings, queue, keep_lock=lambda: _keep(successor)).write(queue.take(10), False)
    assert written.written == 1 and queue.size() == 0
    successor.release()
