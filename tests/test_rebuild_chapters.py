"""A rebuild never brings back a PDF chapter the crawl deleted during it: the catch-up deletes the
target's chapters of a PDF that it no longer makes (real Elasticsearch and Redis)."""

from __future__ import annotations

import uuid

from tests.pdfs import SAMPLE, report_pdf
from workers.crawl.http import Page
from workers.index.bulk import bulk_write
from workers.index.tasks import indices_ready
from workers.parse import parse_documents
from workers.rebuild.chunks import catch_up
from workers.rebuild.context import Context
from workers.rebuild.reading import raw_checkpoint
from workers.rebuild.state import REPARSE, RunState
from workers.records import RawPage
from workers.urls import doc_id


def test_the_catch_up_deletes_a_chapter_the_crawl_deleted_during_the_rebuild(settings, es, names, redis_client):
    indices_ready(settings.index_prefix, str(settings.schemas_dir))
    url = f"https://www.state.gov/uploads/{uuid.uuid4().hex[:8]}/tip-report.pdf"
    before = [d.indexable("2025-01-01T00:00:00+00:00") for d in parse_documents(report_pdf(SAMPLE), url)]
    # A chunk read the PDF before the crawl fetched it again, and created every chapter it had then.
    target = f"{settings.index_prefix}rebuild-target-{uuid.uuid4().hex[:6]}"
    es.indices.create(index=target, mappings=es.indices.get_mapping(index=names.reports).popitem()[1]["mappings"])
    try:
        bulk_write(es, [{"_op_type": "create", "_index": target, "_id": d.id, "_source": d.to_source()}
                        for d in before])
        checkpoint = raw_checkpoint(es, names)
        # Meanwhile the crawl fetched the PDF again: Somalia's chapter is gone from it.
        body = report_pdf(SAMPLE[:-1])
        page = Page(url=url, final_url=url, status=200, content_type="application/pdf", etag=None, last_modified=None,
                    body=body, fetched_at="2025-06-01T00:00:00+00:00")
        after = parse_documents(body, url)
        raw = RawPage.of(page)
        raw.canonical_url, raw.source = after[0].container_url, "pdf"
        bulk_write(es, raw.to_actions(names.raw_pages, doc_id(url)))
        state = RunState(run_id=uuid.uuid4().hex, mode=REPARSE, chunks=1, target=target, old=names.reports,
                         started_at="2025-06-01T00:00:00+00:00", checkpoint=checkpoint)
        assert catch_up(Context(es, redis_client, settings), state, guard=lambda: None) >= 1
        es.indices.refresh(index=target)
        held = {hit["_id"] for hit in es.search(index=target, size=100, query={"match_all": {}})["hits"]["hits"]}
        assert held == {d.id for d in after}
        assert {d.id for d in before} - held  # the chapter that went is not brought back
    finally:
        es.indices.delete(index=target)
