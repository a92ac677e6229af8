"""PDF reports through the whole pipeline, and one report across its copies: real Redis,
Elasticsearch, worker and a local site.

The site serves a full report (five country chapters; the demo site's sample), the same
bytes as application/octet-stream at another address, and an HTML copy of one chapter
(Mali 2019, as a mirror would republish it).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from tests.helpers import cli
from tests.corpus import report_page
from tests.pdfs import SAMPLE, report_pdf
from tests.site import LocalSite, html
from workers.tracking.state import CrawlState
from workers.urls import normalize_url

SAMPLE_PDF = Path(__file__).resolve().parent.parent / "deploy" / "demo-site" / "pdf" / "tip-2019-sample.pdf"
MALI_2019 = 357  # tests/corpus.py: Mali, 2019, Tier 2
EXTRA_ENV = {"MAX_PDF_BYTES": "200000"}


@pytest.fixture(scope="module")
def site():
    site = LocalSite()
    body = SAMPLE_PDF.read_bytes()
    site.state = {"report": body}
    site.routes["/tip-2019.pdf"] = lambda req: (
        (200, {"Content-Type": "application/pdf"}, site.state["report"]) if site.state["report"] is not None
        else (404, {"Content-Type": "text/html"}, b"<h1>gone</h1>"))
    site.routes["/download"] = html(body, content_type="application/octet-stream")
    site.routes["/huge.pdf"] = html(body + b"%" * 200_000, content_type="application/pdf")
    mali = report_page(MALI_2019)
    site.routes[mali.path] = html(mali.html)
    site.mali = site.url(mali.path)
    yield site
    site.close()


@pytest.fixture(scope="module")
def crawled(site, worker, test_env):
    urls = [site.url("/tip-2019.pdf"), site.url("/download"), site.url("/huge.pdf"), site.mali]
    result = cli(test_env, "crawl", *urls, "--allow-network", "127.0.0.1/32", "--timeout", "120", timeout=150)
    assert result.returncode == 0, result.stderr
    return result


def chapters(es, names, pdf_url: str) -> dict[str, dict]:
    es.indices.refresh(index=names.reports)
    hits = es.search(index=names.reports, size=50, query={"term": {"container_url": normalize_url(pdf_url)}})
    return {h["_source"]["country"]["name"] if h["_source"]["country"] else None: h["_source"]
            for h in hits["hits"]["hits"]}


def test_a_full_report_becomes_one_document_per_country_chapter(crawled, site, es, names):
    found = chapters(es, names, site.url("/tip-2019.pdf"))
    assert {name: (doc["tier"], doc["page_start"], doc["page_end"]) for name, doc in found.items()} == {
        "Mali": ("Tier 2", 5, 6), "Laos": ("Tier 2 Watch List", 7, 9), "Thailand": ("Tier 2", 10, 10),
        "Myanmar": ("Tier 3", 11, 11), "Somalia": ("Special Case", 12, 12)}
    mali = found["Mali"]
    assert mali["url"] == normalize_url(site.url("/tip-2019.pdf")) + "#page=5"
    assert mali["report_key"] == "trafficking-in-persons-2019-MLI"
    assert "source" in mali["trafficking_roles"] and mali["body"]


def test_a_pdf_served_as_octet_stream_is_read_by_its_signature(crawled, site, es, names):
    assert len(chapters(es, names, site.url("/download"))) == len(SAMPLE)


def test_the_raw_pdf_is_kept_for_rebuilds(crawled, site, es, names):
    from workers.raw_pages import full_body
    from workers.urls import doc_id

    key = doc_id(normalize_url(site.url("/tip-2019.pdf")))
    raw = es.get(index=names.raw_pages, id=key)["_source"]
    assert raw["source"] == "pdf" and raw["content_type"] == "application/pdf"
    assert full_body(es, names.raw_pages, key, raw) == SAMPLE_PDF.read_bytes()


def test_a_pdf_over_its_own_cap_is_a_failure_with_its_reason(crawled, site, es, names):
    es.indices.refresh(index=names.failures)
    record = es.get(index=names.failures, id=_key(site.url("/huge.pdf")))["_source"]
    assert record["reason"] == "too_large" and "200000" in record["detail"]


def test_search_shows_one_hit_per_report_with_its_copies(crawled, site, test_env):
    result = cli(test_env, "search", "--country", "Mali", "--json")
    assert result.returncode == 0, result.stderr
    hits = json.loads(result.stdout)["hits"]
    mali = [h for h in hits if h["report_key"] == "trafficking-in-persons-2019-MLI"]
    assert len(mali) == 1  # three copies, one report
    urls = {mali[0]["url"], *(c["url"] for c in mali[0]["copies"])}
    assert urls == {normalize_url(site.mali), normalize_url(site.url("/tip-2019.pdf")) + "#page=5",
                    normalize_url(site.url("/download")) + "#page=5"}
    assert not mali[0]["url"].endswith("#page=5")  # HTML over PDF
    every = json.loads(cli(test_env, "search", "--country", "Mali", "--all-copies", "--json").stdout)["hits"]
    assert len([h for h in every if h["report_key"] == "trafficking-in-persons-2019-MLI"]) == 3


def test_a_rebuild_reparses_a_pdf_stored_in_parts_into_its_chapters(crawled, site, es, names, test_env):
    from elasticsearch.helpers import bulk

    from workers.raw_pages import full_body, raw_actions

    url = site.url("/download")
    key = _key(url)
    raw = es.get(index=names.raw_pages, id=key)["_source"]
    # Stored again in parts of 4,000 characters, as a PDF over PART_CHARS (3 MiB) is.
    b64 = base64.b64encode(full_body(es, names.raw_pages, key, raw)).decode("ascii")
    bulk(es, raw_actions(names.raw_pages, key, {**raw, "body": b64}, part_chars=4_000), refresh=True)
    assert es.count(index=names.raw_pages, query={"term": {"part_of": key}})["count"] >= 2
    mali = chapters(es, names, url)["Mali"]
    es.delete(index=names.reports, id=mali["id"], refresh=True)  # only a re-parse brings it back

    result = cli(test_env, "reindex", "--reparse", "--chunks", "2", timeout=180)
    assert result.returncode == 0, result.stderr
    found = chapters(es, names, url)
    assert set(found) == {"Mali", "Laos", "Thailand", "Myanmar", "Somalia"}
    assert found["Mali"]["page_start"] == 5 and found["Mali"]["tier"] == "Tier 2"
    assert set(chapters(es, names, site.url("/tip-2019.pdf"))) == set(found)
    es.indices.refresh(index=names.failures)
    assert es.count(index=names.failures, query={"term": {"url": url}})["count"] == 0


def test_a_changed_pdf_replaces_its_chapters_and_a_gone_one_removes_them(crawled, site, es, names, test_env,
                                                                       redis_client, settings):
    url = site.url("/tip-2019.pdf")
    site.state["report"] = report_pdf(SAMPLE[:2])  # the next edition dropped three chapters
    result = cli(test_env, "crawl", url, "--allow-network", "127.0.0.1/32", "--timeout", "60", timeout=90)
    assert result.returncode == 0, result.stderr
    assert set(chapters(es, names, url)) == {"Mali", "Laos"}  # none left behind
    assert len(CrawlState(redis_client, settings.index_prefix).get(normalize_url(url)).document_ids) == 2

    site.state["report"] = None  # 404 on the next recheck
    result = cli(test_env, "crawl", url, "--allow-network", "127.0.0.1/32", "--timeout", "60", timeout=90)
    assert result.returncode == 0, result.stderr
    assert chapters(es, names, url) == {}
    result = cli(test_env, "reindex", "--reparse", timeout=180)
    assert result.returncode == 0, result.stderr
    assert chapters(es, names, url) == {}  # the raw PDF is kept, and no rebuild brings it back


def _key(url: str) -> str:
    from workers.urls import doc_id

    return doc_id(normalize_url(url))


def test_the_demo_site_serves_its_pdf_in_the_sitemap():
    from devtools.demo import serve_demo_site
    import urllib.request

    server = serve_demo_site(port=0)
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        sitemap = urllib.request.urlopen(f"{base}/sitemap.xml", timeout=5).read().decode()
        assert "/pdf/tip-2019-sample.pdf" in sitemap
        with urllib.request.urlopen(f"{base}/pdf/tip-2019-sample.pdf", timeout=5) as response:
            assert response.headers["Content-Type"] == "application/pdf"
            assert response.read() == SAMPLE_PDF.read_bytes()
    finally:
        server.shutdown()
        server.server_close()
