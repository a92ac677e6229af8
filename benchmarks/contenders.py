"""The two yardsticks of the head-to-head benchmark, each run as its own process.

    python benchmarks/contenders.py bare|scrapy SPEC.json

Both fetch the URLs in SPEC, parse each page with the project's own `parse_page`,
add the fields the pipeline adds (`indexable`), and bulk-index the documents in
batches of SPEC's chunk size into SPEC's index. Both obey robots.txt, as the
pipeline always does:

- bare: one process, one requests.Session, one page after the other; robots.txt
  fetched once per origin and checked with Protego (the pipeline's parser);
- scrapy: a Scrapy spider that parses in its callback, and an item pipeline that
  bulk-indexes each full batch in Twisted's thread pool (so the reactor keeps
  fetching), with CONCURRENT_REQUESTS / CONCURRENT_REQUESTS_PER_DOMAIN from SPEC.

Protocol with the harness (so imports and start-up stay out of the measurement):
print "ready", wait for a line on stdin, run, print "done <json>", wait for stdin
to close, exit.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from elasticsearch import helpers  # noqa: E402

from workers.clients import get_es  # noqa: E402
from workers.parse import parse_page  # noqa: E402
from workers.crawl.robots import origin, product_token  # noqa: E402


def action(index: str, content: bytes, url: str, content_type: str | None) -> dict:
    document = parse_page(content, url, content_type).indexable(datetime.now(UTC).isoformat())
    return {"_op_type": "index", "_index": index, "_id": document.id, "_source": document.to_source()}


def bare(spec: dict) -> dict:
    import requests
    from protego import Protego

    es, session = get_es(), requests.Session()
    session.headers["User-Agent"] = spec["user_agent"]
    token = product_token(spec["user_agent"])
    rules: dict[str, Protego | None] = {}
    batch, stats = [], {"indexed": 0, "disallowed": 0}
    for url in spec["urls"]:
        site = origin(url)
        if site not in rules:
            robots = session.get(f"{site}/robots.txt", timeout=30)
            rules[site] = Protego.parse(robots.text) if robots.ok else None
        if rules[site] is not None and not rules[site].can_fetch(url, token):
            stats["disallowed"] += 1
            continue
        response = session.get(url, timeout=30)
        response.raise_for_status()
        batch.append(action(spec["index"], response.content, response.url, response.headers.get("Content-Type")))
        if len(batch) >= spec["chunk"]:
            stats["indexed"] += helpers.bulk(es, batch, chunk_size=spec["chunk"])[0]
            batch = []
    if batch:
        stats["indexed"] += helpers.bulk(es, batch, chunk_size=spec["chunk"])[0]
    return stats


def scrapy(spec: dict) -> dict:
    import scrapy as sc
    from scrapy.crawler import CrawlerProcess
    from scrapy.utils.defer import maybe_deferred_to_future
    from twisted.internet import defer, threads

    stats: dict = {"indexed": 0}

    class ReportSpider(sc.Spider):
        name = "reports"

        async def start(self):
            for url in spec["urls"]:
                yield sc.Request(url, callback=self.parse_report, dont_filter=True)

        def parse_report(self, response):
            content_type = response.headers.get("Content-Type")
            yield action(spec["index"], response.body, response.url, content_type and content_type.decode("latin-1"))

    class BulkIndex:
        def __init__(self) -> None:
            self.es, self.batch, self.pending = get_es(), [], []

        def process_item(self, item):
            self.batch.append(item)
            if len(self.batch) >= spec["chunk"]:
                self._flush()
            return item

        def _flush(self) -> None:
            batch, self.batch = self.batch, []
            done = threads.deferToThread(helpers.bulk, self.es, batch, chunk_size=spec["chunk"])
            done.addCallback(lambda result: stats.__setitem__("indexed", stats["indexed"] + result[0]))
            self.pending.append(done)

        async def close_spider(self):
            if self.batch:
                self._flush()
            await maybe_deferred_to_future(defer.DeferredList(self.pending, fireOnOneErrback=True, consumeErrors=True))

    process = CrawlerProcess({
        "USER_AGENT": spec["user_agent"],
        "ROBOTSTXT_OBEY": True,
        "CONCURRENT_REQUESTS": spec["concurrent_requests"],
        "CONCURRENT_REQUESTS_PER_DOMAIN": spec["per_host"],
        "DOWNLOAD_DELAY": 0,
        "AUTOTHROTTLE_ENABLED": False,
        "TELNETCONSOLE_ENABLED": False,
        "LOG_LEVEL": "INFO",
        "ITEM_PIPELINES": {BulkIndex: 300},
    })
    process.crawl(ReportSpider)
    process.start()
    return stats


def main() -> None:
    kind, spec_file = sys.argv[1], Path(sys.argv[2])
    spec = json.loads(spec_file.read_text())
    run = {"bare": bare, "scrapy": scrapy}[kind]
    print("ready", flush=True)
    sys.stdin.readline()
    stats = run(spec)
    print("done " + json.dumps(stats), flush=True)
    sys.stdin.read()


if __name__ == "__main__":
    main()
