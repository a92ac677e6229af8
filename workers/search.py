"""Faceted full-text search over the `reports` alias.

Query text uses the syntax people know from search boxes (quoted phrases,
AND/OR/NOT, field:value); an empty query matches everything, and text that
is not valid query syntax (an unclosed quote) is searched as plain words
instead of failing.

Facet counts follow FacetedSearch's post_filter semantics: each facet is
counted with every *other* filter applied, so a facet's own selection does
not narrow its own counts (choosing Tier 3 still shows how many Tier 2
reports there are). The country filter and the `--from/--to` year range
belong to the country and year facets respectively, exactly like a list of
countries or years would.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from elasticsearch import BadRequestError, Elasticsearch
from elasticsearch.dsl import FacetedSearch, Q, TermsFacet
from elasticsearch.dsl.query import MatchAll, Query

from workers.parse.countries import lookup

SEARCH_FIELDS = ["title^3", "summary^2", "body", "sections.text", "country.name^2"]
HIGHLIGHT_FIELDS = ("title", "summary", "body", "sections.text")
# `id` breaks ties last, so paging through equal scores or dates never repeats or skips a hit.
_TIEBREAK = {"id": {"order": "asc"}}
SORTS = {
    "relevance": ["_score", {"publication_date": {"order": "desc", "missing": "_last"}}, _TIEBREAK],
    "date": [{"publication_date": {"order": "desc", "missing": "_last"}}, "_score", _TIEBREAK],
    "oldest": [{"publication_date": {"order": "asc", "missing": "_last"}}, "_score", _TIEBREAK],
    "tier": [{"tier_rank": {"order": "desc", "missing": "_last"}}, "_score", _TIEBREAK],
}


@dataclass
class Filters:
    country: list[str] = field(default_factory=list)
    tier: list[str] = field(default_factory=list)
    year: list[int] = field(default_factory=list)
    year_from: int | None = None
    year_to: int | None = None
    publisher: list[str] = field(default_factory=list)
    role: list[str] = field(default_factory=list)
    exploitation: list[str] = field(default_factory=list)


class CountryFacet(TermsFacet):
    """Counts by country name; filters by ISO code or by any spelling of a name.

    "MM", "mm", "Myanmar", "Burma" and "myanmar" all select the same reports;
    a name the country table does not know is matched against the stored name,
    ignoring case.
    """

    def add_filter(self, filter_values):
        codes, names = set(), set()
        for value in (str(v).strip() for v in filter_values):
            if not value:
                continue
            country = lookup(value)  # names and aliases ("Burma", "UK"); never codes
            if country is not None:
                codes.add(country.iso2)
            elif len(value) == 2:
                codes.add(value.upper())
            else:
                names.add(value)
        should = [Q("terms", **{"country.iso2": sorted(codes)})] if codes else []
        should += [
            Q("term", **{"country.name": {"value": name, "case_insensitive": True}})
            for name in sorted(names)
        ]
        if not should:
            return None
        return should[0] if len(should) == 1 else Q("bool", should=should, minimum_should_match=1)


# Facets counting the same dimension: a country filter must not narrow either of them.
_DIMENSION = {"country_code": "country"}


def _dimension(facet: str) -> str:
    return _DIMENSION.get(facet, facet)


class ReportSearch(FacetedSearch):
    fields = SEARCH_FIELDS
    facets = {
        "tier": TermsFacet(field="tier", size=10),
        "country": CountryFacet(field="country.name", size=250),
        "country_code": TermsFacet(field="country.iso2", size=250),
        "region": TermsFacet(field="country.region", size=10),
        "year": TermsFacet(field="report_year", size=100, order={"_key": "desc"}),
        "publisher": TermsFacet(field="publisher", size=20),
        "role": TermsFacet(field="trafficking_roles", size=5),
        "exploitation": TermsFacet(field="exploitation_types", size=10),
        "victims": TermsFacet(field="victim_groups", size=5),
    }

    def __init__(
        self, es: Elasticsearch, index: str, query: str, filters: Filters, sort: str, *,
        strict_syntax: bool = True,
    ):
        if sort not in SORTS:
            raise ValueError(f"unknown sort {sort!r}; one of {', '.join(SORTS)}")
        self._es = es
        self.index = index
        self._range = (filters.year_from, filters.year_to)
        self._strict_syntax = strict_syntax
        chosen = {
            "tier": filters.tier,
            "country": filters.country,
            "year": filters.year,
            "publisher": filters.publisher,
            "role": filters.role,
            "exploitation": filters.exploitation,
        }
        super().__init__(query, {k: list(v) for k, v in chosen.items() if v}, sort=SORTS[sort])

    def build_search(self):
        # The year range is part of the year facet's filter (a post_filter like every
        # other facet filter), so `--from 2018 --to 2019` equals `--year 2018 --year 2019`.
        low, high = self._range
        if low is not None or high is not None:
            bounds = {k: v for k, v in (("gte", low), ("lte", high)) if v is not None}
            span = Q("range", report_year=bounds)
            self._filters["year"] = self._filters["year"] & span if "year" in self._filters else span
        return super().build_search()

    def search(self):
        # Pages that vanished from their site stay out of results even where flagged, not deleted.
        search = super().search().using(self._es).extra(track_total_hits=True)
        return search.exclude("term", gone=True)

    def query(self, search, query):
        if not query or not query.strip():
            return search
        if self._strict_syntax:
            return search.query(Q(
                "query_string", query=query, fields=self.fields, default_operator="AND", lenient=True,
            ))
        return search.query(Q(
            "simple_query_string", query=query, fields=self.fields, default_operator="AND",
            lenient=True,
        ))

    def aggregate(self, search):
        """Count each facet under every filter but those of its own dimension."""
        for name, facet in self.facets.items():
            agg_filter: Query = MatchAll()
            for other, query in self._filters.items():
                if _dimension(other) != _dimension(name):
                    agg_filter &= query
            search.aggs.bucket("_filter_" + name, "filter", filter=agg_filter).bucket(
                name, facet.get_aggregation()
            )

    def highlight(self, search):
        return search.highlight(*HIGHLIGHT_FIELDS, fragment_size=160, number_of_fragments=2)


def _is_query_syntax_error(exc: BadRequestError) -> bool:
    return "Failed to parse query" in str(exc) or "Failed to parse query" in str(exc.body)


def run_search(
    es: Elasticsearch, index: str, query: str = "", filters: Filters | None = None, *,
    page: int = 1, per_page: int = 10, sort: str = "relevance",
) -> dict:
    """Return the `--json` contract: total, hits (fields + score + highlight), facets."""
    if page < 1 or per_page < 1:
        raise ValueError("page and per_page must be at least 1")
    filters = filters or Filters()
    start = (page - 1) * per_page

    def execute(strict_syntax: bool):
        faceted = ReportSearch(es, index, query, filters, sort, strict_syntax=strict_syntax)
        return faceted[start:start + per_page].execute()

    try:
        response = execute(strict_syntax=True)
    except BadRequestError as exc:
        if not _is_query_syntax_error(exc):
            raise
        # Not valid query syntax (say, an unclosed quote): search the words as typed.
        response = execute(strict_syntax=False)
    hits = []
    for hit in response:
        doc = hit.to_dict()
        doc["score"] = hit.meta.score
        doc["highlight"] = hit.meta.highlight.to_dict() if "highlight" in hit.meta else {}
        hits.append(doc)
    facets = {
        name: {str(key): count for key, count, _selected in buckets}
        for name, buckets in response.facets.to_dict().items()
    }
    return {"total": response.hits.total.value, "hits": hits, "facets": facets}
