"""The failures index: every page that could not become a document (workers/records.py
`Failure`), read newest first for people, and all of them for `retry-failed`
(workers/retry_failed.py).

Before the first crawl the alias does not exist; nothing can have failed then, so
both read as empty rather than as an error.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from workers.index.indices import IndexNames
from workers.records import Failure

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

    from workers.es_read import Searcher


def recent_failures(es: Searcher, names: IndexNames, size: int = 20) -> list[Failure]:
    """The `size` newest failure records."""
    if not es.indices.exists_alias(name=names.failures):
        return []
    response = es.search(index=names.failures, size=size, sort=[{"failed_at": "desc"}])
    return [Failure.from_source(hit["_source"]) for hit in response["hits"]["hits"]]


@dataclass(frozen=True)
class FailedPage:
    """What `retry-failed` reads of a failure record: the page, and what tells its profile."""

    url: str
    crawl_id: str | None = None
    source: str | None = None

    @classmethod
    def from_source(cls, record: dict) -> FailedPage:
        return cls(record["url"], record.get("crawl_id"), record.get("source"))


def failed_pages(es: Elasticsearch, names: IndexNames) -> Iterator[FailedPage]:
    """Every failed page, in no particular order, reading only what FailedPage holds of each record."""
    if not es.indices.exists_alias(name=names.failures):
        return
    from elasticsearch.helpers import scan  # the full client's: `status` reads recent_failures without it

    for hit in scan(es, index=names.failures, _source=["url", "crawl_id", "source"]):
        yield FailedPage.from_source(hit["_source"])
