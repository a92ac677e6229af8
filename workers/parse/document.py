"""Assemble the output document from a site parser's findings: facets, ids, sections."""

from __future__ import annotations

import hashlib
from urllib.parse import urljoin, urlsplit

from workers.documents import ReportDocument
from workers.urls import InvalidURL, PageURL

from . import facets, language, prose, publishers
from .base import Extract
from .content import Block
from .subject import subject_country
from .tree import Page, norm

PARSER_VERSION = "2.1.0"
_MIN_SUMMARY_CHARS = 60


def build(page: Page, found: Extract, source: str, raw: bytes, address: PageURL) -> ReportDocument:
    """The document of `page`, read from `address` (its URL as a page: the ID is its hash when the
    page names no canonical URL of its own)."""
    title = norm(found.title) or None
    blocks = _without_title(found.blocks, title)
    sections = _sections(blocks)
    body = "\n\n".join(b.text for b in blocks)
    subject = subject_country(found.country_names, title, blocks, page.url)
    canonical = _canonical(page, address)
    return ReportDocument(
        id=canonical.key,
        url=page.url,
        canonical_url=canonical.url,
        source=source,
        title=title,
        publisher=publishers.canonical(found.publisher),
        author=norm(found.author) or None,
        publication_date=found.publication_date,
        last_updated=found.last_updated,
        report_series=facets.series_from(*found.series_texts),
        report_year=facets.year_from(*found.series_texts),
        country=subject,
        tier=prose.tier_for([*(t for t in [title] if t), *(b.text for b in blocks)], subject),
        citation=norm(found.citation) or None,
        summary=_summary(blocks, page.first_meta("description", "og:description"), body),
        body=body or None,
        sections=sections,
        **facets.narrative_facets(sections, body, subject),
        language=_language(page, found, body),
        content_sha256=hashlib.sha256(raw).hexdigest(),
        parser_version=PARSER_VERSION,
    )


def _without_title(blocks: list[Block], title: str | None) -> list[Block]:
    """The page headline is the title field; repeating it as the body's first line adds noise."""
    if blocks and title and blocks[0].heading and blocks[0].text.casefold() == title.casefold():
        return blocks[1:]
    return blocks


def _sections(blocks: list[Block]) -> list[dict[str, str]]:
    sections: list[dict[str, str]] = []
    heading: str | None = None
    texts: list[str] = []
    for block in [*blocks, Block("", heading=True)]:
        if not block.heading:
            texts.append(block.text)
            continue
        if heading is not None and texts:
            sections.append({"heading": heading, "text": "\n\n".join(texts)})
        heading, texts = block.text, []
    return sections


def _summary(blocks: list[Block], description: str | None, body: str) -> str | None:
    """First narrative paragraph; the meta description only if it is the report's own text."""
    for block in blocks:
        if not block.heading and len(block.text) >= _MIN_SUMMARY_CHARS and not facets.tier_from(
                [block.text]):
            return block.text
    if description and norm(description).rstrip(".\u2026 ") in body:
        return norm(description)
    return None


def _same_site(a: str, b: str) -> bool:
    return a.removeprefix("www.") == b.removeprefix("www.")


def _canonical(page: Page, address: PageURL) -> PageURL:
    """<link rel=canonical> when it points at a page on the same site, else the fetched URL (`address`).

    Other hosts are refused because a mirror naming the original would merge two
    distinct copies, and a canonical pointing at the site root (a common template
    mistake) would merge every page into one document.
    """
    href = page.links.get("canonical")
    if not href:
        return address
    try:
        candidate = PageURL.of(urljoin(page.url, href))
    except (InvalidURL, ValueError):
        return address
    target, here = urlsplit(candidate.url), urlsplit(page.url)
    if not _same_site(target.hostname or "", here.hostname or ""):
        return address
    if target.path in ("", "/") and here.path not in ("", "/"):
        return address
    # A page that names itself keeps the hash it has.
    return address if candidate == address else candidate


def _language(page: Page, found: Extract, body: str) -> str | None:
    """What the page states for this document, else what its text is, else what the site declares."""
    return (language.code(found.language) or language.detect(body)
            or next((c for raw in (page.root.get("lang"), page.root.get("xml:lang"),
                                   page.first_meta("og:locale"), page.first_meta("content-language"))
                     if (c := language.code(raw))), None))
