"""Chapters of a PDF -> report documents with the same fields as an HTML report page.

Plain PDF text has lines, not paragraphs: a line that ends a sentence and stops well short
of the column's width ends its paragraph; a short line without end punctuation that follows
a paragraph end is a heading ("PROSECUTION", "Recommendations for Mali").
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Any

from workers.documents import PDF_SOURCE, ReportDocument
from workers.urls import PageURL, doc_id

from . import countries, facets
from .chapters import Split
from .document import PARSER_VERSION

if TYPE_CHECKING:
    from .pdf import PdfText

# Who publishes each series: PDFs rarely name their publisher in a parseable place.
SERIES_PUBLISHERS = {
    "Trafficking in Persons Report": "United States Department of State",
    "Country Reports on Human Rights Practices": "United States Department of State",
    "International Religious Freedom Report": "United States Department of State",
    "Country Reports on Terrorism": "United States Department of State",
    "Freedom in the World": "Freedom House",
    "Freedom on the Net": "Freedom House",
    "Freedom of the Press": "Freedom House",
    "World Report": "Human Rights Watch",
}
_MIN_SUMMARY_CHARS = 60
_MAX_HEADING_CHARS = 80
_MAX_HEADING_WORDS = 10
# A line shorter than this share of the chapter's usual line length can end a paragraph.
_SHORT_LINE = 0.85
_HEADING_LINE = 0.6
_SENTENCE_END = re.compile(r"[.!?:][\"'\u201d\u2019)\]]?$")
_SOFT_HYPHENS = ("\x02", "\u00ad")   # PDFium marks a word broken at a line end with \x02
_TITLE_SEPARATORS = re.compile(r"\s+[-\u2013\u2014|:]\s+|:\s+")


def _typical_length(lines: list[str]) -> float:
    lengths = sorted(len(line) for line in lines)
    return lengths[int(len(lengths) * 0.9)] if lengths else 0.0


def _heading_shape(line: str) -> bool:
    return (len(line) <= _MAX_HEADING_CHARS and line[:1].isupper() and not _SENTENCE_END.search(line)
            and not line.endswith((",", ";")) and len(line.split()) <= _MAX_HEADING_WORDS)


def _join(text: str, line: str) -> str:
    if text.endswith(_SOFT_HYPHENS):
        return text[:-1] + line
    if text.endswith("-") and line[:1].islower():
        return text + line
    return f"{text} {line}" if text else line


def blocks(lines: list[str]) -> list[tuple[str, bool]]:
    """(text, is_heading) for the paragraphs and headings of a run of lines, in order."""
    typical = _typical_length(lines)
    out: list[tuple[str, bool]] = []
    text = ""
    for line in lines:
        # A wrapped line fills the column; a heading after a sentence's end does not.
        after_sentence = _SENTENCE_END.search(text) and len(line) < typical * _HEADING_LINE
        if _heading_shape(line) and (not text or after_sentence):
            if text:
                out.append((text, False))
                text = ""
            out.append((line, True))
            continue
        text = _join(text, line)
        if _SENTENCE_END.search(line) and len(line) < typical * _SHORT_LINE:
            out.append((text, False))
            text = ""
    if text:
        out.append((text, False))
    return out


def _sections(found: list[tuple[str, bool]]) -> list[dict[str, str]]:
    sections: list[dict[str, str]] = []
    for text, is_heading in found:
        if is_heading:
            sections.append({"heading": text, "text": ""})
        elif sections:
            last = sections[-1]
            last["text"] = f"{last['text']}\n\n{text}" if last["text"] else text
    return [s for s in sections if s["text"]]


def _summary(found: list[tuple[str, bool]]) -> str | None:
    return next((text for text, is_heading in found if not is_heading and len(text) >= _MIN_SUMMARY_CHARS
                 and not facets.tier_from([text])), None)


def _title_country(title: str | None, cover: list[str]) -> countries.Country | None:
    """The country a single-country PDF names in its title ("... Report 2019 - Mali")."""
    for text in (title, *cover):
        for part in _TITLE_SEPARATORS.split(text or ""):
            if country := countries.lookup(part):
                return country
    return None


def chapter_documents(text: PdfText, split: Split, pdf: PageURL, body: bytes) -> list[ReportDocument]:
    pdf_url = pdf.url
    evidence = [text.title, " ".join(split.cover), *split.running]
    shared = {
        "container_url": pdf_url,
        "source": PDF_SOURCE,
        "report_series": facets.series_from(*evidence),
        "report_year": facets.year_from(*evidence),
        "publication_date": text.created,
        "last_updated": text.modified if text.modified != text.created else None,
        "content_sha256": hashlib.sha256(body).hexdigest(),
    }
    shared["publisher"] = SERIES_PUBLISHERS.get(shared["report_series"] or "") or (text.author or "").strip() or None
    if len(split.chapters) >= 2:
        seen: dict[str, int] = {}
        documents = []
        for chapter in split.chapters:
            # The chapter's place in the PDF is its country: stable when pages move between editions.
            seen[chapter.country.iso2] = seen.get(chapter.country.iso2, 0) + 1
            key = chapter.country.iso2 + (f"-{seen[chapter.country.iso2]}" if seen[chapter.country.iso2] > 1 else "")
            url = f"{pdf_url}#page={chapter.page_start}"
            documents.append(_document(chapter.lines, chapter.country, chapter.tier, chapter.page_start,
                                       chapter.page_end, url, doc_id(f"{pdf_url}#{key}"), text.title, shared))
        return documents
    if split.chapters:
        only = split.chapters[0]
        return [_document(only.lines, only.country, only.tier, only.page_start, only.page_end,
                          pdf_url, pdf.key, text.title, shared)]
    # No chapter heading: the tier stays unknown, since a tier list in the front matter
    # ("TIER 1" over a list of countries) would otherwise pass for this country's tier.
    lines = [line for page in split.pages for line in page]
    return [_document(lines, _title_country(text.title, split.cover), None, 1, len(split.pages), pdf_url, pdf.key,
                      text.title, shared)]


def _document(lines: list[str], country: countries.Country | None, tier: str | None, page_start: int,
              page_end: int, url: str, document_id: str, pdf_title: str | None,
              shared: dict[str, Any]) -> ReportDocument:
    found = blocks(lines)
    sections = _sections(found)
    body = "\n\n".join(text for text, _heading in found)
    series, year = shared["report_series"], shared["report_year"]
    if country and series and year:
        title = f"{year} {series}: {country.name}"
    elif country and pdf_title and country.name not in pdf_title:
        title = f"{pdf_title.strip()}: {country.name}"
    else:
        title = (pdf_title or "").strip() or (country.name if country else None)
    return ReportDocument(
        id=document_id,
        url=url,
        canonical_url=url,
        title=title,
        author=None,
        country=country,
        tier=tier,
        citation=None,
        summary=_summary(found),
        body=body or None,
        sections=sections,
        **facets.narrative_facets(sections, body, country),
        language=None,
        parser_version=PARSER_VERSION,
        page_start=page_start,
        page_end=page_end,
        **shared,
    )
