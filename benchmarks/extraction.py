"""Extraction accuracy: field by field, against what a reader sees on each page.

    .venv/bin/python benchmarks/extraction.py [--misses] [--trafilatura]

Each fixture with a `<name>.reader.json` states, as a person reads them off the page,
the fields below, the text the body must hold and the page furniture it must not.
Fixtures are in two sets: "heldout" (expectations written before the parser was
changed, never used to tune it) and "dev" (written while working on the rules).

--trafilatura also scores trafilatura (main text, metadata) and htmldate (dates) on
the same expectations, for the fields they produce (trafilatura is a dependency, for
the main text of generic pages; htmldate comes with it).

--articles compares title, publication date, author and language on the 181 pages of the
article-extraction benchmark (`../shared/corpora/`, skipped when absent). Its ground
truth holds only the article text, so the reference is what trafilatura (title, author),
htmldate (original date) and the page's declared `lang` say: the count is how often our
field agrees with theirs, and the rows where they differ are listed with --misses.
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
    return parse_page((PAGES / entry["file"]).read_bytes(), entry["url"], entry["content_type"]).to_source()


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


def article_pages() -> list[tuple[str, bytes]]:
    from articles import CORPUS, pages

    if not (CORPUS / "ground-truth.json").exists():
        print(f"skipped: corpus not found at {CORPUS}")
        return []
    return [(url, body) for _, url, body in pages(CORPUS)]


def _same(a: Any, b: Any) -> bool:
    return bool(a) and bool(b) and " ".join(str(a).split()).casefold() == " ".join(str(b).split()).casefold()


def articles_table(misses: bool) -> None:
    """How often our title, date, author and language agree with trafilatura, htmldate and lang."""
    import lxml.html
    import trafilatura
    from htmldate import find_date

    fields = ("title", "publication_date", "author", "language")
    agree = dict.fromkeys(fields, 0)
    stated = dict.fromkeys(fields, 0)
    corpus = article_pages()
    for url, body in corpus:
        html = body.decode("utf-8", "replace")
        try:
            doc = parse_page(body, url, "text/html; charset=utf-8").to_source()
        except Exception:  # noqa: BLE001 - a refused page agrees on nothing
            doc = {}
        meta = trafilatura.bare_extraction(html, url=url, with_metadata=True, fast=True)
        meta = meta.as_dict() if meta is not None else {}
        lang = lxml.html.fromstring(body).get("lang") or ""
        ref = {"title": meta.get("title"), "author": meta.get("author"),
               "publication_date": find_date(html, url=url, original_date=True, extensive_search=False,
                                             outputformat="%Y-%m-%d"),
               "language": lang.split("-")[0].lower() or None}
        for field in fields:
            stated[field] += ref[field] is not None
            right = _same(doc.get(field), ref[field])
            agree[field] += right
            if misses and ref[field] is not None and not right:
                print(f"  differ {field:17} ours {str(doc.get(field))[:50]!r} theirs {str(ref[field])[:50]!r} {url[:60]}")
    print(f"\nbenchmark pages: our field = the reference's (of {len(corpus)} pages; reference stated)")
    for field in fields:
        print(f"| {field} | {agree[field]}/{stated[field]} |")


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
    parser.add_argument("--articles", action="store_true",
                        help="compare title, date, author, language on the article-extraction benchmark")
    args = parser.parse_args()
    if args.articles:
        articles_table(args.misses)
        return
    show("report-ingest parser", table(ours, FIELDS, args.misses), FIELDS)
    if args.trafilatura:
        fields = ("title", "publisher", "author", "publication_date", "last_updated", "language", "body")
        show("trafilatura + htmldate", table(theirs, fields, args.misses), fields)


if __name__ == "__main__":
    main()
