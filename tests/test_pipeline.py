"""End to end: a local site, real Redis, a real Celery worker, real Elasticsearch."""

from __future__ import annotations

import json

import pytest

from tests.corpus import report_page
from tests.helpers import cli
from tests.site import Request, LocalSite, html
from workers.records import fetch_version
from workers.urls import doc_id, normalize_url

GOOD_PAGES = 52
WIN1252_PAGE = (
    "<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=windows-1252\">"
    "<title>Refworld | U.S. Department of State 2004 Trafficking in Persons Report - Côte d’Ivoire</title>"
    "</head><body><h1>U.S. Department of State 2004 Trafficking in Persons Report - Côte d’Ivoire</h1>"
    "<div id=\"fulltext\"><p><b>Côte d’Ivoire (Tier 2)</b></p>"
    "<p>Côte d’Ivoire is a source, transit, and destination country for women and children "
    "trafficked for forced labor and sexual exploitation. The government’s “national committee” "
    "coordinated the response.</p></div></body></html>"
).encode("cp1252")


def flaky(req: Request):
    if req.hit == 1:
        return 500, {"Content-Type": "text/html"}, b"<h1>oops</h1>"
    return 200, {"Content-Type": "text/html; charset=utf-8"}, report_page(900).html


def busy(req: Request):
    if req.hit == 1:
        return 503, {"Content-Type": "text/html", "Retry-After": "1"}, b"<h1>busy</h1>"
    return 200, {"Content-Type": "text/html; charset=utf-8"}, report_page(901).html


def slow(req: Request):
    import time

    time.sleep(4)  # past READ_TIMEOUT (1.5 s) on every attempt
    return 200, {"Content-Type": "text/html"}, report_page(902).html


@pytest.fixture(scope="module")
def site():
    site = LocalSite()
    pages = [report_page(i) for i in range(GOOD_PAGES)]
    for page in pages:
        site.routes[page.path] = html(page.html)
    site.routes |= {
        "/flaky": flaky,
        "/busy": busy,
        "/slow": slow,
        "/loop-a": html(b"", status=302, Location="/loop-b"),
        "/loop-b": html(b"", status=302, Location="/loop-a"),
        # PDFs are read (tests/test_pdf_pipeline.py); a spreadsheet is not.
        "/report.xlsx": html(b"PK\x03\x04 not a page", content_type="application/vnd.ms-excel"),
        "/huge": html(report_page(903).html + b"<!--" + b"x" * 400_000 + b"-->"),
        "/win1252": html(WIN1252_PAGE, content_type="text/html"),
    }
    site.good = [site.url(p.path) for p in pages] + [site.url(p) for p in ("/flaky", "/busy", "/win1252")]
    site.bad = {
        site.url("/missing"): "http_404",
        site.url("/slow"): "timeout",
        site.url("/loop-a"): "redirect_loop",
        site.url("/report.xlsx"): "not_html",
        site.url("/huge"): "too_large",
    }
    yield site
    site.close()


@pytest.fixture(scope="module")
def first_crawl(site, worker, test_env):
    urls = site.good + list(site.bad)
    # Duplicates in other spellings must collapse into one URL each.
    urls += [site.good[0] + "#section", site.good[1].replace("http://", "HTTP://")]
    result = cli(test_env, "crawl", *urls, "--allow-private-networks", "--timeout", "150", timeout=200)
    return result


def _ids(es, index):
    from elasticsearch.helpers import scan

    return [hit["_id"] for hit in scan(es, index=index, _source=False)]


def test_crawl_reports_progress_and_summary(first_crawl, site):
    assert first_crawl.returncode == 0, first_crawl.stderr
    total = len(site.good) + len(site.bad)
    assert f"queued {total} URLs (2 duplicates dropped" in first_crawl.stderr
    assert "pages/s" in first_crawl.stderr and "ETA" in first_crawl.stderr
    assert f"{total} URLs, {len(site.good)} indexed, {len(site.bad)} failed, 0 unchanged" in first_crawl.stdout
    assert "0 unfinished" in first_crawl.stdout


def test_every_good_page_indexed_exactly_once(first_crawl, site, es, names):
    es.indices.refresh(index=names.reports)
    ids = _ids(es, names.reports)
    assert len(ids) == len(set(ids)) == len(site.good)
    assert set(ids) == {doc_id(normalize_url(u)) for u in site.good}


def test_each_bad_url_recorded_with_its_reason(first_crawl, site, es, names):
    es.indices.refresh(index=names.failures)
    hits = es.search(index=names.failures, size=100)["hits"]["hits"]
    reasons = {h["_source"]["url"]: h["_source"]["reason"] for h in hits}
    assert reasons == {normalize_url(u): r for u, r in site.bad.items()}
    slow = next(h["_source"] for h in hits if h["_source"]["reason"] == "timeout")
    assert slow["attempts"] == 3 and slow["stage"] == "fetch"


def test_retries_recover_and_honour_retry_after(first_crawl, site):
    assert len(site.hits["/flaky"]) == 2
    first, second = site.hits["/busy"]
    assert second - first >= 1.0  # Retry-After: 1


def test_meta_charset_page_decoded_without_mojibake(first_crawl, site, es, names):
    doc = es.get(index=names.reports, id=doc_id(normalize_url(site.url("/win1252"))))["_source"]
    assert "Côte d’Ivoire" in doc["title"]
    assert "“national committee”" in doc["body"]
    assert doc["country"]["iso2"] == "CI"


def test_raw_pages_kept_with_fetch_metadata(first_crawl, site, es, names):
    import base64
    import hashlib

    raw = es.get(index=names.raw_pages, id=doc_id(normalize_url(site.good[0])))["_source"]
    body = base64.b64decode(raw["body"])
    assert hashlib.sha256(body).hexdigest() == raw["content_sha256"]
    assert raw["status"] == 200 and raw["fetched_at"]


def test_second_crawl_adds_no_duplicates(first_crawl, site, es, names, test_env):
    before = es.count(index=names.reports)["count"]
    again = site.good[:10]
    result = cli(test_env, "crawl", *again, "--allow-private-networks", "--timeout", "60", timeout=90)
    assert result.returncode == 0, result.stderr
    assert "10 URLs, 0 indexed, 0 failed, 10 unchanged" in result.stdout  # same bytes: not re-indexed
    first = es.get(index=names.reports, id=doc_id(normalize_url(again[0])))["_source"]["fetched_at"]
    forced = cli(test_env, "crawl", *again, "--allow-private-networks", "--force", "--timeout", "60", timeout=90)
    assert "10 URLs, 10 indexed" in forced.stdout, forced.stderr
    es.indices.refresh(index=names.reports)
    assert es.count(index=names.reports)["count"] == before
    document = es.get(index=names.reports, id=doc_id(normalize_url(again[0])))
    # Overwritten by the forced crawl, not duplicated: its fetch time is the document's version now.
    assert document["_source"]["fetched_at"] > first
    assert document["_version"] == fetch_version(document["_source"]["fetched_at"])


def test_worker_still_healthy(first_crawl, worker):
    assert worker.process.poll() is None
    assert worker.ping()


def test_status_and_failures_commands(first_crawl, site, test_env):
    status = cli(test_env, "status")
    assert status.returncode == 0, status.stderr
    assert f"{test_env['INDEX_PREFIX']}reports" in status.stdout
    assert "fetch" in status.stdout and "ms/item" in status.stdout
    failures = cli(test_env, "failures", "--json")
    reasons = {row["reason"] for row in json.loads(failures.stdout)}
    assert reasons == set(site.bad.values())


def test_retry_failed_recovers_what_now_works(first_crawl, site, es, names, test_env):
    site.routes["/missing"] = html(report_page(904).html)  # the page appeared since
    result = cli(test_env, "retry-failed", "--timeout", "60", timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"{len(site.bad)} URLs, 1 indexed, {len(site.bad) - 1} failed" in result.stdout
    es.indices.refresh(index=[names.reports, names.failures])
    assert es.exists(index=names.reports, id=doc_id(normalize_url(site.url("/missing"))))
    urls = {h["_source"]["url"] for h in es.search(index=names.failures, size=50)["hits"]["hits"]}
    assert urls == {normalize_url(u) for u in site.bad if not u.endswith("/missing")}
