import gzip

import pytest

from workers.sitemap import SitemapError, parse_sitemap, walk_sitemaps

NS = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'


def urlset(*locs):
    return f'<?xml version="1.0"?><urlset {NS}>{"".join(f"<url><loc> {u} </loc></url>" for u in locs)}</urlset>'.encode()


def index(*locs):
    return f'<sitemapindex {NS}>{"".join(f"<sitemap><loc>{u}</loc></sitemap>" for u in locs)}</sitemapindex>'.encode()


def test_urlset_and_index():
    assert parse_sitemap(urlset("https://a/1", "https://a/2")) == (["https://a/1", "https://a/2"], [])
    assert parse_sitemap(index("https://a/s1.xml")) == ([], ["https://a/s1.xml"])


def test_gzip():
    assert parse_sitemap(gzip.compress(urlset("https://a/1"))) == (["https://a/1"], [])


@pytest.mark.parametrize("body", [b"", b"<html><body>no</body></html>", b"\x1f\x8bnot gzip"])
def test_not_a_sitemap(body):
    with pytest.raises(SitemapError):
        parse_sitemap(body)


def u(name: str) -> str:
    return f"https://a.test/{name}"


def test_walk_follows_indexes_once():
    docs = {
        u("root"): index(u("s1"), u("s2"), "HTTPS://A.test/s1#top"),
        u("s1"): urlset(u("p1"), u("p2")),
        u("s2"): gzip.compress(index(u("s1"), u("s3"))),
        u("s3"): urlset(u("p3")),
    }
    fetched = []

    def fetch(url):
        fetched.append(url)
        return docs[url]

    walk = walk_sitemaps(u("root"), fetch)
    assert (walk.urls, walk.sitemaps, walk.errors) == ([u("p1"), u("p2"), u("p3")], 4, [])
    assert sorted(fetched) == [u("root"), u("s1"), u("s2"), u("s3")]


def test_walk_records_each_bad_entry_and_goes_on():
    def fetch(url):
        if url == u("down"):
            raise SitemapError("not fetched: HTTP 503")
        return {u("root"): index(u("down"), "ftp://a.test/s", u("ok")),
                u("ok"): urlset(u("p1"), "p2", u("p3"))}[url]

    walk = walk_sitemaps(u("root"), fetch)
    assert walk.urls == [u("p1"), u("p3")]
    assert walk.errors == [
        f"sitemap {u('down')}: not fetched: HTTP 503",
        "sitemap 'ftp://a.test/s': not an http(s) URL: 'ftp://a.test/s' has scheme ftp:",
        f"sitemap {u('ok')}: invalid <loc> 'p2': not an http(s) URL: 'p2' has no scheme (e.g. https://)",
    ]


def test_walk_stops_at_the_cap_and_says_so():
    walk = walk_sitemaps(u("s0"), lambda url: index(u(f"s{int(url[-1]) + 1}")), max_sitemaps=3)
    assert walk.sitemaps == 3 and walk.errors == [f"sitemap {u('s0')}: stopped after 3 sitemaps, 1 not read"]
