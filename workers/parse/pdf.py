"""PDF bytes -> report documents: one per country chapter of a full report, one for a country PDF.

    from workers.parse.pdf import parse_pdf, PdfError
    documents = parse_pdf(body, url)        # list of ReportDocument (workers/documents.py)

Text comes from PDFium (pypdfium2), page by page, so every document keeps the pages it came
from; benchmarks/pdf.py measured it against pdfminer.six (docs/benchmarks.md). A PDF that
cannot give text raises PdfError, a ParseError whose `reason` says why, for failure records.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import date

import pypdfium2 as pdfium

from workers.documents import ReportDocument
from workers.settings import get_settings
from workers.urls import InvalidURL, PageURL, page_url

from .chapters import split_chapters
from .errors import ParseError
from .pdf_document import chapter_documents

__all__ = ["PDF_REASONS", "PdfError", "PdfText", "extract_text", "is_pdf", "parse_pdf"]

# Reason codes a caller can act on: retrying helps a truncated download, nothing helps the others.
PDF_ENCRYPTED = "pdf_encrypted"
PDF_TRUNCATED = "pdf_truncated"
PDF_CORRUPT = "pdf_corrupt"
PDF_NO_TEXT = "pdf_no_text"
PDF_TOO_MANY_PAGES = "pdf_too_many_pages"
PDF_TOO_SLOW = "pdf_too_slow"
PDF_REASONS = (PDF_ENCRYPTED, PDF_TRUNCATED, PDF_CORRUPT, PDF_NO_TEXT, PDF_TOO_MANY_PAGES, PDF_TOO_SLOW)

# PDFium's FPDF_GetLastError codes for a document that needs a password or a handler it lacks.
_PASSWORD_ERRORS = frozenset({pdfium.raw.FPDF_ERR_PASSWORD, pdfium.raw.FPDF_ERR_SECURITY})
# A page with fewer characters than this is furniture or an image (a scan), not report text.
MIN_PAGE_CHARS = 40
# Readers look for the end-of-file marker within the last 1024 bytes (ISO 32000-1, 7.5.5).
_EOF_WINDOW = 1024
_PDF_DATE = re.compile(r"^D:(\d{4})(\d{2})?(\d{2})?")


class PdfError(ParseError):
    """A PDF that cannot become documents; `reason` is one of PDF_REASONS."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail, reason)
        self.detail = detail

    def __reduce__(self):  # Celery pickles exceptions that cross processes
        return (type(self), (self.reason, self.detail))


@dataclass
class PdfText:
    pages: list[str]                    # text of each page, page 1 first; lines end with "\n"
    title: str | None = None            # document information dictionary
    author: str | None = None
    created: str | None = None          # YYYY-MM-DD
    modified: str | None = None


def is_pdf(body: bytes) -> bool:
    """The `%PDF-` signature, which may follow a little junk (readers search the first 1 KB)."""
    return b"%PDF-" in body[:1024]


def extract_text(body: bytes, max_pages: int | None = None, max_seconds: float | None = None) -> PdfText:
    """Every page's text, or PdfError (encrypted, truncated, corrupt, no text layer, more than
    `max_pages` pages, or not read within `max_seconds`: PDF_MAX_PAGES, PDF_PARSE_SECONDS)."""
    settings = get_settings()
    max_pages = settings.pdf_max_pages if max_pages is None else max_pages
    deadline = time.monotonic() + (settings.pdf_parse_seconds if max_seconds is None else max_seconds)
    if not is_pdf(body):
        raise PdfError(PDF_CORRUPT, "not a PDF: no %PDF- signature")
    if b"%%EOF" not in body[-_EOF_WINDOW:]:
        raise PdfError(PDF_TRUNCATED, f"PDF truncated: no %%EOF marker at the end of {len(body)} bytes")
    try:
        document = pdfium.PdfDocument(body)
    except pdfium.PdfiumError as exc:
        if getattr(exc, "err_code", None) in _PASSWORD_ERRORS:
            raise PdfError(PDF_ENCRYPTED, "PDF is encrypted and needs a password to open") from exc
        raise PdfError(PDF_CORRUPT, f"PDF cannot be read: {exc}") from exc
    try:
        if len(document) > max_pages:
            raise PdfError(PDF_TOO_MANY_PAGES, f"PDF has {len(document)} pages, more than the {max_pages} read")
        pages = []
        for index in range(len(document)):
            if time.monotonic() > deadline:
                raise PdfError(PDF_TOO_SLOW, f"PDF text not read in time: {index} of {len(document)} pages "
                                             "within the PDF_PARSE_SECONDS limit")
            page = document[index]
            try:
                textpage = page.get_textpage()
                pages.append(textpage.get_text_range().replace("\r\n", "\n").replace("\r", "\n"))
                textpage.close()
            finally:
                page.close()
        meta = document.get_metadata_dict(skip_empty=True)
    except pdfium.PdfiumError as exc:
        raise PdfError(PDF_CORRUPT, f"PDF page cannot be read: {exc}") from exc
    finally:
        document.close()
    if not pages:
        raise PdfError(PDF_CORRUPT, "PDF has no pages")
    empty = [text for text in pages if len(text.strip()) < MIN_PAGE_CHARS]
    if len(empty) == len(pages):
        raise PdfError(PDF_NO_TEXT, f"PDF has no text layer on any of its {len(pages)} pages (a scan?)")
    # A scan with a typed cover or an OCR'd first page: what text there is would pass for the report.
    if len(empty) * 2 > len(pages):
        raise PdfError(PDF_NO_TEXT, f"PDF has no text layer on {len(empty)} of its {len(pages)} pages (a scan?)")
    return PdfText(pages, title=meta.get("Title"), author=meta.get("Author"),
                   created=_pdf_date(meta.get("CreationDate")), modified=_pdf_date(meta.get("ModDate")))


def _pdf_date(raw: str | None) -> str | None:
    """'D:20190620120000Z' -> '2019-06-20'; None when absent or not a real date."""
    match = _PDF_DATE.match(raw or "")
    if not match:
        return None
    year, month, day = int(match.group(1)), int(match.group(2) or 1), int(match.group(3) or 1)
    try:
        return date(year, month, day).isoformat()
    except ValueError:
        return None


def parse_pdf(body: bytes, url: str | PageURL) -> list[ReportDocument]:
    """Documents for one PDF: a chapter each for a full report, or one for a country PDF.

    Every document carries `container_url` (the PDF's normalised URL) so that the
    pipeline can replace or remove all chapters of a PDF at once.
    """
    try:
        pdf = page_url(url)
    except InvalidURL as exc:
        raise ParseError(f"bad URL: {url!r}", "bad_url") from exc
    text = extract_text(body)
    return chapter_documents(text, split_chapters(text.pages), pdf, body)
