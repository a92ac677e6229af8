"""PDF reports -> documents: chapters, pages, ids, and a specific reason for every unreadable PDF."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import jsonschema
import pytest

from tests.pdfs import SAMPLE, Chapter, country_pdf, encrypted_pdf, report_pdf, scanned_pdf
from workers.documents import ReportDocument
from workers.parse import ParseError
from workers.parse.chapters import heading, split_chapters
from workers.parse.pdf import (
    PDF_CORRUPT,
    PDF_ENCRYPTED,
    PDF_NO_TEXT,
    PDF_TOO_MANY_PAGES,
    PDF_TOO_SLOW,
    PDF_TRUNCATED,
    PdfError,
    extract_text,
    parse_pdf,
)
from workers.parse.pdf_document import blocks
from workers.urls import doc_id

SCHEMA = json.loads((Path(__file__).parent.parent / "schemas/report.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
URL = "https://www.state.gov/wp-content/uploads/2019/06/2019-Trafficking-in-Persons-Report.pdf"
# The sample plus a name too long for one heading line: "(Tier 1)" goes on the next line.
CHAPTERS = [*SAMPLE, Chapter("BOSNIA AND HERZEGOVINA\n(Tier 1)", "Bosnia and Herzegovina", paragraphs=1)]


@pytest.fixture(scope="module")
def report() -> bytes:
    return report_pdf(CHAPTERS)


@pytest.fixture(scope="module")
def documents(report) -> list[ReportDocument]:
    return parse_pdf(report, URL + "?utm_source=x#cover")


def pages_of(report: bytes) -> list[str]:
    return extract_text(report).pages


def test_one_document_per_country_chapter_with_tier_and_pages(documents, report) -> None:
    found = [(d.country.name, d.tier, d.page_start, d.page_end) for d in documents]
    pages = pages_of(report)
    # Read off the generated file: cover + 3 front-matter pages, then the chapters, then 2 appendices.
    assert found == [
        ("Mali", "Tier 2", 5, 6),
        ("Laos", "Tier 2 Watch List", 7, 9),
        ("Thailand", "Tier 2", 10, 10),
        ("Myanmar", "Tier 3", 11, 11),
        ("Somalia", "Special Case", 12, 12),
        ("Bosnia and Herzegovina", "Tier 1", 13, 13),
    ]
    assert len(pages) == 15
    # Each chapter's heading is on its first page, and the page after its last opens the next part.
    openers = [c.heading.split("\n")[0] for c in CHAPTERS[1:]] + ["RELEVANT INTERNATIONAL CONVENTIONS"]
    for document, chapter, opener in zip(documents, CHAPTERS, openers, strict=True):
        assert chapter.heading.split("\n")[0] in pages[document.page_start - 1]
        assert opener in pages[document.page_end]


def test_chapter_urls_open_the_pdf_at_its_page_and_ids_are_stable(documents) -> None:
    for document in documents:
        assert document.url == f"{URL}#page={document.page_start}"
        assert document.canonical_url == document.url
        assert document.container_url == URL
        assert document.id == doc_id(f"{URL}#{document.country.iso2}")
    assert len({d.id for d in documents}) == len(documents)


def test_ids_survive_a_new_edition_with_moved_pages(documents) -> None:
    """A chapter keeps its id when pages move (here: one chapter fewer before it), so re-crawling replaces it."""
    moved = parse_pdf(report_pdf([c for c in CHAPTERS if c.name != "Mali"]), URL)
    by_country = {d.country.iso2: d for d in documents}
    for document in moved:
        assert document.id == by_country[document.country.iso2].id
        assert document.page_start < by_country[document.country.iso2].page_start


def test_chapters_have_the_fields_of_a_report_page(documents) -> None:
    for document in documents:
        VALIDATOR.validate(document.to_source())
        assert document.source == "pdf"
        assert document.report_series == "Trafficking in Persons Report"
        assert document.report_year == 2019
        assert document.publisher == "United States Department of State"
        assert document.publication_date == "2019-06-20"
        assert document.title == f"2019 Trafficking in Persons Report: {document.country.name}"
        assert [s["heading"] for s in document.sections] == [
            f"Recommendations for {CHAPTERS[documents.index(document)].name}",
            "PROSECUTION", "PROTECTION", "PREVENTION", "TRAFFICKING PROFILE"]
        assert document.trafficking_roles == ["source", "transit", "destination"]
        assert document.exploitation_types == ["forced_labor", "sex_trafficking", "domestic_servitude",
                                                  "forced_begging"]
        assert document.victim_groups == ["children", "women", "men"]
        assert document.summary.startswith(f"The Government of {CHAPTERS[documents.index(document)].name}")


def test_front_matter_appendices_and_running_lines_belong_to_no_chapter(documents) -> None:
    text = "\n".join(d.body for d in documents)
    for outside in ("LETTER FROM THE SECRETARY", "Dear Reader", "TIER PLACEMENTS", "Australia",
                    "RELEVANT INTERNATIONAL CONVENTIONS", "Palermo Protocol", "GLOSSARY", "International Labor"):
        assert outside not in text
    assert "TRAFFICKING IN PERSONS REPORT JUNE" not in text
    # A chapter running over a page break is one text: the paragraph goes on after the page number.
    laos = documents[1].body
    assert "\n13\n" not in laos and "9 Laos" not in laos


def test_the_demo_sites_pdf_parses_into_its_chapters() -> None:
    demo = Path(__file__).parent.parent / "deploy" / "demo-site" / "pdf" / "tip-2019-sample.pdf"
    documents = parse_pdf(demo.read_bytes(), "http://127.0.0.1:8765/pdf/tip-2019-sample.pdf")
    assert [(d.country.iso2, d.tier, d.page_start, d.page_end) for d in documents] == [
        ("ML", "Tier 2", 5, 6), ("LA", "Tier 2 Watch List", 7, 9), ("TH", "Tier 2", 10, 10),
        ("MM", "Tier 3", 11, 11), ("SO", "Special Case", 12, 12)]


def test_a_country_pdf_is_one_document_at_the_pdf_url() -> None:
    url = "https://www.refworld.org/pdfid/5d7fcd7f4.pdf"
    [document] = parse_pdf(country_pdf(Chapter("MALI: TIER 2", "Mali")), url)
    VALIDATOR.validate(document.to_source())
    assert document.id == doc_id(url)
    assert (document.url, document.container_url) == (url, url)
    assert (document.country.iso3, document.tier, document.report_year) == ("MLI", "Tier 2", 2019)
    assert (document.page_start, document.page_end) == (2, 3)


def test_a_pdf_without_chapter_headings_takes_its_country_from_the_title() -> None:
    body = report_pdf([], front_matter=True, appendices=False, title="Trafficking in Persons Report 2012 - Nepal")
    [document] = parse_pdf(body, "https://example.org/nepal.pdf")
    assert document.country.name == "Nepal"
    assert (document.page_start, document.page_end) == (1, 4)
    assert document.tier is None


@pytest.mark.parametrize(("line", "following", "expected"), [
    ("MALI (Tier 2)", None, ("ML", "Tier 2", 1)),
    ("MALI: TIER 2", None, ("ML", "Tier 2", 1)),
    ("Mali (Tier 2 Watch List)", None, ("ML", "Tier 2 Watch List", 1)),
    ("SOMALIA (Special Case)", None, ("SO", "Special Case", 1)),
    ("SPECIAL CASE: SOMALIA", None, ("SO", "Special Case", 1)),
    ("CONGO, DEMOCRATIC REPUBLIC OF THE (Tier 3)", None, ("CD", "Tier 3", 1)),
    ("KOREA, NORTH (TIER 3)", None, ("KP", "Tier 3", 1)),
    ("BOSNIA AND HERZEGOVINA", "(Tier 1)", ("BA", "Tier 1", 2)),
    ("TIER 2", None, None),                                   # a tier list's title
    ("TIER 2 WATCH LIST", "Laos", None),
    ("ATLANTIS (Tier 2)", None, None),                        # not a country
    ("Mali (Tier 2) improved its efforts this year.", None, None),  # narrative, not a heading
    ("Mali (Tier 2) ........ 263", None, None),                # a table of contents line
    ("SPECIAL CASES", None, None),
])
def test_heading_forms(line, following, expected) -> None:
    found = heading(line, following)
    assert (None if found is None else (found[0].iso2, found[1], found[2])) == expected


def test_tier_lists_in_the_front_matter_are_not_chapters() -> None:
    split = split_chapters(["Cover\n", "TIER 2\nMali (Tier 2)\nLaos (Tier 2)\nTIER 3\nBurma (Tier 3)\n",
                            "MALI (Tier 2)\n" + "Mali is a source country for forced labor. " * 10])
    assert [(c.country.iso2, c.page_start) for c in split.chapters] == [("ML", 3)]


def test_blocks_find_paragraphs_headings_and_broken_words() -> None:
    lines = [
        "The government made efforts to prosecute traffickers and to protect the victims of",
        "trafficking in the north of the country, where armed groups recruited traf\x02",
        "ficking victims and non-",
        "governmental organizations ran the only shelters for them.",
        "PROSECUTION",
        "Authorities investigated five cases in the capital and two in other regions of the",
        "country.",
    ]
    assert blocks(lines) == [
        ("The government made efforts to prosecute traffickers and to protect the victims of trafficking in "
         "the north of the country, where armed groups recruited trafficking victims and non-governmental "
         "organizations ran the only shelters for them.", False),
        ("PROSECUTION", True),
        ("Authorities investigated five cases in the capital and two in other regions of the country.", False),
    ]


# --- unreadable PDFs: each with its own reason ------------------------------------------


def reason_of(body: bytes) -> PdfError:
    with pytest.raises(PdfError) as caught:
        parse_pdf(body, URL)
    assert isinstance(caught.value, ParseError)  # the pipeline's one parse exception
    return caught.value


def test_a_scan_without_text_layer_is_refused() -> None:
    error = reason_of(scanned_pdf(pages=2))
    assert error.reason == PDF_NO_TEXT
    assert "no text layer on any of its 2 pages" in str(error)


def test_a_scan_behind_a_typed_cover_is_refused() -> None:
    error = reason_of(scanned_pdf(pages=3, typed_cover=True))
    assert error.reason == PDF_NO_TEXT
    assert "no text layer on 3 of its 4 pages" in str(error)


def test_an_encrypted_pdf_is_refused() -> None:
    assert reason_of(encrypted_pdf(SAMPLE[:1])).reason == PDF_ENCRYPTED


def test_a_pdf_with_only_an_owner_password_is_read() -> None:
    """Permissions-only encryption (no user password) is common and opens without one."""
    documents = parse_pdf(encrypted_pdf(SAMPLE[:2], user_password=""), URL)
    assert [d.country.iso2 for d in documents] == ["ML", "LA"]


def test_truncated_and_corrupt_pdfs_are_refused(report) -> None:
    assert reason_of(report[: len(report) // 2]).reason == PDF_TRUNCATED
    # The end marker is there but the body is broken.
    assert reason_of(report[:200] + b"\x00garbage" * 50 + b"\n%%EOF\n").reason == PDF_CORRUPT
    assert reason_of(b"<html>not a pdf</html>").reason == PDF_CORRUPT


def test_pdf_error_survives_pickling_with_its_reason() -> None:
    error = pickle.loads(pickle.dumps(PdfError(PDF_TRUNCATED, "cut short")))
    assert (error.reason, str(error)) == (PDF_TRUNCATED, "cut short")


def test_bad_url_is_a_parse_error(report) -> None:
    with pytest.raises(ParseError, match="bad URL"):
        parse_pdf(report, "ftp://example.org/r.pdf")


def test_pdf_text_extraction_is_bounded_by_pages_and_time(report) -> None:
    """A hostile PDF (thousands of pages, pages that take long to read) ends as a failure record
    with its reason, not by holding its worker until the hard time limit."""
    pages = len(pages_of(report))
    with pytest.raises(PdfError) as err:
        extract_text(report, max_pages=pages - 1)
    assert err.value.reason == PDF_TOO_MANY_PAGES and f"{pages} pages" in err.value.detail
    with pytest.raises(PdfError) as err:
        extract_text(report, max_seconds=-1)  # the deadline has passed before the first page
    assert err.value.reason == PDF_TOO_SLOW
    assert len(extract_text(report, max_pages=pages).pages) == pages
