import pytest

from workers.urls import InvalidURL, doc_id, normalize_url


@pytest.mark.parametrize("raw, expected", [
    ("HTTP://Example.COM:80/a/./b/../c#frag", "http://example.com/a/c"),
    ("https://example.com:443", "https://example.com/"),
    ("https://example.com:8443/p/", "https://example.com:8443/p/"),
    ("https://example.com/r?utm_source=x&id=7&fbclid=abc", "https://example.com/r?id=7"),
    ("https://example.com/a b", "https://example.com/a%20b"),
    ("  https://example.com/docid/3d004ca3c.html  ", "https://example.com/docid/3d004ca3c.html"),
    ("http://[::1]:8000/x", "http://[::1]:8000/x"),
])
def test_normalize_url(raw, expected):
    assert normalize_url(raw) == expected


@pytest.mark.parametrize("raw", ["ftp://example.com/x", "example.com/x", "https:///nohost", "http://h:99999/"])
def test_invalid_urls_are_refused(raw):
    with pytest.raises(InvalidURL):
        normalize_url(raw)


def test_doc_id_is_stable_and_distinct():
    a = doc_id("https://example.com/a")
    assert a == doc_id(normalize_url("HTTPS://EXAMPLE.com/a#x"))
    assert a != doc_id("https://example.com/b")
    assert len(a) == 32
