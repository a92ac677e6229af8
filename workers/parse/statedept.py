"""State Department report pages (state.gov): eyebrow, headline, bureau line, tier line."""

from __future__ import annotations

from bs4 import Tag

from .base import Extract, report_blocks
from .dates import parse_date
from .facets import series_from
from .tree import Page, next_element, previous_element, text_of

_HOSTS = ("state.gov",)
_MAX_LINE = 150


class StateDeptParser:
    name = "statedept"

    def extract(self, page: Page, forced: bool) -> Extract | None:
        headline = next((h for h in page.tags("h1") if text_of(h)), None)
        eyebrow = _eyebrow(headline) if headline is not None else None
        on_site = any(page.host == h or page.host.endswith("." + h) for h in _HOSTS)
        # Elsewhere the layout must show itself: a report name linked right above the headline.
        if not (forced or on_site or (eyebrow is not None and series_from(text_of(eyebrow)))):
            return None
        if headline is None:
            return None if not forced else Extract(blocks=report_blocks(page))
        country = text_of(headline)
        report = text_of(eyebrow) if eyebrow is not None else None
        bureau = _bureau(headline)
        author = text_of(bureau) if bureau is not None else None
        page.remove([el for el in (eyebrow, headline, bureau) if el is not None])
        return Extract(
            title=f"{report}: {country}" if report else country,
            publisher=page.first_meta("og:site_name"),
            author=author,
            publication_date=parse_date(page.first_meta("article:published_time")),
            last_updated=parse_date(page.first_meta("article:modified_time", "og:updated_time")),
            country_names=[country],
            series_texts=[report] if report else [],
            blocks=report_blocks(page),
        )


def _eyebrow(headline: Tag) -> Tag | None:
    """The short link just above the headline that names the report."""
    above = previous_element(headline)
    if above is None or len(text_of(above)) > _MAX_LINE:
        return None
    if above.name == "a" or above.find("a") is not None:
        return above
    return None


def _bureau(headline: Tag) -> Tag | None:
    """The issuing office on the line under the headline: a short name, not a date or sentence."""
    below = next_element(headline)
    # More than one paragraph below the headline is the report itself, not a byline.
    if below is None or len(below.find_all("p", limit=2)) > 1:
        return None
    text = text_of(below)
    if not text or len(text) > _MAX_LINE or text.endswith(".") or parse_date(text):
        return None
    return below
