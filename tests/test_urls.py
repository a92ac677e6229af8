import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workers import urls
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


_segment = st.one_of(st.sampled_from([".", "..", "", "a.b", ".x", "a.", "a..b", "%2e"]),
                     st.text(alphabet="az09.-_~%:@!$&'()*+,;=", max_size=5), st.text(alphabet="aZ. /?#", max_size=4))
_url = st.builds(
    lambda scheme, host, port, segments, slash, tail: f"{scheme}://{host}{port}{'/'.join(['', *segments])}"
                                                      f"{'/' if slash else ''}{tail}",
    st.sampled_from(["http", "https", "https", "HTTP", "ftp"]),
    st.one_of(st.sampled_from(["example.org", "127.0.0.1", "a-b.c", "Example.org", "a..b", "a.", "a"]),
              st.text(alphabet="ab09.-A_", min_size=1, max_size=8)),
    st.sampled_from(["", ":80", ":443", ":8080", ":0", ":08080", ":65535", ":65536", ":99999", ":"]),
    st.lists(_segment, max_size=4), st.booleans(),
    st.sampled_from(["", "", "", "?b=2&a=1", "?utm_source=x", "#top", "?", "#"]),
)


def _canonical_or_refusal(normalize, url: str) -> str:
    try:
        return normalize(url)
    except InvalidURL as exc:
        return f"refused: {exc}"


@given(_url)
@settings(max_examples=3000, deadline=None)
def test_an_address_taken_as_already_canonical_is_what_splitting_and_rejoining_it_gives(url):
    """The shortcut for addresses already in canonical form (a third of a start's time was
    spent splitting and rejoining them) must never give another address than the full rules."""
    assert _canonical_or_refusal(normalize_url, url) == \
        _canonical_or_refusal(lambda text: urls._split_and_rejoin(text.strip(), text), url)
