"""Index writes never go backwards: documents and raw pages carry their fetch time as an external
version, so a late older fetch of a page (two index runs, a lock that lapsed mid-request) never
overwrites a newer one, and the crawl state keeps the newer fetch's validators. Real Elasticsearch
and Redis."""

from __future__ import annotations

import uuid

from tests.corpus import report_page
from workers.crawl.http import Page
from workers.tracking.state import CrawlState
from workers.index.staging import Staging
from workers.index.tasks import BatchWriter, indices_ready
from workers.parse import parse_page
from workers.records import DocumentEntry, RawPage
from workers.urls import doc_id


def fetched(url: str, n: int, fetched_at: str, etag: str) -> DocumentEntry:
    body = report_page(n).html
    page = Page(url=url, final_url=url, status=200, content_type="text/html; charset=utf-8", etag=etag,
                last_modified=None, body=body, fetched_at=fetched_at)
    document = parse_page(body, url).indexable(page.fetched_at)
    raw = RawPage.of(page)
    raw.canonical_url, raw.source = document.canonical_url, document.source
    return DocumentEntry(url, None, None, [document], raw)


def write(settings, es, redis_client, entry: DocumentEntry):
    queue = Staging(redis_client, settings.index_prefix)
    queue.put(entry.key, entry.to_json(), trigger_ttl=60)
    result = BatchWriter(es, settings, queue).write(queue.take(10), careful=False)
    assert queue.size() == 0  # done either way: written, or superseded by what is there
    return result


def test_a_late_older_fetch_never_overwrites_a_newer_document(settings, es, names, redis_client):
    indices_ready(settings.index_prefix, str(settings.schemas_dir))
    url = f"https://example.org/versions-{uuid.uuid4().hex[:8]}"
    newer = fetched(url, 401, "2025-06-01T00:00:00+00:00", '"new"')
    older = fetched(url, 402, "2025-01-01T00:00:00+00:00", '"old"')
    write(settings, es, redis_client, newer)
    result = write(settings, es, redis_client, older)  # arrives late
    assert result.written == 1  # not a failure: what is there is newer
    document = es.get(index=names.reports, id=newer.document_ids[0])["_source"]
    assert document["fetched_at"] == "2025-06-01T00:00:00+00:00" and document["title"] == newer.documents[0].title
    raw = es.get(index=names.raw_pages, id=doc_id(url))["_source"]
    assert raw["fetched_at"] == "2025-06-01T00:00:00+00:00"
    assert CrawlState(redis_client, settings.index_prefix).get(url).etag == '"new"'
    assert not es.exists(index=names.failures, id=doc_id(url))
    # The same fetch written twice (a redelivered run) is written again, not refused.
    assert write(settings, es, redis_client, newer).written == 1
