"""What a site parser hands back, and the steps all of them share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from bs4 import Tag

from .content import Block, blocks, main_container, strip_furniture
from .tree import Page, norm, text_of


@dataclass
class Extract:
    """Site-specific findings; document.py derives every facet from these."""

    title: str | None = None
    publisher: str | None = None
    author: str | None = None
    publication_date: str | None = None
    last_updated: str | None = None
    citation: str | None = None
    # The document's language as the page states it ("Language: English"), if it does.
    language: str | None = None
    # The country the report is about, as the page names it.
    country_names: list[str] = field(default_factory=list)
    # Short texts naming the report ("2019 Trafficking in Persons Report"): series and year.
    series_texts: list[str] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)


class SiteParser(Protocol):
    name: str

    def extract(self, page: Page, forced: bool) -> Extract | None:
        """Findings for the page, or None when the page is not this site's kind (unless forced)."""


def report_blocks(page: Page) -> list[Block]:
    """Report text of what is left of the page once its metadata has been taken out."""
    strip_furniture(page)
    return blocks(main_container(page))


def first_heading(page: Page, *tags: str) -> Tag | None:
    for tag in tags:
        for el in page.tags(tag):
            if text_of(el):
                return el
    return None


def strip_site_name(title: str | None, *site_names: str | None) -> str | None:
    """'Refworld | Mali' -> 'Mali': drop title segments that only name the site."""
    if not title:
        return None
    names = {norm(n).casefold() for n in site_names if n}
    for separator in (" | ", " - ", " \u2013 ", " :: "):
        parts = [p for p in title.split(separator)]
        kept = [p for p in parts if norm(p).casefold() not in names]
        if len(parts) > 1 and kept and len(kept) < len(parts):
            return norm(separator.join(kept))
    return norm(title) or None
