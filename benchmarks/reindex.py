"""Re-indexing throughput against a bare `helpers.streaming_bulk` copy, in the same run.

Seeds N generated report pages straight into Elasticsearch (raw pages and their
documents, no crawl), then times, against the same Redis, Elasticsearch and data:
1. bare copy: one process, `helpers.scan` of the live index -> `helpers.streaming_bulk`
   into a fresh index, then a refresh;
2. bare reparse: the same, but each stored raw page is parsed again on the way;
3. `reindex --copy`: the whole rebuild (lock, new index, chunks as Celery tasks on a
   real worker, settings restored, catch-up, verification, alias swap, old index deleted),
   coordinated by this process as the CLI does;
4. `reindex --reparse`: the same, parsing every stored raw page again;
5. `reindex --reparse --detach`: the same as Celery tasks alone (`rebuild_index`), timed from
   sending the task until the alias has moved and the run is gone.
Prints documents/second for each and the ratio to the bare copy.

    python benchmarks/reindex.py [--pages 5000] [--concurrency 2] [--chunks 16]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from elasticsearch.helpers import scan, streaming_bulk  # noqa: E402

from benchmarks.pipeline import start_services, use_env  # noqa: E402
from tests.helpers import Worker  # noqa: E402
from tests.corpus import report_page  # noqa: E402


def raw_pages(n: int) -> Iterator[tuple[str, dict]]:
    """(raw id, raw record) as the fetch task would have stored them."""
    from workers.urls import doc_id

    fetched_at = datetime.now(UTC).isoformat(timespec="seconds")
    for i in range(n):
        page = report_page(i)
        url = f"https://www.refworld.org{page.path}"
        yield doc_id(url), {
            "url": url, "canonical_url": url, "final_url": url, "source": "refworld", "status": 200,
            "content_type": "text/html; charset=utf-8", "etag": None, "last_modified": None,
            "fetched_at": fetched_at, "content_sha256": hashlib.sha256(page.html).hexdigest(),
            "content_length": len(page.html), "body": base64.b64encode(page.html).decode("ascii"),
        }


def document_from_raw(raw: dict) -> dict:
    """The source of the one report document of a generated (HTML) raw page, as a rebuild chunk makes it."""
    from workers.raw_pages import StoredPage
    from workers.rebuild.chunks import documents_from_raw

    (document,) = documents_from_raw(StoredPage.from_source(raw), base64.b64decode(raw["body"]))
    return document.to_source()


def seed(es, names, settings, n: int) -> None:
    from workers.index.indices import ensure_indices

    ensure_indices(es, names, settings.schemas_dir)

    def actions() -> Iterator[dict]:
        for raw_id, raw in raw_pages(n):
            document = document_from_raw(raw)
            yield {"_index": names.raw_pages, "_id": raw_id, "_source": raw}
            yield {"_index": names.reports, "_id": document["id"], "_source": document}

    for ok, item in streaming_bulk(es, actions(), chunk_size=settings.bulk_chunk_size):
        assert ok, item
    es.indices.refresh(index=[names.raw_pages, names.reports])


def bare(es, names, settings, source: str, to_document: Callable[[dict], dict]) -> tuple[float, int]:
    """One process: scan `source`, turn each hit into a document, streaming_bulk into a new index."""
    from workers.index.indices import create_index

    start = time.perf_counter()
    target = create_index(es, names, "reports", settings.schemas_dir, stamp=f"bare-{uuid.uuid4().hex[:6]}")

    def actions() -> Iterator[dict]:
        for hit in scan(es, index=source, size=500):
            document = to_document(hit)
            yield {"_index": target, "_id": document["id"], "_source": document}

    written = sum(ok for ok, _item in streaming_bulk(es, actions(), chunk_size=settings.bulk_chunk_size))
    es.indices.refresh(index=target)
    elapsed = time.perf_counter() - start
    es.indices.delete(index=target)
    return elapsed, written


def detached(es, names, client, mode: str, chunks: int, timeout: float = 1800) -> tuple[float, int]:
    """The rebuild sent as a task, as `reindex --detach` does: seconds until it has finished, documents."""
    from workers.app import app
    from workers.task_names import REBUILD_INDEX
    from workers.keys import Keys

    run_key = Keys(names.prefix).rebuild_run
    old = next(iter(es.indices.get_alias(name=names.reports)))
    start = time.perf_counter()
    app.send_task(REBUILD_INDEX, kwargs={"mode": mode, "chunks": chunks})
    while client.exists(run_key) or next(iter(es.indices.get_alias(name=names.reports))) == old:
        if time.perf_counter() - start > timeout:
            raise RuntimeError("the detached rebuild did not finish; see the worker's log")
        time.sleep(0.05)
    elapsed = time.perf_counter() - start
    es.indices.refresh(index=names.reports)
    return elapsed, es.count(index=names.reports)["count"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=os.cpu_count() or 2, help="worker processes")
    parser.add_argument("--chunks", type=int, default=16)
    args = parser.parse_args()

    env, started = start_services()
    env = {**env, "INDEX_PREFIX": f"bench-reindex-{uuid.uuid4().hex[:6]}-"}
    use_env(env)
    from workers.app import app
    from workers.clients import get_es, get_redis
    from workers.index.indices import IndexNames
    from workers.rebuild.coordinator import rebuild
    from workers.rebuild.state import COPY, REPARSE
    from workers.settings import get_settings

    app.conf.broker_url = env["REDIS_URL"]
    es, client, settings = get_es(), get_redis(), get_settings()
    names = IndexNames(settings.index_prefix)
    results: dict[str, tuple[float, int]] = {}
    worker = None
    try:
        seed(es, names, settings, args.pages)
        results["bare copy (scan + streaming_bulk)"] = bare(es, names, settings, names.reports, lambda h: h["_source"])
        results["bare reparse (scan, parse, bulk)"] = bare(
            es, names, settings, names.raw_pages, lambda h: document_from_raw(h["_source"]))
        worker = Worker(env, concurrency=args.concurrency)
        for mode in (COPY, REPARSE):
            start = time.perf_counter()
            summary = rebuild(es, client, settings, mode=mode, chunks=args.chunks,
                              echo=lambda m: print(m, file=sys.stderr))
            results[f"reindex --{mode} (Celery chunks, swap)"] = (time.perf_counter() - start, summary.documents)
        results["reindex --reparse --detach (tasks only)"] = detached(es, names, client, REPARSE, args.chunks)
    finally:
        if worker is not None:
            worker.stop()
        for service in started:
            service.stop()

    n = args.pages
    size = sum(len(report_page(i).html) for i in range(min(n, 50))) / min(n, 50)
    print(f"\n{n} documents (raw pages of ~{size / 1024:.1f} KB), {os.cpu_count()} cores, "
          f"worker concurrency {args.concurrency}, {args.chunks} chunks, bulk chunk {settings.bulk_chunk_size}\n")
    base = n / results["bare copy (scan + streaming_bulk)"][0]
    print(f"{'run':40} {'docs':>6} {'seconds':>8} {'docs/s':>8} {'vs bare copy':>12}")
    for name, (seconds, docs) in results.items():
        print(f"{name:40} {docs:6} {seconds:8.2f} {docs / seconds:8.1f} {docs / seconds / base:11.2f}x")


if __name__ == "__main__":
    main()
