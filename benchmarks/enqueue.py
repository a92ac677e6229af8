"""Enqueueing a crawl: `start_crawl` against a bare loop of `apply_async`, in the same run.

`report-ingest crawl` spends its time here before the first page is fetched, on the same
cores as the workers. Against a Redis of its own (started for the run unless REDIS_URL is
set), for N URLs and a few rounds, prints URLs/second of:
1. bare: `fetch_page.apply_async` once per URL, each acquiring its producer (what
   `start_crawl` did before it shared one producer);
2. `start_crawl`: normalising, de-duplication through the crawl tracker, the crawl's
   options, and one message per URL through one producer.
The queue is emptied between runs; no worker consumes.

    python benchmarks/enqueue.py [--urls 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--urls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from devtools import services

    started = None
    if not os.environ.get("REDIS_URL"):
        started = services.start_redis(Path(tempfile.mkdtemp(prefix="ri-bench-")))
        os.environ["REDIS_URL"] = started.url
    os.environ.setdefault("INDEX_PREFIX", "bench-enqueue-")
    from workers.app import app
    from workers.task_names import FETCH_QUEUE
    from workers.clients import get_redis
    from workers.crawl.start import start_crawl
    from workers.crawl.tasks import fetch_page
    from workers.settings import get_settings

    app.conf.broker_url = os.environ["REDIS_URL"]
    settings, client = get_settings(), get_redis()
    urls = [f"http://127.0.0.1:9/docid/report-{i:05d}.html" for i in range(args.urls)]

    def bare() -> None:
        for url in urls:
            fetch_page.apply_async((url, "bench"))

    def pipeline() -> None:
        start_crawl(settings, urls, allow_networks=["127.0.0.1/32"])

    rates: dict[str, list[float]] = {"bare apply_async loop": [], "start_crawl": []}
    try:
        for _round in range(args.rounds):
            for name, run in (("bare apply_async loop", bare), ("start_crawl", pipeline)):
                client.flushdb()
                began = time.perf_counter()
                run()
                elapsed = time.perf_counter() - began
                assert client.llen(FETCH_QUEUE) == args.urls, "every URL is on the queue"
                rates[name].append(args.urls / elapsed)
                print(f"{name:24} {args.urls / elapsed:8.0f} URLs/s", file=sys.stderr)
    finally:
        if started is not None:
            started.stop()
    medians = {name: statistics.median(values) for name, values in rates.items()}
    for name, rate in medians.items():
        print(f"{name:24} {rate:8.0f} URLs/s (median of {args.rounds}; {1000 / rate:.2f} ms per URL)")
    print(f"ratio start_crawl / bare loop: {medians['start_crawl'] / medians['bare apply_async loop']:.2f}x")


if __name__ == "__main__":
    main()
