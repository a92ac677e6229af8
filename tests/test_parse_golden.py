"""Golden pages: every fixture page parses to its reviewed expected document, field by field."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from workers.parse import parse_page

PAGES = Path(__file__).parent / "fixtures" / "pages"
# The original corpus (also served by the demo site and indexed by the search tests), and
# the pages of further layouts, kept apart so that those corpora stay as they are.
LAYOUTS = PAGES / "layouts"
MANIFEST = [{**e, "dir": PAGES} for e in json.loads((PAGES / "manifest.json").read_text())] + [
    {**e, "dir": LAYOUTS} for e in json.loads((LAYOUTS / "manifest.json").read_text())]
SCHEMA = json.loads((Path(__file__).parent.parent / "schemas/report.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def test_manifest_covers_every_page_and_every_site_kind() -> None:
    for directory in (PAGES, LAYOUTS):
        files = {entry["file"] for entry in MANIFEST if entry["dir"] == directory}
        assert files == {p.name for p in directory.glob("*.html")}
    assert len(MANIFEST) >= 50
    for entry in MANIFEST:
        assert (entry["dir"] / entry["file"].replace(".html", ".expected.json")).exists()
    sources = {json.loads((e["dir"] / e["file"].replace(".html", ".expected.json")).read_text())["source"]
               for e in MANIFEST}
    assert sources == {"refworld", "statedept", "generic"}


@pytest.mark.parametrize("entry", MANIFEST, ids=[e["file"] for e in MANIFEST])
def test_page_matches_expected_document(entry: dict) -> None:
    body = (entry["dir"] / entry["file"]).read_bytes()
    expected = json.loads((entry["dir"] / entry["file"].replace(".html", ".expected.json")).read_text())
    doc = parse_page(body, str(entry["url"]), entry["content_type"]).to_source()
    VALIDATOR.validate(doc)
    # Field by field, so a failure names the field rather than dumping two documents.
    for field in expected:
        assert doc[field] == expected[field], field
    assert set(doc) == set(expected)


def test_local_test_host_gets_the_same_site_parser() -> None:
    """Pages served from 127.0.0.1 are recognised by structure, not by host."""
    for entry in MANIFEST:
        expected = json.loads((entry["dir"] / entry["file"].replace(".html", ".expected.json")).read_text())
        doc = parse_page((entry["dir"] / entry["file"]).read_bytes(), "http://127.0.0.1:8765/page",
                         entry["content_type"]).to_source()
        assert doc["source"] == expected["source"], entry["file"]
        assert doc["title"] == expected["title"], entry["file"]
        assert doc["body"] == expected["body"], entry["file"]
