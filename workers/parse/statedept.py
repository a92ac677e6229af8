"""State Department report pages: the current state.gov and the 2009-2017 archive.

Current layout: the report name as a link above the headline (eyebrow), the bureau
on the line under it, dates in meta tags. The 2009-2017 archive
(2009-2017.state.gov) puts the report name in a link under the headline and in the
breadcrumb, the date as plain text under the headline, and the Department's name
only in the page header.
"""

from __future__ import annotations

import re
from itertools import chain

from bs4 import Tag

from .base import Extract, report_blocks
from .dates import parse_date
from .facets import series_from
from .publishers import STATE_DEPARTMENT
from .tree import Page, next_element, previous_element, spaced_text, text_of

_HOSTS = ("state.gov",)
_MAX_LINE = 150
# Series the Department publishes; a page elsewhere showing one of these as its
# report link is laid out like state.gov (another publisher's series is not).
_DEPARTMENT_SERIES = frozenset({"Trafficking in Persons Report", "Country Reports on Human Rights Practices",
                                "International Religious Freedom Report", "Country Reports on Terrorism"})
_BREADCRUMB = re.compile(r"breadcrumb", re.I)
_HEADER = re.compile(r"^header$|site-header", re.I)
_BANNER = re.compile(r"^banner$")
_DEPARTMENT = re.compile(r"\b(?:U\.\s?S\.|United\s+States)\s+Department\s+of\s+State\b", re.I)


class StateDeptParser:
    name = "statedept"

    def extract(self, page: Page, forced: bool) -> Extract | None:
        headline = next((h for h in page.tags("h1") if text_of(h)), None)
        eyebrow = _report_link(headline) if headline is not None else None
        below = [el for el in _lines_below(headline) if el is not eyebrow] if headline is not None else []
        dateline = next((el for el in below if parse_date(spaced_text(el))), None)
        on_site = any(page.host == h or page.host.endswith("." + h) for h in _HOSTS)
        # Elsewhere the layout must show itself: a Department report linked next to the
        # headline, or (archive) a dateline under it in a page whose header names the Department.
        if not (forced or on_site
                or (eyebrow is not None and series_from(text_of(eyebrow)) in _DEPARTMENT_SERIES)
                or (dateline is not None and _header_department(page))):
            return None
        if headline is None:
            return None if not forced else Extract(blocks=report_blocks(page))
        country = text_of(headline)
        report = text_of(eyebrow) if eyebrow is not None else None
        bureau = _bureau(below[0]) if below and below[0] is not dateline else None
        author = text_of(bureau) if bureau is not None else None
        crumbs = next(chain(page.with_attr("class", _BREADCRUMB), page.with_attr("id", _BREADCRUMB)),
                      None)
        series_texts = [t for t in (report, text_of(crumbs)) if t]
        publication_date = parse_date(page.first_meta("article:published_time")) or (
            parse_date(spaced_text(dateline)) if dateline is not None else None)
        page.remove(el for el in (eyebrow, headline, bureau, dateline) if el is not None)
        return Extract(
            title=f"{report}: {country}" if report else country,
            publisher=page.first_meta("og:site_name") or _header_department(page),
            author=author,
            publication_date=publication_date,
            last_updated=parse_date(page.first_meta("article:modified_time", "og:updated_time")),
            country_names=[country],
            series_texts=series_texts,
            blocks=report_blocks(page),
        )


def _report_link(headline: Tag) -> Tag | None:
    """The short link naming the report: above the headline, or (archive) right under it."""
    above = previous_element(headline)
    if above is not None and _is_link_line(above):
        return above
    below = next_element(headline)
    if below is not None and _is_link_line(below) and series_from(text_of(below)):
        return below
    return None


def _is_link_line(el: Tag) -> bool:
    return len(text_of(el)) <= _MAX_LINE and (el.name == "a" or el.find("a") is not None)


def _lines_below(headline: Tag) -> list[Tag]:
    """The two elements after the headline: where the archive puts report link and date."""
    first = next_element(headline)
    second = next_element(first) if first is not None else None
    return [el for el in (first, second) if el is not None]


def _bureau(below: Tag) -> Tag | None:
    """The issuing office on the line under the headline: a short name, not a date or sentence."""
    # More than one paragraph below the headline is the report itself, not a byline;
    # a line that is only a link is navigation ("Reports").
    if len(below.find_all("p", limit=2)) > 1 or _only_link(below):
        return None
    text = text_of(below)
    if not text or len(text) > _MAX_LINE or text.endswith(".") or parse_date(text):
        return None
    return below


def _only_link(el: Tag) -> bool:
    link = el if el.name == "a" else el.find("a")
    return link is not None and text_of(link) == text_of(el)


def _header_department(page: Page) -> str | None:
    """The archive names the Department only in its page header."""
    header = next(chain(page.tags("header"), page.with_attr("id", _HEADER),
                        page.with_attr("role", _BANNER)), None)
    return STATE_DEPARTMENT if header is not None and _DEPARTMENT.search(spaced_text(header)) else None
