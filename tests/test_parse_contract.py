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
    VALIDATOR.validate(doc)
    assert doc["url"] == "https://example.org/r?id=1"
    assert doc["canonical_url"] == "https://example.org/reports/mali"
    assert doc["id"] == doc_id("https://example.org/reports/mali")
    assert doc["content_sha256"] == hashlib.sha256(PAGE).hexdigest()
    assert doc["parser_version"] == PARSER_VERSION
    assert doc["language"] == "en"
    assert "Home" not in doc["body"]


def test_canonical_on_other_host_or_site_root_is_ignored() -> None:
    for href in ("https://elsewhere.example/reports/mali", "/"):
        page = PAGE.replace(b"/reports/mali?utm_source=x", href.encode())
        doc = parse_page(page, "https://www.example.org/r", "text/html")
        assert doc["canonical_url"] == "https://www.example.org/r"


def test_schema_rejects_extra_fields_and_allows_pipeline_fields() -> None:
    doc = parse_page(PAGE, "https://example.org/r")
    VALIDATOR.validate({**doc, "fetched_at": "2024-05-01T10:00:00Z", "tier_rank": 2.5,
                        "report_key": "trafficking-in-persons-2019-MLI"})
    with pytest.raises(jsonschema.ValidationError):
        VALIDATOR.validate({**doc, "tier_rank_extra": 1})
    with pytest.raises(jsonschema.ValidationError):
        VALIDATOR.validate({**doc, "tier": "Tier 4"})


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
        assert parse_page(PAGE, "https://example.org/r", parser=name)["source"] == name
