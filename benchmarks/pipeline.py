"""End-to-end pipeline throughput against a bare single-process loop, in the same run.

Serves N generated report pages from a local HTTP server, then
1. baseline: one process fetches each page (one requests Session), parses it,
   and bulk-writes the documents in chunks — no queue, no Redis, no retries;
2. pipeline: `report-ingest crawl` through Redis and a real Celery worker
   (fetch_page on the fetch queue, index_pending on the index queue).
Prints pages/second for both, their ratio, and the time per stage.

    python benchmarks/pipeline.py [--pages 2000] [--concurrency 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import requests  # noqa: E402

from tests.helpers import Worker  # noqa: E402
from tests.corpus import report_page  # noqa: E402
from tests.site import LocalSite, html  # noqa: E402
from devtools import services as devservices  # noqa: E402


def start_services() -> tuple[dict[str, str], list]:
    env, started = {}, []
    for var, start in (("REDIS_URL", devservices.start_redis), ("ELASTICSEARCH_URL", devservices.start_elasticsearch)):
        if os.environ.get(var):
            env[var] = os.environ[var]
            continue
        kwargs = {"echo": lambda m: print(m, file=sys.stderr)} if var == "ELASTICSEARCH_URL" else {}
        service = start(Path(tempfile.mkdtemp(prefix="ri-bench-")), **kwargs)
        started.append(service)
        env[var] = service.url
    return env, started


def use_env(env: dict[str, str]) -> None:
    from workers.clients import reset_clients

    os.environ.update(env)
    reset_clients()


def baseline(urls: list[str], prefix: str) -> dict[str, float]:
    from workers.clients import get_es
    from workers.index.indices import IndexNames, ensure_indices
    from workers.index.bulk import bulk_write
    from workers.parse import parse_page
    from workers.settings import get_settings

    settings = get_settings()
    names = IndexNames(prefix)
    es = get_es()
    ensure_indices(es, names, settings.schemas_dir)
    session = requests.Session()
    times = {"fetch": 0.0, "parse": 0.0, "index": 0.0}
    start = time.perf_counter()
    docs = []
    for url in urls:
        t0 = time.perf_counter()
        response = session.get(url, timeout=10)
        t1 = time.perf_counter()
        docs.append(parse_page(response.content, url, response.headers.get("Content-Type")))
        t2 = time.perf_counter()
        times["fetch"] += t1 - t0
        times["parse"] += t2 - t1
    t0 = time.perf_counter()
    actions = ({"_op_type": "index", "_index": names.reports, "_id": d.id, "_source": d.to_source()} for d in docs)
    bulk_write(es, actions, chunk_size=settings.bulk_chunk_size)
    times["index"] = time.perf_counter() - t0
    times["total"] = time.perf_counter() - start
    return times


def pipeline(urls: list[str], env: dict[str, str], concurrency: int) -> tuple[float, dict]:
    from workers.app import app
    from workers.clients import get_redis
    from workers.crawl.start import start_crawl
    from workers.tracking.progress import CrawlTracker
    from workers.crawl.progress import watch
    from workers.settings import get_settings
    from workers.timings import StageTimings

    app.conf.broker_url = env["REDIS_URL"]
    settings = get_settings()
    worker = Worker(env, concurrency=concurrency)
    try:
        start = time.perf_counter()
        plan = start_crawl(settings, urls, allow_networks=["127.0.0.1/32"])
        snap = watch(CrawlTracker(get_redis(), settings.index_prefix, plan.crawl_id),
                     echo=lambda m: print(m, file=sys.stderr))
        elapsed = time.perf_counter() - start
    finally:
        worker.stop()
    if snap.done != len(urls):
        raise SystemExit(f"pipeline finished {snap.done} of {len(urls)} pages: {snap.counts}")
    return elapsed, StageTimings(get_redis(), settings.index_prefix).summary()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=os.cpu_count() or 2, help="worker processes")
    args = parser.parse_args()

    env, started = start_services()
    site = LocalSite()
    try:
        for i in range(args.pages):
            page = report_page(i)
            site.routes[page.path] = html(page.html)
        urls = [site.url(path) for path in site.routes]
        size = sum(len(report_page(i).html) for i in range(min(args.pages, 50))) / min(args.pages, 50)

        use_env({**env, "INDEX_PREFIX": f"bench-base-{uuid.uuid4().hex[:6]}-"})
        base = baseline(urls, os.environ["INDEX_PREFIX"])
        # Politeness machinery runs (robots.txt, slots, leases) but does not throttle the local site.
        pipe_env = {**env, "INDEX_PREFIX": f"bench-pipe-{uuid.uuid4().hex[:6]}-",
                    "DEFAULT_HOST_RATE": "1000000", "DEFAULT_HOST_CONCURRENCY": "64"}
        use_env(pipe_env)
        elapsed, stages = pipeline(urls, pipe_env, args.concurrency)
    finally:
        site.close()
        for service in started:
            service.stop()

    n = args.pages
    print(f"\n{n} pages of ~{size / 1024:.1f} KB, {os.cpu_count()} cores, worker concurrency {args.concurrency}\n")
    print(f"{'run':34} {'seconds':>8} {'pages/s':>8} {'ratio':>6}")
    print(f"{'bare loop (fetch, parse, bulk)':34} {base['total']:8.2f} {n / base['total']:8.1f} {1:6.2f}x")
    print(f"{'pipeline (Redis, Celery, bulk)':34} {elapsed:8.2f} {n / elapsed:8.1f} {base['total'] / elapsed:6.2f}x")
    print("\ntime per stage (ms per page; pipeline stages summed over worker processes)")
    print(f"{'stage':8} {'bare':>8} {'pipeline':>9}")
    for stage in ("fetch", "parse", "index"):
        mine = stages.get(stage, {})
        per_page = 1000 * mine.get("seconds", 0) / n
        print(f"{stage:8} {1000 * base[stage] / n:8.2f} {per_page:9.2f}")


if __name__ == "__main__":
    main()
