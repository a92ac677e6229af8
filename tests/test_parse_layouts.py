"""Layouts beyond Refworld and state.gov: what `report-ingest parse` shows a reader, page by page.

Every page with a `<name>.reader.json` states what a person reads off it: the fields,
the report text the body must hold, the page furniture it must not, and whether the
page is one country's report. The command must give exactly that: no boilerplate in
the body, no tier on a page that is not one country's report, publisher and date
wherever the page states them (and null where it does not).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from workers.cli import main

PAGES = Path(__file__).parent / "fixtures" / "pages" / "layouts"
READER = {e["file"]: (e, json.loads((PAGES / e["file"].replace(".html", ".reader.json")).read_text()))
          for e in json.loads((PAGES / "manifest.json").read_text())
          if (PAGES / e["file"].replace(".html", ".reader.json")).exists()}
FIELDS = ("title", "publisher", "author", "publication_date", "last_updated", "report_series",
          "report_year", "tier", "trafficking_roles", "language", "summary")


def test_new_layouts_are_covered_with_a_held_out_half() -> None:
    sets = [spec["set"] for _, spec in READER.values()]
    assert len(READER) >= 20
    assert sets.count("heldout") >= len(READER) // 2
    # Layouts, by the file-name prefix: ecoi, statearchive, freedomhouse, table, wordpress, ...
    assert len({name.split("_")[0] for name in READER}) >= 8
    assert {"ecoi_en", "ecoi_de"} <= {"_".join(name.split("_")[:2]) for name in READER}
    assert any(not spec["one_country_report"] for _, spec in READER.values())


@pytest.mark.parametrize("name", sorted(READER))
def test_parse_command_shows_what_a_reader_sees(name: str) -> None:
    entry, spec = READER[name]
    args = ["parse", str(PAGES / name), "--url", entry["url"]]
    if entry["content_type"]:
        args += ["--content-type", entry["content_type"]]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    body = doc["body"] or ""
    for furniture in spec["boilerplate"]:
        assert furniture not in body, f"boilerplate in body: {furniture!r}"
    for text in spec["body_includes"]:
        assert text in body, f"report text missing from body: {text!r}"
    if not spec["one_country_report"]:
        assert doc["tier"] is None and doc["trafficking_roles"] == []
    assert (doc["country"] or {}).get("iso2") == spec["country"]
    for field in FIELDS:
        assert doc[field] == spec[field], field
