"""One fetch carries one page object: its URL normalised once and hashed once, whatever reads it."""

from __future__ import annotations

import sys
from collections import Counter

import pytest

from tests.corpus import report_page
from tests.site import LocalSite, html
from workers import urls
from workers.tracking.options import CrawlOptions

HOST = "127.0.0.1"


@pytest.fixture(scope="module")
def site():
    s = LocalSite(host=HOST)
    s.routes |= {"/robots.txt": html(b"User-agent: *\nAllow: /\n", content_type="text/plain")}
    s.routes |= {f"/report-{n}.html": html(report_page(n).html) for n in (1, 2)}
    yield s
    s.close()


@pytest.fixture
def calls(monkeypatch) -> Counter:
    """How often normalize_url and doc_id run, wherever a module of workers imported them."""
    counted: Counter = Counter()
    for name in ("normalize_url", "doc_id"):
        original = getattr(urls, name)

        def counting(*args, _name=name, _original=original, **kwargs):
            counted[_name] += 1
            return _original(*args, **kwargs)

        for module in [m for n, m in sys.modules.items() if n.startswith("workers") and m is not None]:
            if getattr(module, name, None) is original:
                monkeypatch.setattr(module, name, counting)
    return counted


def test_a_fetch_normalises_its_url_once_and_hashes_it_once(redis_client, settings, site, calls):
    from workers.crawl.tasks import fetch_page

    crawl_id = "fetch-once"
    CrawlOptions(allow_networks=(f"{HOST}/32",)).save(redis_client, settings.index_prefix, crawl_id, ttl=60)
    # The host's robots.txt read first, by another page: its own URL is normalised and hashed too.
    assert fetch_page.apply(args=(site.url("/report-1.html"), crawl_id)).get() == "fetched"
    calls.clear()
    assert fetch_page.apply(args=(site.url("/report-2.html"), crawl_id)).get() == "fetched"
    assert calls == {"normalize_url": 1, "doc_id": 1}
