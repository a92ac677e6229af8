import gzip

import pytest

from workers.crawl.sitemap import ERRORS_KEPT, BudgetSpent, SitemapError, parse_sitemap, walk_sitemaps

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
    assert (list(walk), walk.found, walk.sitemaps, walk.errors) == ([u("p1"), u("p2"), u("p3")], 3, 4, [])
    assert sorted(fetched) == [u("root"), u("s1"), u("s2"), u("s3")]


def test_walk_records_each_bad_entry_and_goes_on():
    def fetch(url):
        if url == u("down"):
            raise SitemapError("not fetched: HTTP 503")
        return {u("root"): index(u("down"), "ftp://a.test/s", u("ok")),
                u("ok"): urlset(u("p1"), "p2", u("p3"))}[url]

    walk = walk_sitemaps(u("root"), fetch)
    assert list(walk) == [u("p1"), u("p3")]
    assert walk.errors == [
        f"sitemap {u('down')}: not fetched: HTTP 503",
        "sitemap 'ftp://a.test/s': not an http(s) URL: 'ftp://a.test/s' has scheme ftp:",
        f"sitemap {u('ok')}: invalid <loc> 'p2': not an http(s) URL: 'p2' has no scheme (e.g. https://)",
    ]


def test_walk_stops_at_the_cap_and_says_so():
    walk = walk_sitemaps(u("s0"), lambda url: index(u(f"s{int(url[-1]) + 1}")), max_sitemaps=3)
    assert list(walk) == []
    assert walk.sitemaps == 3 and walk.errors == [f"sitemap {u('s0')}: stopped after 3 sitemaps, 1 not read"]


def test_a_reader_that_stops_early_stops_the_fetching():
    fetched = []

    def fetch(url):
        fetched.append(url)
        return index(*(u(f"s{i}") for i in range(50))) if url == u("root") else urlset(url + "/p1", url + "/p2")

    walk = walk_sitemaps(u("root"), fetch)
    assert [url for url, _ in zip(walk, range(3))] == [u("s0/p1"), u("s0/p2"), u("s1/p1")]
    assert fetched == [u("root"), u("s0"), u("s1")]


def test_a_walk_keeps_the_first_errors_and_counts_the_rest():
    walk = walk_sitemaps(u("root"), lambda url: urlset(*(f"bad {i}" for i in range(ERRORS_KEPT + 5))))
    assert list(walk) == []
    assert (len(walk.errors), walk.errors_left_out) == (ERRORS_KEPT, 5)


def test_a_walk_whose_time_is_up_stops_and_says_so():
    def fetch(url):
        if url != u("root"):
            raise BudgetSpent("discovery's wait budget (20 min) is spent")
        return index(u("s1"), u("s2"))

    walk = walk_sitemaps(u("root"), fetch)
    assert list(walk) == []
    assert walk.errors == [f"sitemap {u('root')}: discovery's wait budget (20 min) is spent; 2 sitemaps not read"]
