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


def test_walk_follows_indexes_once():
    docs = {
        "root": index("s1", "s2", "s1"),
        "s1": urlset("p1", "p2"),
        "s2": gzip.compress(index("s1", "s3")),
        "s3": urlset("p3"),
    }
    fetched = []

    def fetch(url):
        fetched.append(url)
        return docs[url]

    assert walk_sitemaps("root", fetch) == ["p1", "p2", "p3"]
    assert sorted(fetched) == ["root", "s1", "s2", "s3"]
