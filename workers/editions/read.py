"""The editions in the reports index: one per country, series and year, its copies collapsed.

Read with a composite aggregation over (country, series, year), a page of buckets at a time,
each bucket carrying its copies' few small fields (top_hits): no request holds more than
`PAGE` editions, however large the index. Documents without a country, series or year are
not editions of anything and are left out, as are pages gone from their site.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from workers.documents import Country, ReportDocument
from workers.editions.moves import tier_move
from workers.index.indices import IndexNames
from workers.index.revisions import revisions_of
from workers.search.copies import MAX_COPIES, best_first
from workers.urls import doc_id

if TYPE_CHECKING:
    from workers.es_read import Searcher

# Buckets per request; each carries up to MAX_COPIES copies of a few fields.
PAGE = 200
COPY_FIELDS = ["id", "url", "source", "publisher", "fetched_at", "tier", "tier_rank", "title", "country",
               "report_key", "report_series", "report_year", "page_start", "container_url"]


@dataclass
class Edition:
    """One report (country, series, year) as its best copy gives it, and what its copies say."""

    country: Country
    series: str
    year: int
    best: ReportDocument
    copies: list[ReportDocument]
    move: str | None = None
    revisions: list[str] = field(default_factory=list)

    @property
    def tier(self) -> str | None:
        """The best copy's tier, else the first copy's that states one."""
        return next((c.tier for c in self.copies if c.tier), None)

    @property
    def tier_rank(self) -> float | None:
        return next((c.tier_rank for c in self.copies if c.tier), None)

    @property
    def conflict(self) -> bool:
        """Copies that state a tier disagree on it."""
        return len({c.tier for c in self.copies if c.tier}) > 1

    @property
    def url(self) -> str:
        return self.best.url

    def row(self) -> dict:
        """The `history --json` contract."""
        return {"year": self.year, "series": self.series, "tier": self.tier, "move": self.move, "url": self.url,
                "copies": len(self.copies), "conflict": self.conflict,
                **({"revisions": self.revisions} if self.revisions else {})}


def country_filter(country: str, *, table: bool = False) -> dict:
    """ISO 3166 alpha-2 or alpha-3 code, or a name: as stored (any case), or with `table` in any
    spelling the parsers' country table knows ("Burma" for Myanmar). The table is asked only when
    the stored names do not match: loading it (pycountry and its data) costs 0.09 s."""
    value = country.strip()
    if len(value) in (2, 3) and value.isalpha():
        field_name = "country.iso2" if len(value) == 2 else "country.iso3"
        return {"term": {field_name: value.upper()}}
    if not table:
        return {"term": {"country.name": {"value": value, "case_insensitive": True}}}
    from workers.parse.countries import lookup

    found = lookup(value)
    if found is None:
        raise LookupError(f"unknown country {country!r}: give a name or an ISO code (MM, MMR)")
    return {"term": {"country.iso2": found.iso2}}


def country_editions(es: Searcher, index: str, country: str, series: str | None = None) -> list[Edition]:
    """One country's editions, by code or by name (as stored first, then through the country table)."""
    found = list(editions(es, index, edition_query(country=country, series=series)))
    if not found and not (len(country.strip()) in (2, 3) and country.strip().isalpha()):
        found = list(editions(es, index, edition_query(country=country, series=series, table=True)))
    return found


def edition_query(*, country: str | None = None, series: str | None = None, year_from: int | None = None,
                  year_to: int | None = None, region: str | None = None, table: bool = False) -> dict:
    filters: list[dict] = [{"exists": {"field": f}} for f in ("country.iso2", "report_series", "report_year")]
    if country:
        filters.append(country_filter(country, table=table))
    if series:
        filters.append({"term": {"report_series": series}})
    if region:
        filters.append({"term": {"country.region": region}})
    if year_from is not None or year_to is not None:
        bounds = {k: v for k, v in (("gte", year_from), ("lte", year_to)) if v is not None}
        filters.append({"range": {"report_year": bounds}})
    return {"bool": {"filter": filters, "must_not": [{"term": {"gone": True}}]}}


def editions(es: Searcher, index: str, query: dict, page: int = PAGE) -> Iterator[Edition]:
    """Every edition matching `query`, ordered by country code, series and year."""
    sources = [{"country": {"terms": {"field": "country.iso2"}}},
               {"series": {"terms": {"field": "report_series"}}},
               {"year": {"terms": {"field": "report_year"}}}]
    after = None
    while True:
        composite: dict = {"size": page, "sources": sources, **({"after": after} if after else {})}
        aggs = {"editions": {"composite": composite, "aggs": {"copies": {"top_hits": {
            "size": MAX_COPIES, "_source": COPY_FIELDS, "sort": [{"fetched_at": {"order": "desc"}}]}}}}}
        response = es.search(index=index, query=query, size=0, aggs=aggs, track_total_hits=False)
        result = response["aggregations"]["editions"]
        for bucket in result["buckets"]:
            copies = best_first(ReportDocument.from_hit(hit) for hit in bucket["copies"]["hits"]["hits"])
            best = copies[0]
            # Every copy has a country: the query asks for one.
            yield Edition(best.country, bucket["key"]["series"], int(bucket["key"]["year"]), best, copies)
        after = result.get("after_key")
        if len(result["buckets"]) < page or not after:
            return


def with_moves(found: list[Edition]) -> list[Edition]:
    """Each edition's move against the previous one of its country and series (`found` in
    country, series, year order, as `editions` gives them)."""
    previous: dict[tuple[str, str], Edition] = {}
    for edition in found:
        key = (edition.country.iso2, edition.series)
        before = previous.get(key)
        edition.move = tier_move(before.tier_rank if before else None, edition.tier_rank, first=before is None)
        previous[key] = edition
    return found


def page_key(copy: ReportDocument) -> str:
    """The ID of the raw page a copy was read from (a PDF chapter's is the whole PDF's)."""
    return doc_id(copy.container_url or copy.url)


def history(es: Searcher, names: IndexNames, country: str, series: str | None = None,
            kept: int = 0) -> list[Edition]:
    """One country's editions, oldest first (by series when there are several), with moves, and
    the fetch dates of the best copy's earlier versions (up to `kept`, workers/index/revisions.py)."""
    found = with_moves(country_editions(es, names.reports, country, series))
    if kept:
        versions = revisions_of(es, names.raw_pages, [page_key(e.best) for e in found], kept)
        for edition in found:
            edition.revisions = [v["fetched_at"] for v in versions.get(page_key(edition.best), [])]
    return found
