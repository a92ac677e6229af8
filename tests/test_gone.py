"""Gone pages, flagged rather than deleted, stay in the index but out of search (real Elasticsearch)."""

from tests.corpus import report_page
from workers.index.bulk import bulk_write
from workers.index.indices import ensure_indices
from workers.parse import parse_page
from workers.search.faceted import run_search
from tests.helpers import write_staged
from workers.records import GoneEntry


def test_flagged_gone_page_leaves_search_results(es, names, settings, redis_client):
    ensure_indices(es, names, settings.schemas_dir)
    urls = [f"https://example.org/docid/{i}.html" for i in range(3)]
    docs = [parse_page(report_page(i).html, url).indexable("2025-01-01T00:00:00+00:00").to_source()
            for i, url in enumerate(urls)]
    bulk_write(es, [{"_op_type": "index", "_index": names.reports, "_id": d["id"], "_source": d} for d in docs])
    es.indices.refresh(index=names.reports)
    assert run_search(es, names.reports)["total"] == 3

    gone = docs[0]
    written = write_staged(es, settings, redis_client, [GoneEntry(urls[0], None, None, [gone["id"]], "flag")])
    assert written == 1
    es.indices.refresh(index=names.reports)
    assert es.get(index=names.reports, id=gone["id"])["_source"]["gone"] is True  # kept, flagged
    result = run_search(es, names.reports)
    assert result["total"] == 2 and gone["id"] not in {h["id"] for h in result["hits"]}
    assert sum(result["facets"]["tier"].values()) == 2  # facets do not count it either

    write_staged(es, settings, redis_client, [GoneEntry(urls[1], None, None, [docs[1]["id"]], "delete")])
    es.indices.refresh(index=names.reports)
    assert not es.exists(index=names.reports, id=docs[1]["id"])
