"""Zero-downtime re-indexing from stored raw pages, end to end: local site, real Redis, worker and Elasticsearch.

How "the parser output changed" is simulated without touching the parser: after
the crawl, every live document is rewritten with an older `parser_version`, as
if an older parser had made it. A re-parse must bring every document back to
`workers.parse.PARSER_VERSION` - which it can only do by parsing the stored raw
pages again, since the live documents say otherwise.

Chunks run on the worker's `reindex` queue. Tests that need the rebuild to be
provably "in the middle" stop the worker consuming that queue (Celery's
cancel_consumer), so the coordinator has created the target and switched on
dual writes but no chunk has run; they resume consumption when ready.
"""

from __future__ import annotations

import signal
import subprocess
import threading

import pytest
from elasticsearch.helpers import bulk

from tests import reindexing
from tests.helpers import cli
from tests.corpus import report_page
from tests.reindexing import (  # noqa: F401
    consumer, documents, expected_ids, live, rebuild_running, single_slot_worker, wait_until,
)
from tests.site import LocalSite, html
from workers.parse import PARSER_VERSION
from workers.task_names import FINISH_REBUILD
from workers.urls import doc_id, normalize_url

REPORT_PAGES = 30
NEW_PAGES = range(500, 506)  # crawled while a rebuild runs
OLD_VERSION = "0.0.0-older-parser"
CHUNKS = "8"


def generic_page(i: int) -> bytes:
    text = (f"Field notes {i}: trafficking of workers into brick kilns and fishing fleets, "
            "with debt bondage reported by every shelter we visited. ") * 4
    return (f"<html><head><title>Labour rights review {i}</title></head><body><article>"
            f"<h1>Labour rights review {i}</h1><p>{text}</p></article></body></html>").encode()


@pytest.fixture(scope="module")
def site():
    site = LocalSite()
    for i in [*range(REPORT_PAGES), *NEW_PAGES]:
        page = report_page(i)
        site.routes[page.path] = html(page.html)
    for i in range(3):
        site.routes[f"/generic/{i}"] = html(generic_page(i))
    site.routes["/empty"] = html("<html><head><title>Nothing here</title></head><body></body></html>")
    site.initial = [site.url(report_page(i).path) for i in range(REPORT_PAGES)]
    site.initial += [site.url(f"/generic/{i}") for i in range(3)]
    site.new = [site.url(report_page(i).path) for i in NEW_PAGES]
    yield site
    site.close()


@pytest.fixture(scope="module")
def crawled(site, worker, test_env):
    result = cli(test_env, "crawl", *site.initial, site.url("/empty"), "--allow-private-networks", "--timeout", "60", timeout=90)
    assert result.returncode == 0 and "1 failed" in result.stdout, result.stderr
    return result


def age_documents(es, names) -> int:
    """Make every live document look as if an older parser had written it."""
    docs = [{**doc, "parser_version": OLD_VERSION} for doc in documents(es, names)]
    bulk(es, ({"_index": names.reports, "_id": d["id"], "_source": d} for d in docs), refresh=True)
    return len(docs)


def start_reindex(env: dict[str, str], *args: str) -> subprocess.Popen:
    return reindexing.start_reindex(env, "--chunks", CHUNKS, *args)


class Searcher(threading.Thread):
    """Searches the alias without pause, keeping every total and every error."""

    def __init__(self, es, alias: str):
        super().__init__(daemon=True)
        self.es, self.alias = es, alias
        self.totals: list[int] = []
        self.errors: list[Exception] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                response = self.es.search(index=self.alias, query={"match": {"body": "trafficking"}},
                                          size=0, track_total_hits=True)
                self.totals.append(response["hits"]["total"]["value"])
            except Exception as exc:  # noqa: BLE001 - every kind of failed search is the finding
                self.errors.append(exc)

    def stop(self) -> None:
        self.stopped.set()
        self.join(30)


def test_reparse_swaps_alias_with_zero_downtime_while_crawling(
        crawled, site, es, names, redis_client, test_env, consumer):
    aged = age_documents(es, names)
    assert aged == len(site.initial)
    old_index = live(es, names)
    hits_before = {path: len(times) for path, times in site.hits.items()}
    searcher = Searcher(es, names.reports)
    searcher.start()

    consumer.pause()
    proc = start_reindex(test_env, "--reparse")
    wait_until(rebuild_running(redis_client, names))
    # A crawl in the middle of the rebuild: its documents must reach the new index too.
    crawl = cli(test_env, "crawl", *site.new, "--allow-private-networks", "--timeout", "60", timeout=90)
    assert crawl.returncode == 0, crawl.stderr
    consumer.resume()
    out, err = proc.communicate(timeout=120)
    searcher.stop()

    assert proc.returncode == 0, err
    assert "docs/s" in err and "ETA" in err and "chunks 8/8" in err
    assert "reindex " in out and "parse failures" in out

    # Zero failed or empty searches, and never fewer results than before.
    assert searcher.totals and not searcher.errors
    assert min(searcher.totals) >= aged

    # The alias moved to one new index; the old one is gone.
    new_index = live(es, names)
    assert new_index != old_index and not es.indices.exists(index=old_index)
    meta = es.indices.get_mapping(index=new_index)[new_index]["mappings"]["_meta"]
    assert meta["parser_version"] == PARSER_VERSION

    # Every document re-parsed, none lost, none twice.
    docs = documents(es, names)
    assert {d["parser_version"] for d in docs} == {PARSER_VERSION}
    ids = [d["id"] for d in docs]
    assert len(ids) == len(set(ids)) == len({d["canonical_url"] for d in docs})
    assert set(ids) == expected_ids(site.initial + site.new)

    # No fetch during the rebuild other than the concurrent crawl's own pages.
    crawl_paths = {p for p in site.hits if site.url(p) in site.new}
    assert {p: len(t) for p, t in site.hits.items() if p not in crawl_paths} == hits_before

    # The unparseable page is still a parse failure; the rebuild's Redis state is gone.
    failure = es.get(index=names.failures, id=doc_id(normalize_url(site.url("/empty"))))["_source"]
    assert failure["stage"] == "parse"
    assert not redis_client.keys(f"ri:{names.prefix}reindex:*")


def test_killed_rebuild_keeps_old_index_serving_and_resumes(
        crawled, site, es, names, redis_client, test_env, consumer):
    from workers.keys import Keys
    from workers.rebuild.state import load_run

    total = age_documents(es, names)
    old_index = live(es, names)
    consumer.pause()
    proc = start_reindex(test_env, "--lock-ttl", "2")
    wait_until(rebuild_running(redis_client, names))
    state = load_run(redis_client, Keys(names.prefix))
    wait_until(lambda: redis_client.llen("reindex") == int(CHUNKS))

    # One rebuild at a time.
    second = cli(test_env, "reindex", "--lock-wait", "0")
    assert second.returncode == 1 and "another rebuild is running" in second.stderr

    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # The crash left the old index serving everything; the half-built one waits for --resume.
    assert live(es, names) == old_index
    assert es.count(index=names.reports)["count"] == total
    assert es.indices.exists(index=state.target)

    consumer.resume()  # the dead coordinator's chunks may run now, or not: resume copes either way
    result = cli(test_env, "reindex", "--resume", "--lock-ttl", "2")
    assert result.returncode == 0, result.stderr
    assert f"resuming run {state.run_id}" in result.stderr
    assert live(es, names) == state.target and not es.indices.exists(index=old_index)
    docs = documents(es, names)
    assert {d["parser_version"] for d in docs} == {PARSER_VERSION}
    assert {d["id"] for d in docs} == expected_ids(site.initial + site.new)


def test_rerun_after_crash_starts_over_and_cleans_up(crawled, site, es, names, redis_client, test_env, consumer):
    from workers.keys import Keys
    from workers.rebuild.state import load_run

    age_documents(es, names)
    consumer.pause()
    proc = start_reindex(test_env, "--lock-ttl", "1")
    wait_until(rebuild_running(redis_client, names))
    abandoned = load_run(redis_client, Keys(names.prefix)).target
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    consumer.resume()

    result = cli(test_env, "reindex", "--lock-ttl", "1")
    assert result.returncode == 0, result.stderr
    assert "discarding unfinished run" in result.stderr
    assert not es.indices.exists(index=abandoned)
    assert {d["parser_version"] for d in documents(es, names)} == {PARSER_VERSION}


def test_source_filter_reparses_only_that_parser_and_copies_the_rest(crawled, site, es, names, test_env):
    age_documents(es, names)
    result = cli(test_env, "reindex", "--source", "generic", "--chunks", CHUNKS)
    assert result.returncode == 0, result.stderr
    versions = {d["source"]: set() for d in documents(es, names)}
    for d in documents(es, names):
        versions[d["source"]].add(d["parser_version"])
    assert versions == {"generic": {PARSER_VERSION}, "refworld": {OLD_VERSION}}
    assert {d["id"] for d in documents(es, names)} == expected_ids(site.initial + site.new)


def test_copy_as_celery_task_keeps_documents_and_old_index(crawled, site, es, names, redis_client, test_env):
    from workers.keys import Keys
    from workers.rebuild.tasks import rebuild_index

    before = {d["id"]: d for d in documents(es, names)}
    old_index = live(es, names)
    rebuild_index.apply_async(kwargs={"mode": "copy", "keep_old": True, "chunks": 4})
    wait_until(lambda: live(es, names) != old_index and not redis_client.exists(Keys(names.prefix).rebuild_run), 60)
    assert {d["id"]: d for d in documents(es, names)} == before  # as they were, parser versions included
    assert es.indices.exists(index=old_index)

    listing = cli(test_env, "indices")
    assert listing.returncode == 0, listing.stderr
    lines = {line[2:].split()[0]: line for line in listing.stdout.splitlines() if "-reports-v" in line}
    assert lines[live(es, names)].startswith("*") and PARSER_VERSION in lines[live(es, names)]
    assert not lines[old_index].startswith("*")
    es.indices.delete(index=old_index)


def test_detached_rebuild_needs_one_worker_slot(crawled, site, es, names, redis_client, test_env, consumer):
    """`reindex --detach` on `report-ingest worker -Q reindex -c 1`: no rebuild task waits for another."""
    from workers.keys import Keys

    age_documents(es, names)
    old_index = live(es, names)
    consumer.pause()  # the module's worker takes no rebuild task: the single slot runs them all
    with single_slot_worker(test_env) as log:
        queued = cli(test_env, "reindex", "--detach", "--chunks", CHUNKS)
        assert queued.returncode == 0 and "rebuild queued" in queued.stdout, queued.stderr
        wait_until(lambda: live(es, names) != old_index and not redis_client.exists(Keys(names.prefix).rebuild_run),
                   120)
        assert FINISH_REBUILD in log.read_text()  # the chord's callback completed it
    assert not es.indices.exists(index=old_index)
    docs = documents(es, names)
    assert {d["parser_version"] for d in docs} == {PARSER_VERSION}
    assert {d["id"] for d in docs} == expected_ids(site.initial + site.new)
