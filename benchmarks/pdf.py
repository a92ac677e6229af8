"""PDF text extraction and chapter splitting: PDFium (pypdfium2) against pdfminer.six.

    .venv/bin/python benchmarks/pdf.py [--chapters 195] [--rounds 3]

Generates one full report (tests/pdfs.py: cover, front matter, ~2 pages per country, appendices;
about 400 pages with the defaults), then per library: page texts extracted (pages/s), and the
chapter split plus document building on that library's text (pages/s), with the chapters each
found. pdfminer.six is the baseline: ratios are PDFium's speed over pdfminer's in the same run.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pycountry  # noqa: E402
from pdfminer.high_level import extract_pages  # noqa: E402
from pdfminer.layout import LTTextContainer  # noqa: E402

from tests.pdfs import Chapter, report_pdf  # noqa: E402
from workers.parse.chapters import heading, split_chapters  # noqa: E402
from workers.parse.countries import lookup  # noqa: E402
from workers.parse.pdf import PdfText, extract_text  # noqa: E402
from workers.parse.pdf_document import chapter_documents  # noqa: E402

TIERS = ("Tier 1", "Tier 2", "Tier 2 Watch List", "Tier 3")
URL = "https://www.state.gov/reports/tip-report.pdf"


def chapters(count: int) -> list[Chapter]:
    names = [c.name for c in pycountry.countries if "," not in c.name and heading(f"{c.name.upper()} (Tier 1)")]
    return [Chapter(f"{name.upper()} ({TIERS[i % 4]})", name, paragraphs=3) for i, name in enumerate(names[:count])]


def pdfium_pages(body: bytes) -> list[str]:
    return extract_text(body).pages


def pdfminer_pages(body: bytes) -> list[str]:
    return ["".join(el.get_text() for el in page if isinstance(el, LTTextContainer))
            for page in extract_pages(io.BytesIO(body))]


def timed(rounds: int, run: Callable[[], object]) -> tuple[float, object]:
    times, result = [], None
    for _ in range(rounds):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chapters", type=int, default=195)
    parser.add_argument("--rounds", type=int, default=3, help="timed runs per step (median reported)")
    args = parser.parse_args()

    wanted = chapters(args.chapters)
    body = report_pdf(wanted)
    print(f"report: {len(body) / 1e6:.1f} MB, {len(wanted)} country chapters")
    rows = {}
    for name, extract in (("pdfminer.six", pdfminer_pages), ("pypdfium2", pdfium_pages)):
        seconds, pages = timed(args.rounds, lambda extract=extract: extract(body))
        text = PdfText(pages)
        split_seconds, documents = timed(
            args.rounds, lambda pages=pages, text=text: chapter_documents(text, split_chapters(pages), URL, body))
        expected = [(lookup(c.name).iso2, c.heading[c.heading.rfind("(") + 1:-1]) for c in wanted]
        got = [(d["country"]["iso2"], d["tier"]) for d in documents if d["country"]]
        found = sum(1 for pair in got if pair in expected)
        rows[name] = (len(pages), seconds, split_seconds, sum(len(p.encode()) for p in pages), len(documents), found)
    print(f"\n{'library':14} {'pages':>5} {'extract s':>9} {'pages/s':>8} {'split s':>8} {'pages/s':>8} "
          f"{'text MB':>7} {'chapters':>8} {'right':>5}")
    for name, (pages, seconds, split_seconds, size, count, found) in rows.items():
        print(f"{name:14} {pages:5d} {seconds:9.2f} {pages / seconds:8.1f} {split_seconds:8.2f} "
              f"{pages / split_seconds:8.1f} {size / 1e6:7.2f} {count:8d} {found:5d}")
    base, fast = rows["pdfminer.six"], rows["pypdfium2"]
    print(f"\npypdfium2 vs pdfminer.six: extraction {base[1] / fast[1]:.1f}x faster, "
          f"whole parse (extract + split + documents) {(base[1] + base[2]) / (fast[1] + fast[2]):.1f}x faster")


if __name__ == "__main__":
    main()
