"""Property tests: mangled, truncated and random input gives a document or a ParseError."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workers.parse import ParseError, parse_page

PAGES = Path(__file__).parent / "fixtures" / "pages"
SAMPLES = [(d / e["file"]).read_bytes() for d in (PAGES, PAGES / "layouts")
           for e in json.loads((d / "manifest.json").read_text())]
SCHEMA = json.loads((Path(__file__).parent.parent / "schemas/report.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
URL = "https://www.refworld.org/docid/x.html"
# Modest by default to keep the suite fast; PARSE_FUZZ_EXAMPLES=2000 for a longer hunt.
FAST = settings(max_examples=int(os.environ.get("PARSE_FUZZ_EXAMPLES", "60")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])

TAGS = ["p", "div", "h1", "h2", "h3", "table", "tr", "td", "th", "dl", "dt", "dd", "strong", "b",
        "nav", "footer", "br", "a", "span", "li", "ul", "meta", "link", "html", "body", "head",
        "title", "script", "time", "article", "main"]
WORDS = ["Publisher", "Cite as", "Author:", "Publication Date", "Last Updated: 5 June 2002",
         "Mali (Tier 2)", "THAILAND: TIER 2", "Countries", "is a source, transit, and destination "
         "country for", "forced labor", "Burma", "Congo", "\u00e9", "\u2019", "&amp;", "&#0;",
         "<!--", "]]>", "<?xml version='1.0' encoding='latin-1'?>", "\x00", "\ufeff"]
ATTRS = ['', ' class="nav"', ' rel="canonical" href="//x"', ' rel="canonical" href="http://[::1"',
         ' property="og:title" content="x"', ' charset="utf-16"', ' lang="zz-top"',
         ' datetime="2019-02-31"', ' name="description" content="Mali is"', ' hidden']


def check(body: bytes, content_type: str | None = "text/html") -> None:
    try:
        doc = parse_page(body, URL, content_type).to_source()
    except ParseError as exc:
        assert str(exc)
        return
    VALIDATOR.validate(doc)


@st.composite
def tag_soup(draw: st.DrawFn) -> bytes:
    parts = draw(st.lists(st.one_of(
        st.builds(lambda t, a: f"<{t}{a}>", st.sampled_from(TAGS), st.sampled_from(ATTRS)),
        st.builds(lambda t: f"</{t}>", st.sampled_from(TAGS)),
        st.sampled_from(WORDS),
        st.text(max_size=40),
    ), max_size=60))
    encoding = draw(st.sampled_from(["utf-8", "cp1252", "utf-16"]))
    return "".join(parts).encode(encoding, "replace")


@FAST
@given(tag_soup(), st.sampled_from([None, "text/html", "text/html; charset=utf-16",
                                    "text/html; charset=bogus", "application/pdf"]))
def test_random_tag_soup(body: bytes, content_type: str | None) -> None:
    check(body, content_type)


@FAST
@given(st.binary(max_size=2000))
def test_random_bytes(body: bytes) -> None:
    check(body, None)


@FAST
@given(st.sampled_from(SAMPLES), st.floats(0, 1))
def test_truncated_fixture_pages(page: bytes, fraction: float) -> None:
    check(page[: int(len(page) * fraction)])


@FAST
@given(st.sampled_from(SAMPLES), st.lists(st.tuples(st.floats(0, 1), st.binary(max_size=12)),
                                          min_size=1, max_size=8))
def test_mangled_fixture_pages(page: bytes, edits: list[tuple[float, bytes]]) -> None:
    for where, junk in edits:
        at = int(len(page) * where)
        page = page[:at] + junk + page[at + len(junk):]
    check(page)


def test_deeply_nested_markup_does_not_recurse() -> None:
    check(b"<div>" * 5000 + b"<p>Mali is a source country for forced labor.</p>" + b"</div>" * 5000)
    check(b"<b>" * 3000 + b"Publisher" + b"</b>" * 3000)
