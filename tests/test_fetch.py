"""fetch() against a real local HTTP server."""

from datetime import UTC, datetime

import pytest

from tests.site import LocalSite, html
from devtools.services import free_port
from workers.crawl.http import OPEN_POLICY, PermanentFetchError, RetryableFetchError, fetch, is_html, parse_retry_after
from workers.crawl.netpolicy import NetworkPolicy, networks_policy, vetted_session
from workers.backoff import backoff_seconds
from workers.urls import PageURL


@pytest.fixture(scope="module")
def site():
    s = LocalSite()
    s.routes |= {
        "/ok": html("<h1>ok</h1>", ETag='"v1"', **{"Last-Modified": "Wed, 01 Jan 2025 00:00:00 GMT"}),
        "/hop1": html(b"", status=301, Location="/hop2"),
        "/hop2": html(b"", status=302, Location="/ok"),
        "/far": html(b"", status=302, Location="/hop1"),
        "/gone": html("gone", status=410),
        "/limited": html("slow down", status=429, **{"Retry-After": "7"}),
        "/json": html("{}", content_type="application/json"),
        "/untyped-html": lambda r: (200, {}, b"  <html><p>hi</p></html>"),
        "/untyped-binary": lambda r: (200, {}, b"\x00\x01binary"),
        "/big": html("<p>" + "x" * 5000 + "</p>"),
        "/bad-location": html(b"", status=302, Location="mailto:x@example.com"),
        "/to-file": html(b"", status=302, Location="file:///etc/passwd"),
        "/broken-location": html(b"", status=302, Location="http://[::1/x"),
        "/to-other-loopback": lambda r: (302, {"Location": f"http://127.0.0.3:{s.server.server_port}/ok"}, b""),
        "/conditional": lambda r: (304, {}, b"") if r.headers.get("If-None-Match") == '"v1"'
        else (200, {"Content-Type": "text/html", "ETag": '"v1"'}, b"<p>v1</p>"),
    }
    yield s
    s.close()


def get(site, path, **kw):
    opts = dict(connect_timeout=2, read_timeout=2, max_bytes=4096, max_redirects=5, policy=OPEN_POLICY) | kw
    return fetch(vetted_session(), PageURL.of(site.url(path)), **opts)


def test_page_with_metadata(site):
    page = get(site, "/ok")
    assert page.status == 200 and page.body == b"<h1>ok</h1>"
    assert page.etag == '"v1"' and page.last_modified.startswith("Wed")
    assert len(page.sha256) == 64


def test_redirects_followed_and_capped(site):
    assert get(site, "/hop1").final_url == site.url("/ok")
    with pytest.raises(PermanentFetchError) as err:
        get(site, "/far", max_redirects=2)
    assert err.value.reason == "too_many_redirects"


@pytest.mark.parametrize("path, reason", [
    ("/gone", "http_410"), ("/json", "not_html"), ("/untyped-binary", "not_html"),
    ("/big", "too_large"), ("/bad-location", "unsupported_scheme"), ("/to-file", "unsupported_scheme"),
    ("/broken-location", "bad_redirect"),
])
def test_permanent_errors(site, path, reason):
    with pytest.raises(PermanentFetchError) as err:
        get(site, path)
    assert err.value.reason == reason


def test_markup_without_content_type_is_accepted(site):
    assert get(site, "/untyped-html").body.strip().startswith(b"<html>")


def test_429_is_retryable_with_retry_after(site):
    with pytest.raises(RetryableFetchError) as err:
        get(site, "/limited")
    assert (err.value.reason, err.value.status, err.value.retry_after) == ("http_429", 429, 7.0)


def test_connection_refused_is_retryable():
    port = free_port()
    with pytest.raises(RetryableFetchError) as err:
        fetch(vetted_session(), PageURL.of(f"http://127.0.0.1:{port}/"), connect_timeout=1,
              read_timeout=1, max_bytes=100, max_redirects=0, policy=OPEN_POLICY)
    assert err.value.reason == "connection_error"


def test_retry_after_forms():
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("Wed, 01 Jan 2025 00:01:00 GMT", now) == 60.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_is_html():
    assert is_html("text/html; charset=utf-8", b"")
    assert is_html("application/xhtml+xml", b"")
    assert not is_html("application/pdf", b"<html>")
    assert is_html(None, b"\xef\xbb\xbf<!doctype html>")


def test_backoff_grows_with_jitter_and_honours_retry_after():
    for attempt in range(6):
        step = min(60, 2 * 2**attempt)
        assert step / 2 <= backoff_seconds(attempt, 2, 60, None) <= step
    assert backoff_seconds(0, 2, 60, retry_after=30) == 30
    assert backoff_seconds(0, 2, 60, retry_after=3600) == 60


def test_private_addresses_refused_before_connecting(site):
    before = len(site.hits["/ok"])
    with pytest.raises(PermanentFetchError) as err:
        get(site, "/ok", policy=NetworkPolicy())
    assert err.value.reason == "private_address"
    assert len(site.hits["/ok"]) == before  # no request reached the server


def test_redirect_into_a_disallowed_private_address_is_refused(site):
    only_first = networks_policy(["127.0.0.1/32"])
    with pytest.raises(PermanentFetchError) as err:
        get(site, "/to-other-loopback", policy=only_first)
    assert err.value.reason == "private_address" and "127.0.0.3" in str(err.value)


def test_hosts_outside_the_allowed_list_are_refused(site):
    with pytest.raises(PermanentFetchError) as err:
        get(site, "/ok", policy=NetworkPolicy(allowed_hosts=frozenset({"www.refworld.org"})))
    assert err.value.reason == "host_not_allowed"


def test_conditional_get_returns_304_without_body(site):
    assert get(site, "/conditional").etag == '"v1"'
    page = get(site, "/conditional", etag='"v1"')
    assert (page.status, page.body) == (304, b"")


@pytest.fixture
def rebinding_dns(monkeypatch):
    """rebind.test answers the policy check with a public address, the connection with loopback."""
    import socket

    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host != "rebind.test":
            return real(host, port, *args, **kwargs)
        address = "93.184.216.34" if port is None else "127.0.0.1"  # the public one is never dialled
        return real(address, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_dns_rebinding_to_a_private_address_is_refused(site, rebinding_dns):
    before = len(site.hits["/ok"])
    url = f"http://rebind.test:{site.server.server_port}/ok"
    with pytest.raises(PermanentFetchError) as err:
        fetch(vetted_session(), PageURL.of(url), connect_timeout=2, read_timeout=2, max_bytes=4096,
              max_redirects=0, policy=NetworkPolicy())
    assert err.value.reason == "private_address" and "127.0.0.1" in str(err.value)
    assert len(site.hits["/ok"]) == before


def test_kept_alive_connection_is_vetted_again_under_a_stricter_policy(site, rebinding_dns):
    session = vetted_session()
    url = PageURL.of(f"http://rebind.test:{site.server.server_port}/ok")
    opts = dict(connect_timeout=2, read_timeout=2, max_bytes=4096, max_redirects=0)
    assert fetch(session, url, policy=OPEN_POLICY, **opts).status == 200  # connection now pooled
    before = len(site.hits["/ok"])
    with pytest.raises(PermanentFetchError) as err:
        fetch(session, url, policy=NetworkPolicy(), **opts)
    assert err.value.reason == "private_address"
    assert len(site.hits["/ok"]) == before
