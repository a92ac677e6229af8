"""Extraction accuracy: field by field, against what a reader sees on each page.

    .venv/bin/python benchmarks/extraction.py [--misses] [--trafilatura]

Each fixture with a `<name>.reader.json` states, as a person reads them off the page,
the fields below, the text the body must hold and the page furniture it must not.
Fixtures are in two sets: "heldout" (expectations written before the parser was
changed, never used to tune it) and "dev" (written while working on the rules).

--trafilatura also scores trafilatura (main text, metadata) and htmldate (dates) on
the same expectations, for the fields they produce; install them first
(`.venv/bin/pip install trafilatura`), they are not a dependency of the project.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workers.parse import parse_page

PAGES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "pages" / "layouts"
FIELDS = ("title", "publisher", "author", "publication_date", "last_updated", "report_series",
          "report_year", "country", "tier", "trafficking_roles", "language", "summary", "body")


def reader_pages() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(manifest entry, reader expectations) for every fixture that has expectations."""
    out = []
    for entry in json.loads((PAGES / "manifest.json").read_text()):
        spec_path = PAGES / entry["file"].replace(".html", ".reader.json")
        if spec_path.exists():
            out.append((entry, json.loads(spec_path.read_text())))
    return out


def body_ok(body: str | None, spec: dict[str, Any]) -> bool:
    """The report text is there and none of the page furniture is."""
    text = body or ""
    return (all(s in text for s in spec["body_includes"])
            and not any(s in text for s in spec["boilerplate"]))


def value(doc: dict[str, Any], field: str) -> Any:
    if field == "country":
        return (doc.get("country") or {}).get("iso2")
    return doc.get(field)


def score(doc: dict[str, Any], spec: dict[str, Any], field: str) -> bool:
    if field == "body":
        return body_ok(doc.get("body"), spec)
    return value(doc, field) == spec[field]


def ours(entry: dict[str, Any]) -> dict[str, Any]:
    return parse_page((PAGES / entry["file"]).read_bytes(), entry["url"], entry["content_type"])


def theirs(entry: dict[str, Any]) -> dict[str, Any]:
    """trafilatura's main text and metadata, htmldate's dates, mapped onto our field names."""
    import trafilatura
    from htmldate import find_date

    html = (PAGES / entry["file"]).read_bytes().decode("utf-8", "replace")
    found = trafilatura.bare_extraction(html, url=entry["url"], with_metadata=True,
                                        include_comments=False, include_tables=True)
    meta = found.as_dict() if found is not None and hasattr(found, "as_dict") else (found or {})
    return {
        "title": meta.get("title"),
        "publisher": meta.get("sitename"),
        "author": meta.get("author"),
        "publication_date": find_date(html, url=entry["url"], original_date=True,
                                      extensive_search=False, outputformat="%Y-%m-%d"),
        "last_updated": find_date(html, url=entry["url"], original_date=False,
                                  extensive_search=False, outputformat="%Y-%m-%d"),
        "language": meta.get("language"),
        "summary": None,
        "body": meta.get("text"),
    }


def table(extractor: Callable[[dict[str, Any]], dict[str, Any]], fields: tuple[str, ...],
          misses: bool) -> dict[str, dict[str, list[int]]]:
    """field -> set -> [right, total]."""
    counts: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for entry, spec in reader_pages():
        try:
            doc = extractor(entry)
        except Exception as exc:  # noqa: BLE001 - a crash scores zero on every field, and is shown
            doc = {}
            print(f"  {entry['file']}: {type(exc).__name__}: {exc}")
        for field in fields:
            right = score(doc, spec, field)
            counts[field][spec["set"]][0] += right
            counts[field][spec["set"]][1] += 1
            if misses and not right:
                got = "body check failed" if field == "body" else repr(value(doc, field))[:90]
                print(f"  miss {spec['set']:7} {entry['file']:42} {field:17} got {got}")
    return counts


def show(title: str, counts: dict[str, dict[str, list[int]]], fields: tuple[str, ...]) -> None:
    sets = ("heldout", "dev")
    print(f"\n{title}\n| field | " + " | ".join(sets) + " |\n|---|" + "---|" * len(sets))
    totals = {s: [0, 0] for s in sets}
    for field in fields:
        cells = []
        for s in sets:
            right, total = counts[field][s]
            totals[s][0] += right
            totals[s][1] += total
            cells.append(f"{right}/{total}" if total else "-")
        print(f"| {field} | " + " | ".join(cells) + " |")
    print("| **all fields** | " + " | ".join(
        f"**{r}/{t} ({100 * r / t:.0f}%)**" if t else "-" for r, t in totals.values()) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--misses", action="store_true", help="list every wrong field")
    parser.add_argument("--trafilatura", action="store_true", help="also score trafilatura + htmldate")
    args = parser.parse_args()
    show("report-ingest parser", table(ours, FIELDS, args.misses), FIELDS)
    if args.trafilatura:
        fields = ("title", "publisher", "author", "publication_date", "last_updated", "language", "body")
        show("trafilatura + htmldate", table(theirs, fields, args.misses), fields)


if __name__ == "__main__":
    main()
