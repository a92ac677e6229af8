"""`report-ingest crawl` and `retry-failed` end to end: real Redis, Elasticsearch and a Celery worker."""

from __future__ import annotations

import os
import re

import pytest

from tests.corpus import report_page
from tests.helpers import Worker, cli, point_app_at
from tests.site import LocalSite, Request, html
from workers.keys import Keys
from workers.urls import doc_id, normalize_url

HOST, OTHER_HOST = "127.0.0.6", "127.0.0.7"


class Validated:
    """A report page with an ETag: a conditional request for it comes back 304."""

    def __init__(self, body: bytes):
        self.body = body

    def __call__(self, req: Request):
        if req.headers.get("If-None-Match") == '"v1"':
            return 304, {"ETag": '"v1"'}, b""
        return 200, {"Content-Type": "text/html; charset=utf-8", "ETag": '"v1"'}, self.body


@pytest.fixture(scope="module")
def sites():
    site, other = LocalSite(host=HOST), LocalSite(host=OTHER_HOST)
    for i, name in enumerate(["a", "c", "d", "e", "f"]):
        site.routes[f"/{name}.html"] = Validated(report_page(200 + i).html)
    site.routes["/to-other"] = html(b"", status=302, Location=other.url("/b.html"))
    other.routes["/b.html"] = html(report_page(210).html)
    yield site, other
    site.close()
    other.close()


@pytest.fixture(scope="module")
def env(test_env, sites, tmp_path_factory):
    site, _ = sites
    path = tmp_path_factory.mktemp("sources") / "sources.yaml"
    path.write_text(f"""
sources:
  - name: local
    seeds: ["{site.url('/a.html')}"]
    allowed_hosts: ["{HOST}"]
    allow_private_networks: ["{HOST}/32"]
    schedule: every 1h
    enabled: false
    rate: 100
    concurrency: 4
""")
    os.environ["SOURCES_FILE"] = str(path)
    from workers.clients import reset_clients

    reset_clients()
    yield {**test_env, "SOURCES_FILE": str(path)}
    os.environ.pop("SOURCES_FILE", None)
    reset_clients()


@pytest.fixture(scope="module")
def worker(env):
    point_app_at(env["REDIS_URL"])
    w = Worker(env, concurrency=2)
    yield w
    w.stop()


def failure(es, names, url: str) -> dict | None:
    es.indices.refresh(index=names.failures)
    found = es.options(ignore_status=404).get(index=names.failures, id=doc_id(normalize_url(url)))
    return found["_source"] if found.get("found") else None


def indexed(es, names, url: str) -> bool:
    es.indices.refresh(index=names.reports)
    return bool(es.options(ignore_status=404).get(index=names.reports, id=doc_id(normalize_url(url))).get("found"))


def record_failure(es, names, url: str, **fields) -> None:
    from workers.records import Failure

    record = Failure(normalize_url(url), "reindex", "parse_error", "the new parser could not read it", **fields).to_source()
    es.index(index=names.failures, id=doc_id(normalize_url(url)), document=record, refresh=True)


def clear_failures(es, names) -> None:
    from elasticsearch.helpers import scan

    es.indices.refresh(index=names.failures)
    for hit in list(scan(es, index=names.failures, _source=False)):  # the minimal cluster has no _delete_by_query
        es.delete(index=names.failures, id=hit["_id"])
    es.indices.refresh(index=names.failures)


def test_allow_network_opens_exactly_the_named_network(env, worker, sites, es, names):
    site, other = sites
    result = cli(env, "crawl", site.url("/a.html"), site.url("/to-other"), "--allow-network", f"{HOST}/32",
                 "--timeout", "60", timeout=90)
    assert result.returncode == 0, result.stderr
    assert "2 URLs, 1 indexed, 1 failed" in result.stdout
    assert indexed(es, names, site.url("/a.html"))
    assert failure(es, names, site.url("/to-other"))["reason"] == "private_address"
    assert dict(other.hits) == {}  # refused before connecting

    # The deprecated flag still works, as loopback + RFC 1918 + ULA, and says so.
    result = cli(env, "crawl", site.url("/to-other"), "--allow-private-networks", "--timeout", "60", timeout=90)
    assert result.returncode == 0, result.stderr
    assert "--allow-private-networks is deprecated" in result.stderr and "1 indexed" in result.stdout
    assert other.hits["/b.html"] and indexed(es, names, other.url("/b.html"))  # the document is the final page


@pytest.mark.parametrize("cidr, why", [
    ("169.254.169.254/32", "is a link-local network, which is never fetched"),
    ("fd00:ec2::254/128", "is a cloud metadata network, which is never fetched"),
    ("10.0.0.1/8", "invalid CIDR"),
    ("localhost", "invalid CIDR"),
])
def test_allow_network_refuses_what_it_can_never_open(cidr, why):
    result = cli({}, "crawl", "http://127.0.0.1:9/x.html", "--allow-network", cidr, timeout=60)
    assert result.returncode == 2 and why in result.stderr, result.stderr


def test_crawl_options_store_the_networks_the_crawl_may_reach(env, settings, redis_client):
    import ipaddress

    from workers.crawl.start import start_crawl
    from workers.crawl.profile import load_profile
    from workers.tracking.options import CrawlOptions

    plan = start_crawl(settings, [], allow_networks=[f"{HOST}/32"])
    assert plan.queued == 0  # nothing valid: nothing stored, nothing queued
    from workers.crawl.tasks import fetch_page  # noqa: F401 - start_crawl needs the app configured

    crawl_id = "networks0test"
    CrawlOptions(allow_networks=(f"{HOST}/32",)).save(redis_client, settings.index_prefix, crawl_id, ttl=60)
    policy = load_profile(redis_client, settings, crawl_id).policy
    assert policy.refusal(ipaddress.ip_address(HOST)) is None
    assert policy.refusal(ipaddress.ip_address(OTHER_HOST)) == "private_address"
    # A crawl stored by the previous version with the old boolean keeps working, without link-local.
    redis_client.set(Keys(settings.index_prefix).crawl_options("legacy0crawl"),
                     '{"source": null, "allow_private_networks": true}', ex=60)
    legacy = load_profile(redis_client, settings, "legacy0crawl").policy
    assert legacy.refusal(ipaddress.ip_address(OTHER_HOST)) is None
    assert legacy.refusal(ipaddress.ip_address("169.254.169.254")) == "link_local_address"


def test_a_string_that_is_not_a_url_is_refused_at_crawl_time(env, worker, sites, es, names):
    site, _ = sites
    result = cli(env, "crawl", "not a url", "file:///etc/passwd", timeout=60)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "error: not an http(s) URL: 'not a url' has no scheme (e.g. https://)",
        "error: not an http(s) URL: 'file:///etc/passwd' has scheme file:",
        "error: nothing to crawl: none of the arguments is an http(s) URL",
    ]
    # Next to good URLs: the good ones are crawled, the bad one named, and the exit status says so.
    result = cli(env, "crawl", site.url("/c.html"), "example.org/report", "--allow-network", f"{HOST}/32",
                 "--timeout", "60", timeout=90)
    assert result.returncode == 1
    assert "error: not an http(s) URL: 'example.org/report' has no scheme (e.g. https://)" in result.stderr
    assert "1 URLs, 1 indexed" in result.stdout and indexed(es, names, site.url("/c.html"))


def test_retry_failed_refetches_and_reparses_an_unchanged_page(env, worker, sites, es, names):
    site, _ = sites
    url = site.url("/d.html")
    first = cli(env, "crawl", url, "--allow-network", f"{HOST}/32", "--timeout", "60", timeout=90)
    assert "1 indexed" in first.stdout, first.stderr
    crawl_id = re.search(r"crawl (\w+): queued", first.stderr)[1]
    # Say a rebuild's new parser failed on it: the page itself has not changed since.
    clear_failures(es, names)
    record_failure(es, names, url, crawl_id=crawl_id)

    result = cli(env, "retry-failed", "--timeout", "60", timeout=90)
    assert result.returncode == 0, result.stderr
    assert "1 URLs, 1 indexed" in result.stdout
    assert failure(es, names, url) is None
    assert "If-None-Match" not in site.headers_seen["/d.html"][-1]  # fetched again in full, not revalidated


def test_retry_failed_uses_the_source_of_the_record_after_the_crawl_options_expired(env, worker, sites, es, names):
    site, _ = sites
    clear_failures(es, names)
    # The crawls that failed these are long gone (their options expired); the records name the source.
    record_failure(es, names, site.url("/e.html"), crawl_id="expired0crawl", source="local")
    record_failure(es, names, site.url("/f.html"), crawl_id="expired1crawl", source="removed-source")

    result = cli(env, "retry-failed", "--timeout", "60", timeout=90)
    assert result.returncode == 1
    assert f"error: 1 failures of source 'removed-source' not retried: no such source in {env['SOURCES_FILE']}" \
        in result.stderr
    # Under the ad-hoc default policy 127.0.0.6 is private: only the source's policy can reach it.
    assert "1 URLs, 1 indexed" in result.stdout, result.stdout
    assert indexed(es, names, site.url("/e.html")) and failure(es, names, site.url("/e.html")) is None
    assert failure(es, names, site.url("/f.html"))["source"] == "removed-source"  # kept, not lost
