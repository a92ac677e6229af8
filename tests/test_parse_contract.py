"""The parse_page contract the pipeline relies on: signature, errors, schema."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import jsonschema
import pytest

from workers.parse import PARSER_VERSION, ParseError, parse_page
from workers.urls import doc_id

SCHEMA = json.loads((Path(__file__).parent.parent / "schemas/report.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())

PAGE = (b"<html lang='en-GB'><head><title>Example</title>"
        b"<link rel='canonical' href='/reports/mali?utm_source=x'></head><body>"
        b"<nav><a href='/'>Home</a></nav><h1>Mali report</h1>"
        b"<p>Mali is primarily a source country for children trafficked for forced labor.</p>"
        b"</body></html>")


def test_document_validates_and_ids_follow_canonical_url() -> None:
    doc = parse_page(PAGE, "HTTPS://Example.org:443/r?id=1#top", "text/html; charset=utf-8")
    VALIDATOR.validate(doc.to_source())
    assert doc.url == "https://example.org/r?id=1"
    assert doc.canonical_url == "https://example.org/reports/mali"
    assert doc.id == doc_id("https://example.org/reports/mali")
    assert doc.content_sha256 == hashlib.sha256(PAGE).hexdigest()
    assert doc.parser_version == PARSER_VERSION
    assert doc.language == "en"
    assert "Home" not in doc.body


def test_canonical_on_other_host_or_site_root_is_ignored() -> None:
    for href in ("https://elsewhere.example/reports/mali", "/"):
        page = PAGE.replace(b"/reports/mali?utm_source=x", href.encode())
        doc = parse_page(page, "https://www.example.org/r", "text/html")
        assert doc.canonical_url == "https://www.example.org/r"


def test_schema_rejects_extra_fields_and_allows_pipeline_fields() -> None:
    doc = parse_page(PAGE, "https://example.org/r")
    VALIDATOR.validate({**doc.to_source(), "fetched_at": "2024-05-01T10:00:00Z", "tier_rank": 2.5,
                        "report_key": "trafficking-in-persons-2019-MLI"})
    with pytest.raises(jsonschema.ValidationError):
        VALIDATOR.validate({**doc.to_source(), "tier_rank_extra": 1})
    with pytest.raises(jsonschema.ValidationError):
        VALIDATOR.validate({**doc.to_source(), "tier": "Tier 4"})


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (b"%PDF-1.4 binary", "application/pdf", "not HTML: application/pdf"),
        (b"%PDF-1.4 binary", None, "not HTML: application/pdf"),
        (b"", "text/html", "empty page"),
        (b"   \n ", None, "empty page"),
        (b"<html><body><nav>Home</nav></body></html>", "text/html", "no report text found"),
        (b"{\"a\": 1}", "application/json", "not HTML: application/json"),
    ],
)
def test_unreadable_input_raises_parse_error_with_reason(
        body: bytes, content_type: str | None, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse_page(body, "https://example.org/r", content_type)


def test_bad_url_and_unknown_parser_are_parse_errors() -> None:
    with pytest.raises(ParseError, match="bad URL"):
        parse_page(PAGE, "ftp://example.org/r")
    with pytest.raises(ParseError, match="unknown parser"):
        parse_page(PAGE, "https://example.org/r", parser="nope")


def test_parser_can_be_forced_by_name() -> None:
    for name in ("refworld", "statedept", "generic"):
        assert parse_page(PAGE, "https://example.org/r", parser=name).source == name


def test_meta_charset_undefined_gives_a_document_not_a_parser_crash() -> None:
    page = PAGE.replace(b"<head>", b'<head><meta charset="undefined">')
    doc = parse_page(page, "https://example.org/r", "text/html")
    assert doc.body == "Mali is primarily a source country for children trafficked for forced labor."


def _binary(size: int, seed: int) -> bytes:
    state, out = seed, bytearray()
    for _ in range(size):  # a small LCG: the same "binary" bytes on every run, no randomness
        state = (state * 1103515245 + 12345) & 0x7FFFFFFF
        out.append(state >> 16 & 0xFF)
    return bytes(out)


@pytest.mark.parametrize("body", [
    _binary(46_000, 1),                                   # an unknown binary format
    b"<html><body><p>" + _binary(20_000, 2),              # markup start, then binary
    b"\x1f\x8b\x08\x00" + _binary(8_000, 3),              # a gzip body nobody decompressed
    b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 200 + _binary(4_000, 4),  # an executable
])
def test_binary_body_served_as_html_is_refused(body: bytes) -> None:
    for content_type in ("text/html", "text/html; charset=utf-8", None):
        with pytest.raises(ParseError, match="binary content served as"):
            parse_page(body, "https://example.org/r", content_type)


def test_text_with_a_few_stray_control_bytes_is_still_a_page() -> None:
    noisy = PAGE.replace(b"forced labor.", b"forced\x07 labor.\x00")
    assert parse_page(noisy, "https://example.org/r", "text/html").body.endswith("forced labor.")
