"""Discovery against a local site and real Redis: one bad entry costs that entry only, recorded."""

from __future__ import annotations

import pytest

from tests.site import LocalSite, html
from workers.crawl.sources import Source
from workers.urls import normalize_url

NS = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'
XML = "application/xml"


def urlset(*locs: str) -> str:
    return f'<urlset {NS}>{"".join(f"<url><loc>{loc}</loc></url>" for loc in locs)}</urlset>'


def sitemap_index(*locs: str) -> str:
    return f'<sitemapindex {NS}>{"".join(f"<sitemap><loc>{loc}</loc></sitemap>" for loc in locs)}</sitemapindex>'


def listing(links: list[str], *next_pages: str) -> str:
    anchors = "".join(f'<a class="report" href="{link}">r</a>' for link in links)
    nxt = "".join(f'<a class="next" href="{page}">next</a>' for page in next_pages)
    return f"<html><body>{anchors}{nxt}</body></html>"


@pytest.fixture(scope="module")
def site():
    s = LocalSite(host="127.0.0.4")
    b = s.base
    s.routes |= {
        # An index whose children fail in every way, between good ones.
        "/sitemap_index.xml": html(sitemap_index(
            f"{b}/sitemap-a.xml", f"{b}/sitemap-500.xml", "not a sitemap url", f"{b}/sitemap-404.xml",
            f"{b}/sitemap-garbage.xml", f"{b}/sitemap-b.xml"), content_type=XML),
        "/sitemap-a.xml": html(urlset(f"{b}/r/a1.html", "not a url", "/r/relative.html", "file:///etc/passwd",
                                      f"{b}/r/a2.html"), content_type=XML),
        "/sitemap-500.xml": html("oops", status=500),
        "/sitemap-garbage.xml": html("<html><body>not a sitemap</body></html>", content_type=XML),
        "/sitemap-b.xml": html(urlset(f"{b}/r/b1.html"), content_type=XML),
        # A second top-level sitemap that fails outright: the first one's URLs stay.
        "/sitemap-down.xml": html("down", status=503, **{"Retry-After": "1"}),
        # Listing pages: the second of three answers 500, the third is still walked.
        "/list1": html(listing(["/r/l1.html", "http://[::1/broken", "mailto:someone@example.org"], "/list1b")),
        "/list1b": html(listing(["/r/l1b.html"])),
        "/list2": html("oops", status=500),
        "/list3": html(listing(["/r/l3.html"])),
    }
    yield s
    s.close()


@pytest.fixture(scope="module")
def source(site):
    b = site.base
    return Source(
        name="faulty", allowed_hosts=[site.host], allow_private_networks=[f"{site.host}/32"],
        sitemaps=[f"{b}/sitemap_index.xml", f"{b}/sitemap-down.xml"],
        seeds=[f"{b}/list1", f"{b}/list2", f"{b}/list3"],
        discovery={"link_selector": "a.report", "next_selector": "a.next"},
        schedule="every 1h", rate=1000, concurrency=4,
    )


def test_one_bad_entry_costs_that_entry_only(settings, site, source):
    from workers.crawl.discover import discover
    from workers.crawl.profile import source_profile

    found = discover(settings, source_profile(source), source, echo=lambda _m: None)

    assert sorted(found.urls) == sorted(normalize_url(site.url(p)) for p in (
        "/r/a1.html", "/r/a2.html", "/r/b1.html", "/r/l1.html", "/r/l1b.html", "/r/l3.html"))
    errors = "\n".join(found.errors)
    for entry, why in [
        ("sitemap-500.xml", "HTTP 500"), ("sitemap-404.xml", "HTTP 404"), ("sitemap-garbage.xml", "not a sitemap"),
        ("sitemap-down.xml", "HTTP 503"), ("'not a sitemap url'", "not an http(s) URL"),
        ("'not a url'", "not an http(s) URL"), ("'/r/relative.html'", "no scheme"),
        ("'file:///etc/passwd'", "scheme file"), ("list2", "HTTP 500"),
    ]:
        assert any(entry in line and why in line for line in found.errors), f"{entry} ({why}) not in:\n{errors}"
    assert len(found.errors) == 9, errors


def test_a_host_backing_off_delays_the_walk_but_loses_none_of_it(test_env, site, monkeypatch, request):
    """A 503 with Retry-After on one listing page makes the next ones wait, not vanish."""
    from workers.clients import reset_clients
    from workers.crawl.discover import discover
    from workers.crawl.profile import source_profile
    from workers.settings import get_settings

    # Waits beyond this are handed back as Deferred (in a task: come back later).
    monkeypatch.setenv("HOST_MAX_INLINE_WAIT", "0.2")
    reset_clients()  # the polite fetcher is built once per process, from the settings
    request.addfinalizer(reset_clients)
    settings = get_settings()
    b = site.base
    site.routes |= {
        "/busy1": html(listing(["/r/busy1.html"], "/busy-503", "/busy2")),
        "/busy-503": html("busy", status=503, **{"Retry-After": "2"}),
        "/busy2": html(listing(["/r/busy2.html"], "/busy3")),
        "/busy3": html(listing(["/r/busy3.html"])),
    }
    source = Source(
        name="busy", allowed_hosts=[site.host], allow_private_networks=[f"{site.host}/32"],
        seeds=[f"{b}/busy1"],
        discovery={"link_selector": "a.report", "next_selector": "a.next"}, schedule="every 1h", rate=1000,
    )
    found = discover(settings, source_profile(source), source, echo=lambda _m: None)
    assert sorted(found.urls) == sorted(normalize_url(site.url(f"/r/busy{i}.html")) for i in (1, 2, 3))
    assert len(found.errors) == 1 and "busy-503" in found.errors[0] and "HTTP 503" in found.errors[0]


def test_discovery_stops_reading_sitemaps_once_it_has_max_pages(settings, site):
    from workers.crawl.discover import discover
    from workers.crawl.profile import source_profile

    b = site.base
    site.routes[f"/many-index.xml"] = html(sitemap_index(*(f"{b}/many-{i}.xml" for i in range(20))), content_type=XML)
    for i in range(20):
        site.routes[f"/many-{i}.xml"] = html(urlset(*(f"{b}/r/m{i}-{j}.html" for j in range(5))), content_type=XML)
    source = Source(name="many", allowed_hosts=[site.host], allow_private_networks=[f"{site.host}/32"],
                    sitemaps=[f"{b}/many-index.xml"], discovery={"max_pages": 7}, schedule="every 1h", rate=1000)
    found = discover(settings, source_profile(source), source, echo=lambda _m: None)
    assert len(found.urls) == 7
    assert sorted(path for path in site.hits if path.startswith("/many-") and path != "/many-index.xml") == [
        "/many-0.xml", "/many-1.xml"]


def test_discovery_past_its_wait_budget_fetches_nothing_more(settings, site, source, monkeypatch):
    from workers.crawl import discover as discovery
    from workers.crawl.profile import source_profile

    monkeypatch.setattr(discovery, "DISCOVERY_WAIT_BUDGET", 0.0)
    hits = sum(len(times) for times in site.hits.values())
    found = discovery.discover(settings, source_profile(source), source, echo=lambda _m: None)
    assert found.urls == [] and sum(len(times) for times in site.hits.values()) == hits
    assert all("wait budget" in line for line in found.errors) and len(found.errors) == 3
