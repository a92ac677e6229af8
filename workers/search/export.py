"""`search --export csv|jsonl --output FILE`: every hit of a search, streamed to a file.

Past the result window too: the hits are walked with search_after over a point in time
(workers/search/paging.py), a page at a time, so memory holds one page whatever the count.
One row per report, its
best copy (collapsed on `report_key`, the walk sorted on that key, as Elasticsearch requires
to page collapsed hits), or one per copy with `all_copies` (over a point in time, so that
walk sees one state of the index however long it takes). The query and filters are the
search's own (workers/search/faceted.py), so an export holds exactly what `search` counts.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from typing import IO, TYPE_CHECKING

from workers.documents import ReportDocument
from workers.search.copies import MAX_COPIES, best_first
from workers.search.paging import pages_after

if TYPE_CHECKING:
    from workers.es_read import Searcher

COLUMNS = ("title", "publisher", "series", "year", "country", "tier", "url", "page_link", "fetched_at", "report_key")
FORMATS = ("csv", "jsonl")
_SOURCE = ["title", "publisher", "report_series", "report_year", "country", "tier", "url", "container_url",
           "page_start", "fetched_at", "report_key", "source", "id"]
# Hits per request: within the result window and a few MB of small fields.
MAX_PAGE = 1000


def citation(document: ReportDocument) -> dict:
    """The export's columns of one copy. `url` is the page or the whole PDF; `page_link` opens a
    PDF chapter at its page (`…pdf#page=N`), empty for a page of its own."""
    chapter = document.page_start is not None and document.container_url
    return {
        "title": document.title, "publisher": document.publisher,
        "series": document.report_series, "year": document.report_year,
        "country": document.country.name if document.country else None, "tier": document.tier,
        "url": document.container_url if chapter else document.url,
        "page_link": document.url if chapter else None,
        "fetched_at": document.fetched_at, "report_key": document.report_key,
    }


def walk(es: Searcher, index: str, request: dict, *, all_copies: bool, page: int) -> Iterator[dict]:
    """The citation of every hit of `request` (a search body: query, post_filter); `page` hits a
    request, at most the index's result window, which bounds the copies under a hit too."""
    common = {"query": request.get("query"), "post_filter": request.get("post_filter"), "source": _SOURCE}
    if all_copies:
        pages = pages_after(es, page, pit_of=index, sort=[{"id": "asc"}], **common)
    else:
        # Without a point in time, which would add its own tiebreaker to the sort: Elasticsearch pages
        # collapsed hits only when sorted on the collapse field alone. Report keys are unique per
        # hit, so the walk neither repeats nor skips a report.
        pages = pages_after(es, page, index=index, sort=[{"report_key": "asc"}], collapse={
            "field": "report_key", "inner_hits": {"name": "copies", "size": min(MAX_COPIES, page), "_source": _SOURCE,
                                                  "sort": [{"fetched_at": {"order": "desc"}}]}}, **common)
    with closing(pages):
        for hits in pages:
            for hit in hits:
                if all_copies:
                    yield citation(ReportDocument.from_hit(hit))
                else:
                    copies = [ReportDocument.from_hit(inner) for inner in hit["inner_hits"]["copies"]["hits"]["hits"]]
                    yield citation(best_first(copies)[0])


class Writer:
    """Rows to CSV (a header, then one line per hit) or JSON Lines."""

    def __init__(self, out: IO[str], fmt: str):
        if fmt not in FORMATS:
            raise ValueError(f"unknown export format {fmt!r}; one of {', '.join(FORMATS)}")
        self.out, self.fmt = out, fmt
        self.csv = csv.DictWriter(out, COLUMNS, lineterminator="\n") if fmt == "csv" else None
        if self.csv:
            self.csv.writeheader()

    def write(self, row: dict) -> None:
        if self.csv:
            self.csv.writerow(row)
        else:
            self.out.write(json.dumps(row, ensure_ascii=False) + "\n")


def export(rows: Iterator[dict], writer: Writer, total: int,
           progress: Callable[[int, int, float, bool], None] | None = None, every: int = 500) -> int:
    """Write every row; `progress(done, total, elapsed, final)` every `every` rows and at the end."""
    started, done = time.monotonic(), 0
    for row in rows:
        writer.write(row)
        done += 1
        if progress and done % every == 0:
            progress(done, total, time.monotonic() - started, False)
    if progress:
        progress(done, total, time.monotonic() - started, True)
    return done
