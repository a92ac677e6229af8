"""Refworld (UNHCR's mirror of country reports), legacy and current designs.

Both designs print the same metadata, once as label/value table rows and once as
a definition list; labels.py reads either, so one parser covers both.
"""

from __future__ import annotations

import re

from bs4 import Tag

from .base import Extract, first_heading, report_blocks, strip_site_name
from .dates import parse_date
from .labels import Labelled, find_labelled
from .tree import Page, text_of

_LABELS = {
    "publisher": "publisher", "author": "author", "publication date": "publication_date",
    "date of publication": "publication_date", "published": "publication_date",
    "cite as": "citation", "citation": "citation", "disclaimer": "disclaimer",
    "countries": "countries", "country": "countries", "topics": "topics", "topic": "topics",
    "last updated": "last_updated", "document type": "document_type", "type": "document_type",
}
_LAST_UPDATED = re.compile(r"last\s+updated\s*:?\s*(?P<when>.+)", re.I)
_LAST_UPDATED_WORDS = re.compile(r"last\s+upd", re.I)
_HOSTS = ("refworld.org",)


class RefworldParser:
    name = "refworld"

    def extract(self, page: Page, forced: bool) -> Extract | None:
        labelled = find_labelled(page, _LABELS)
        on_site = any(page.host == h or page.host.endswith("." + h) for h in _HOSTS)
        # Off refworld.org (mirrors, test servers) the layout must show itself: a citation
        # line next to publisher or date rows is what no other site we read prints.
        if not (forced or on_site or ("citation" in labelled and len(labelled) >= 3)):
            return None
        last_updated = labelled["last_updated"].value if "last_updated" in labelled else None
        if last_updated is None and (line := self._last_updated_line(page)) is not None:
            last_updated = text_of(line)
            page.remove([line])
        heading = first_heading(page, "h1", "h2")
        title = text_of(heading) or strip_site_name(
            text_of(page.first("title")), "Refworld", page.first_meta("og:site_name"))
        countries = labelled["countries"].values if "countries" in labelled else []
        page.remove([el for pair in labelled.values() for el in pair.elements])
        # The title often names the country after a dash: "... Report - Mali".
        title_country = title.rsplit(" - ", 1)[-1] if title and " - " in title else None
        return Extract(
            title=title or None,
            publisher=_value(labelled, "publisher"),
            author=_value(labelled, "author"),
            publication_date=parse_date(_value(labelled, "publication_date")),
            last_updated=parse_date(last_updated),
            citation=_value(labelled, "citation"),
            country_names=[*([title_country] if title_country else []), *countries],
            series_texts=[title] if title else [],
            blocks=report_blocks(page),
        )

    @staticmethod
    def _last_updated_line(page: Page) -> Tag | None:
        """The smallest element whose own text is the 'Last Updated: <date>' line."""
        for text in page.strings(_LAST_UPDATED_WORDS):
            holder = text.parent
            if holder is not None and _LAST_UPDATED.match(
                    line := text_of(holder)) and len(line) < 120:
                return holder
        return None


def _value(labelled: dict[str, Labelled], field: str) -> str | None:
    return labelled[field].value if field in labelled else None
