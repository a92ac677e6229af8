"""Scheduled, polite crawling across several local hosts, with real Redis, workers and Elasticsearch.

Host A (127.0.0.2) has a paginated listing; host B (127.0.0.3) a gzip sitemap
index, a robots.txt with a Disallow and a Crawl-delay, and a page redirecting
to host A, which B's source may not reach.
"""

from __future__ import annotations

import gzip
import os
import time

import pytest

from tests.corpus import report_page
from tests.helpers import Beat, Worker, cli, point_app_at
from tests.site import LocalSite, Request, html
from workers.records import fetch_version
from workers.urls import doc_id, normalize_url

A_RATE = 4.0  # requests per second allowed on host A
B_DELAY = 0.4  # host B's robots.txt Crawl-delay


def listing(page: int, last: int) -> str:
    links = "".join(f'<li><a class="report" href="/reports/a{page}-{i}.html">Report</a></li>' for i in range(3))
    nxt = f'<a class="next" href="/list?page={page + 1}">Next</a>' if page < last else ""
    return f'<html><body><a href="/about">About</a><ul class="results">{links}</ul>{nxt}</body></html>'


def urlset(base: str, paths: list[str]) -> bytes:
    locs = "".join(f"<url><loc>{base}{p}</loc></url>" for p in paths)
    return f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{locs}</urlset>'.encode()


class Mutable:
    """A report page whose content, ETag or existence the test changes between crawls."""

    def __init__(self, body: bytes):
        self.body, self.etag, self.gone = body, '"v1"', False

    def __call__(self, req: Request):
        if self.gone:
            return 404, {"Content-Type": "text/html"}, b"<h1>Not found</h1>"
        if req.headers.get("If-None-Match") == self.etag:
            return 304, {"ETag": self.etag}, b""
        return 200, {"Content-Type": "text/html; charset=utf-8", "ETag": self.etag}, self.body


@pytest.fixture(scope="module")
def hosts():
    a, b = LocalSite(host="127.0.0.2"), LocalSite(host="127.0.0.3")
    for page in (1, 2, 3):
        a.routes[f"/list?page={page}"] = html(listing(page, 3))
        for i in range(3):
            a.routes[f"/reports/a{page}-{i}.html"] = html(report_page(page * 10 + i).html)
    a.mutable = Mutable(report_page(99).html)
    a.routes["/reports/mutable.html"] = a.mutable
    a.routes["/reports/internal.html"] = html(report_page(98).html)

    b.routes["/robots.txt"] = html(f"User-agent: *\nDisallow: /private/\nCrawl-delay: {B_DELAY}\n",
                                   content_type="text/plain")
    b.routes["/sitemap_index.xml"] = html(
        f'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<sitemap><loc>{b.base}/sitemap-1.xml.gz</loc></sitemap>"
        f"<sitemap><loc>{b.base}/sitemap-2.xml</loc></sitemap></sitemapindex>", content_type="application/xml")
    b.routes["/sitemap-1.xml.gz"] = html(gzip.compress(urlset(b.base, ["/tip/b0.html", "/tip/b1.html"])),
                                         content_type="application/gzip")
    b.routes["/sitemap-2.xml"] = html(urlset(b.base, ["/tip/b2.html", "/private/secret.html", "/tip/escape.html"]),
                                      content_type="application/xml")
    for i in range(3):
        b.routes[f"/tip/b{i}.html"] = html(report_page(50 + i).html)
    b.routes["/private/secret.html"] = html(report_page(60).html)
    b.routes["/tip/escape.html"] = html(b"", status=302, Location=f"{a.base}/reports/internal.html")
    yield a, b
    a.close()
    b.close()


@pytest.fixture(scope="module")
def sources_file(hosts, tmp_path_factory):
    a, b = hosts
    path = tmp_path_factory.mktemp("sources") / "sources.yaml"
    path.write_text(f"""
sources:
  - name: listing
    seeds: ["{a.base}/list?page=1"]
    discovery: {{link_selector: "ul.results a", url_pattern: "/reports/", next_selector: "a.next", max_depth: 5}}
    allowed_hosts: ["127.0.0.2"]
    allow_private_networks: ["127.0.0.2/32"]
    schedule: "0 3 * * 1"
    rate: {A_RATE}
    concurrency: 4
  - name: maps
    sitemaps: ["{b.base}/sitemap_index.xml"]
    discovery: {{url_pattern: "\\\\.html$"}}
    allowed_hosts: ["127.0.0.3", "127.0.0.2"]
    allow_private_networks: ["127.0.0.3/32"]
    schedule: "0 3 * * 1"
    rate: 50
    concurrency: 4
  - name: ticker
    seeds: ["{a.base}/list?page=3"]
    discovery: {{url_pattern: "/reports/a3-"}}
    allowed_hosts: ["127.0.0.2"]
    allow_private_networks: ["127.0.0.2/32"]
    schedule: every 2s
    rate: 50
""")
    return path


@pytest.fixture(scope="module")
def env(test_env, sources_file):
    env = {**test_env, "SOURCES_FILE": str(sources_file)}
    os.environ["SOURCES_FILE"] = str(sources_file)
    from workers.clients import reset_clients

    reset_clients()
    yield env
    os.environ.pop("SOURCES_FILE", None)
    reset_clients()


@pytest.fixture(scope="module")
def workers(env):
    point_app_at(env["REDIS_URL"])
    started = [Worker(env, concurrency=3), Worker(env, concurrency=3)]
    yield started
    for w in started:
        w.stop()


def run_source(env, name, *extra):
    result = cli(env, "sources", "run", name, "--timeout", "90", *extra, timeout=120)
    assert result.returncode == 0, result.stderr
    return result


def get_doc(es, names, url):
    es.indices.refresh(index=names.reports)
    found = es.options(ignore_status=404).get(index=names.reports, id=doc_id(normalize_url(url)))
    return found if found.get("found") else None


@pytest.fixture(scope="module")
def listing_crawl(env, workers, hosts):
    return run_source(env, "listing")


@pytest.fixture(scope="module")
def maps_crawl(env, workers, hosts):
    return run_source(env, "maps")


def test_discovery_follows_pagination(listing_crawl, hosts, es, names):
    a, _ = hosts
    assert "9 report URLs from 3 listing pages" in listing_crawl.stderr
    assert "9 indexed" in listing_crawl.stdout
    for page in (1, 2, 3):
        for i in range(3):
            assert get_doc(es, names, f"{a.base}/reports/a{page}-{i}.html")
    assert "/about" not in a.hits  # not a report link, never fetched


def test_per_host_rate_holds_across_two_workers(listing_crawl, hosts):
    a, _ = hosts
    times = sorted(t for path, ts in a.hits.items() if path.startswith(("/list", "/reports/a")) for t in ts)
    assert len(times) >= 12
    gaps = [later - earlier for earlier, later in zip(times, times[1:])]
    # Slots are 1/A_RATE apart in Redis time; arrival jitter may eat part of one gap, never the rate.
    assert min(gaps) >= 0.5 / A_RATE
    assert (len(times) - 1) / (times[-1] - times[0]) <= A_RATE * 1.05


def test_sitemap_index_robots_and_crawl_delay(maps_crawl, hosts, es, names):
    _, b = hosts
    for i in range(3):
        assert get_doc(es, names, f"{b.base}/tip/b{i}.html")
    assert "/private/secret.html" not in b.hits  # disallowed: never requested
    pages = sorted(t for path, ts in b.hits.items() if path.startswith("/tip/b") for t in ts)
    gaps = [later - earlier for earlier, later in zip(pages, pages[1:])]
    assert min(gaps) >= B_DELAY * 0.5 and sum(gaps) / len(gaps) >= B_DELAY * 0.95


def test_disallowed_and_private_redirect_recorded(maps_crawl, hosts, es, names):
    a, b = hosts
    assert "1 skipped" in maps_crawl.stdout
    es.indices.refresh(index=names.failures)
    records = {h["_source"]["url"]: h["_source"] for h in es.search(index=names.failures, size=50)["hits"]["hits"]}
    assert records[normalize_url(f"{b.base}/private/secret.html")]["reason"] == "robots_disallowed"
    assert records[normalize_url(f"{b.base}/tip/escape.html")]["reason"] == "private_address"
    assert "/reports/internal.html" not in a.hits  # refused before connecting


def test_unchanged_changed_and_gone(env, workers, hosts, es, names):
    a, _ = hosts
    url = f"{a.base}/reports/mutable.html"
    crawl = ["crawl", url, "--allow-private-networks", "--timeout", "60"]

    assert "1 indexed" in cli(env, *crawl).stdout
    first = get_doc(es, names, url)

    again = cli(env, *crawl)
    assert "1 unchanged" in again.stdout, again.stderr
    assert a.headers_seen["/reports/mutable.html"][-1].get("If-None-Match") == '"v1"'
    assert get_doc(es, names, url)["_version"] == first["_version"]  # the 304 indexed nothing

    a.mutable.body = a.mutable.body.replace(b"significant efforts", b"serious and sustained efforts")
    a.mutable.etag = '"v2"'
    assert "1 indexed" in cli(env, *crawl).stdout
    changed = get_doc(es, names, url)
    assert "serious and sustained efforts" in changed["_source"]["body"]
    # Written once more: its version is the new fetch's time (workers/index/bulk.py).
    assert changed["_version"] == fetch_version(changed["_source"]["fetched_at"]) > first["_version"]

    a.mutable.gone = True
    gone = cli(env, *crawl)
    assert "1 gone" in gone.stdout, gone.stderr
    assert get_doc(es, names, url) is None
    from workers.search.faceted import run_search

    assert run_search(es, names.reports, '"serious and sustained efforts"')["total"] == 0


def test_beat_runs_a_source_on_its_schedule(env, workers, hosts):
    a, _ = hosts
    page = "/list?page=3"
    before = len(a.hits[page])
    beat = Beat(env)
    try:
        from workers.clients import get_redis

        # `ticker` fires every 2 s: each run fetches its listing page once.
        deadline = time.monotonic() + 60
        while len(a.hits[page]) - before < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(a.hits[page]) - before >= 2, "beat did not run the ticker source twice within 60 s"
        assert get_redis().keys(f"ri:{env['INDEX_PREFIX']}redbeat:*")  # the schedule lives in Redis
    finally:
        beat.stop()
