"""`diff COUNTRY YEAR_A YEAR_B`: two editions of one country's report, read and compared."""

from __future__ import annotations

from typing import TYPE_CHECKING

from workers.documents import ReportDocument
from workers.editions.diff import diff_documents
from workers.editions.moves import tier_move
from workers.editions.read import Edition, country_editions

if TYPE_CHECKING:
    from workers.es_read import Searcher

_TEXT_FIELDS = ["title", "body", "sections"]


class EditionNotFound(LookupError):
    """No such edition, or more than one series has it and none was named."""


def _pick(found: list[Edition], year: int, series: str | None) -> Edition:
    for_year = [e for e in found if e.year == year]
    if not for_year:
        have = sorted({e.year for e in found})
        raise EditionNotFound(f"no {year} edition" + (f" (editions: {', '.join(map(str, have))})" if have else ""))
    if len(for_year) > 1:
        raise EditionNotFound(f"{year} has editions in several series ({', '.join(e.series for e in for_year)}): "
                              "name one with --series")
    return for_year[0]


def _text(es: Searcher, index: str, edition: Edition) -> ReportDocument:
    return ReportDocument.from_hit(es.get(index=index, id=edition.best.id, source_includes=_TEXT_FIELDS))


def _side(edition: Edition) -> dict:
    return {"year": edition.year, "tier": edition.tier, "url": edition.url}


def compare(es: Searcher, index: str, country: str, year_a: int, year_b: int,
            series: str | None = None) -> dict:
    """The `diff --json` contract for the best copies of two editions."""
    # All of the country's editions (a few dozen at most), so a missing year can name those there are.
    found = country_editions(es, index, country, series)
    if series is None and len({e.series for e in found}) > 1:
        # Only series that have both years can be compared; one such series is the answer.
        both = [s for s in {e.series for e in found} if {e.year for e in found if e.series == s} >= {year_a, year_b}]
        if len(both) == 1:
            found = [e for e in found if e.series == both[0]]
    old, new = _pick(found, year_a, series), _pick(found, year_b, series)
    if old.series != new.series:
        raise EditionNotFound(f"{year_a} and {year_b} are in different series ({old.series}, {new.series}): "
                              "name one with --series")
    sections = diff_documents(_text(es, index, old), _text(es, index, new))
    return {"country": new.country.iso2, "series": new.series, "from": _side(old), "to": _side(new),
            "tier_move": tier_move(old.tier_rank, new.tier_rank), "sections": [s.as_dict() for s in sections]}
