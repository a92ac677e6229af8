"""Page bytes -> report documents: a page's one, or a PDF's (workers/parse/__init__.py)."""

from __future__ import annotations

import logging

from workers.documents import ReportDocument
from workers.urls import InvalidURL, PageURL, page_url

from .base import SiteParser
from .decode import check_media, check_text, decode_html
from .document import build
from .errors import ParseError
from .generic import GenericParser
from .pdf import is_pdf, parse_pdf
from .refworld import RefworldParser
from .statedept import StateDeptParser
from .tree import parse_tree

log = logging.getLogger(__name__)

# Tried in order; the generic parser accepts every page, so it comes last.
PARSERS: dict[str, SiteParser] = {
    p.name: p for p in (RefworldParser(), StateDeptParser(), GenericParser())
}


def parse_page(body: bytes, url: str | PageURL, content_type: str | None = None,
               parser: str | None = None) -> ReportDocument:
    """Parse one fetched page; raise ParseError (only) when it cannot be a report document.

    `url`: where the page was served from, or the fetch's page for it (normalised and hashed
    already). `parser` forces a site parser by name ("refworld", "statedept", "generic").
    """
    if parser is not None and parser not in PARSERS:
        raise ParseError(f"unknown parser: {parser}", "unknown_parser")
    try:
        address = page_url(url)
    except InvalidURL as exc:
        raise ParseError(f"bad URL: {url!r}", "bad_url") from exc
    check_media(body, content_type)
    text = decode_html(body, content_type)
    check_text(text, content_type)
    page = parse_tree(text, address.url)
    chosen = [PARSERS[parser]] if parser else list(PARSERS.values())
    for candidate in chosen:
        found = candidate.extract(page, forced=parser is not None or candidate is chosen[-1])
        if found is not None:
            break
    else:  # pragma: no cover - the last candidate is always forced
        raise ParseError("no parser accepted the page")
    if not found.blocks:
        raise ParseError("no report text found", "no_report_text")
    return build(page, found, candidate.name, body, address)


def parse_documents(body: bytes, url: str | PageURL, content_type: str | None = None,
                    parser: str | None = None) -> list[ReportDocument]:
    """Every report document in one fetched body: the page's one, or a PDF's (a chapter each for
    a full report). Raises ParseError (a PdfError for PDFs, with its reason) when there is none."""
    if is_pdf(body):
        return parse_pdf(body, url)
    return [parse_page(body, url, content_type, parser)]


def parse_failure(exc: Exception, url: str) -> tuple[str, str]:
    """(reason, detail) of a failure record for a page `parse_page` could not read.

    A ParseError carries its own reason; any other exception is a parser bug, which
    costs that one page (as `parser_crash`, logged with its traceback), never the run.
    """
    if isinstance(exc, ParseError):
        return exc.reason, str(exc)
    log.error("parser crashed on %s", url, exc_info=exc)
    return "parser_crash", f"{exc.__class__.__name__}: {exc}"
