"""Any site: Open Graph and other meta tags, <time>, bylines, boilerplate removal."""

from __future__ import annotations

import re

from .base import Extract, first_heading, report_blocks, strip_site_name
from .dates import parse_date
from .tree import Page, norm, text_of

_PUBLISHED = ("article:published_time", "datepublished", "citation_publication_date",
              "dc.date.issued", "dcterms.issued", "dc.date", "date", "pubdate", "publish-date")
_MODIFIED = ("article:modified_time", "og:updated_time", "datemodified", "dcterms.modified",
             "last-modified")
_BYLINE = re.compile(r"^\s*by\s+(?P<who>[^,|\d][^|]{1,80}?)\s*(?:[,|\u2013-]\s*.*)?$", re.I)
_TITLE_SPLIT = re.compile(r"\s+(?:[-\u2013\u2014|:])\s+|:\s+")


class GenericParser:
    name = "generic"

    def extract(self, page: Page, forced: bool) -> Extract:
        heading = first_heading(page, "h1")
        site = page.first_meta("og:site_name")
        title = page.first_meta("og:title") or text_of(heading) or strip_site_name(
            text_of(page.first("title")), site)
        published = parse_date(page.first_meta(*_PUBLISHED))
        time_el = next((t for t in page.tags("time") if t.get("datetime") or text_of(t)), None)
        if published is None and time_el is not None:
            published = parse_date(time_el.get("datetime") or text_of(time_el))
        author = page.first_meta("author", "article:author", "dc.creator", "citation_author")
        if author and author.startswith("http"):
            author = None
        byline = self._byline(page)
        if author is None and byline:
            author = byline[0]
        if published is None and byline:
            published = byline[1]
        return Extract(
            title=strip_site_name(title, site),
            publisher=site,
            author=author,
            publication_date=published,
            last_updated=parse_date(page.first_meta(*_MODIFIED)),
            country_names=[p for p in _TITLE_SPLIT.split(title or "") if p],
            series_texts=[title] if title else [],
            blocks=report_blocks(page),
        )

    @staticmethod
    def _byline(page: Page) -> tuple[str | None, str | None] | None:
        """'By Jane Doe, 12 March 2021' in an element whose name says byline or author."""
        for el in page.soup.select("[class*=byline], [class*=author], [rel=author]"):
            text = text_of(el)
            if not text or len(text) > 160:
                continue
            match = _BYLINE.match(text)
            who = norm(match.group("who")) if match else None
            return who, parse_date(text)
        return None
