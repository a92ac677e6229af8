"""Faceted full-text search over the `reports` alias (re-exported by `workers.search`).

Query text uses the syntax people know from search boxes (quoted phrases,
AND/OR/NOT, field:value); an empty query matches everything, and text that
is not valid query syntax (an unclosed quote) is searched as plain words
instead of failing.

One hit per report: copies of a report (the same `report_key`, set in workers/records.py;
workers/search/copies.py) are collapsed into one hit, the best copy first, the others listed under
it as `copies`; `all_copies=True` shows every copy as its own hit. Facet counts and the total
count what is shown: reports by default (distinct report keys), copies with all_copies.

Facet counts follow FacetedSearch's post_filter semantics: each facet is
counted with every *other* filter applied, so a facet's own selection does
not narrow its own counts (choosing Tier 3 still shows how many Tier 2
reports there are). The country filter and the `--from/--to` year range
belong to the country and year facets respectively, exactly like a list of
countries or years would.

The request is a plain dict, as elasticsearch.dsl's FacetedSearch built it (checked against
elasticsearch 9.5), without loading the DSL: it cost `search` 0.1 s of start-up. It is sent by
either client (workers/es_read.py), errors told apart by status.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from workers.documents import ReportDocument
from workers.es_read import status_of
from workers.search.copies import MAX_COPIES, best_first, listed
from workers.search.paging import DEFAULT_WINDOW, keys_in_order

if TYPE_CHECKING:
    from workers.es_read import Searcher

SEARCH_FIELDS = ["title^3", "summary^2", "body", "sections.text", "country.name^2"]
HIGHLIGHT_FIELDS = ("title", "summary", "body", "sections.text")
# -1: highlight up to the index's own index.highlight.max_analyzed_offset and no further, so
# one huge body (a 400-page PDF's text) is highlighted in part instead of failing the search.
HIGHLIGHT_OPTIONS = {"fragment_size": 160, "number_of_fragments": 2, "max_analyzed_offset": -1}
REPORT_KEY = "report_key"
# Distinct report keys are counted exactly up to this many (Elasticsearch's maximum).
_PRECISION = 40000
# `id` breaks ties last, so paging through equal scores or dates never repeats or skips a hit.
_TIEBREAK = {"id": {"order": "asc"}}
SORTS = {
    "relevance": ["_score", {"publication_date": {"order": "desc", "missing": "_last"}}, _TIEBREAK],
    "date": [{"publication_date": {"order": "desc", "missing": "_last"}}, "_score", _TIEBREAK],
    "oldest": [{"publication_date": {"order": "asc", "missing": "_last"}}, "_score", _TIEBREAK],
    "tier": [{"tier_rank": {"order": "desc", "missing": "_last"}}, "_score", _TIEBREAK],
}
_NOT_GONE = {"bool": {"must_not": [{"term": {"gone": True}}]}}


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


@dataclass(frozen=True)
class Facet:
    """Counts by one keyword or numeric field; a filter on it selects any of the values chosen."""

    field: str
    size: int
    order: dict | None = None  # None: most first

    def filter(self, values: list) -> dict:
        return {"terms": {self.field: values}}


class CountryFacet(Facet):
    """Counts by country name; filters by ISO code or by any spelling of a name.

    "MM", "mm", "Myanmar", "Burma" and "myanmar" all select the same reports;
    a name the country table does not know is matched against the stored name,
    ignoring case.
    """

    def filter(self, values: list) -> dict:
        from workers.parse.countries import lookup  # the parsers' country table: only to filter by country

        codes, names = set(), set()
        for value in (str(v).strip() for v in values):
            if not value:
                continue
            country = lookup(value)  # names and aliases ("Burma", "UK"); never codes
            if country is not None:
                codes.add(country.iso2)
            elif len(value) == 2:
                codes.add(value.upper())
            else:
                names.add(value)
        should = [{"terms": {"country.iso2": sorted(codes)}}] if codes else []
        should += [{"term": {"country.name": {"value": name, "case_insensitive": True}}} for name in sorted(names)]
        return should[0] if len(should) == 1 else {"bool": {"should": should, "minimum_should_match": 1}}


def _all(queries: list[dict]) -> dict:
    """Every one of `queries` (in filter context: none of them scores)."""
    if not queries:
        return {"match_all": {}}
    return queries[0] if len(queries) == 1 else {"bool": {"filter": queries}}


# Facets counting the same dimension: a country filter must not narrow either of them.
_DIMENSION = {"country_code": "country"}


def _dimension(facet: str) -> str:
    return _DIMENSION.get(facet, facet)


class ReportSearch:
    """The search request for a query, filters and sort: hits, facet counts and the total."""

    facets = {
        "tier": Facet("tier", 10),
        "country": CountryFacet("country.name", 250),
        "country_code": Facet("country.iso2", 250),
        "region": Facet("country.region", 10),
        "year": Facet("report_year", 100, order={"_key": "desc"}),
        "publisher": Facet("publisher", 20),
        "role": Facet("trafficking_roles", 5),
        "exploitation": Facet("exploitation_types", 10),
        "victims": Facet("victim_groups", 5),
    }

    def __init__(
        self, query: str, filters: Filters, sort: str, *, strict_syntax: bool = True, all_copies: bool = False,
        only: list[str] | None = None, window: int = DEFAULT_WINDOW,
    ):
        if sort not in SORTS:
            raise ValueError(f"unknown sort {sort!r}; one of {', '.join(SORTS)}")
        self._query, self._sort = query, SORTS[sort]
        self._strict_syntax = strict_syntax
        self._collapse = not all_copies
        self._only = only
        self._window = window
        chosen = {"tier": filters.tier, "country": filters.country, "year": filters.year,
                  "publisher": filters.publisher, "role": filters.role, "exploitation": filters.exploitation}
        # facet -> the queries of its filter
        self._filters: dict[str, list[dict]] = {
            name: [self.facets[name].filter(list(values))] for name, values in chosen.items() if values}
        # The year range is part of the year facet's filter (a post_filter like every other facet
        # filter), so `--from 2018 --to 2019` equals `--year 2018 --year 2019`.
        low, high = filters.year_from, filters.year_to
        if low is not None or high is not None:
            bounds = {k: v for k, v in (("gte", low), ("lte", high)) if v is not None}
            self._filters.setdefault("year", []).append({"range": {"report_year": bounds}})

    @property
    def group_field(self) -> str:
        """What one hit stands for: a report (its key), or one copy (its id)."""
        return REPORT_KEY if self._collapse else "id"

    def _text_query(self) -> dict:
        # Pages that vanished from their site stay out of results even where flagged, not deleted.
        query: dict = {"filter": [_NOT_GONE]}
        if self._query and self._query.strip():
            kind = "query_string" if self._strict_syntax else "simple_query_string"
            query["must"] = [{kind: {"query": self._query, "fields": SEARCH_FIELDS, "default_operator": "AND",
                                     "lenient": True}}]
        return {"bool": query}

    def request(self) -> dict:
        """The search body without its page and counts (query, post_filter, sort), for the deep-page walk."""
        body: dict = {"query": self._text_query(), "sort": self._sort}
        chosen = [query for queries in self._filters.values() for query in queries]
        if self._only is not None:
            # Hits only (a post_filter): the facets still count the whole result.
            chosen.append({"terms": {self.group_field: self._only}})
        if chosen:
            body["post_filter"] = _all(chosen)
        return body

    def page(self, start: int, size: int) -> dict:
        """The whole request for hits start..start+size: hits, their copies or highlights, counts."""
        body = {**self.request(), "from": start, "size": size, "aggs": self._aggregations()}
        if self._collapse:
            body["collapse"] = {"field": REPORT_KEY, "inner_hits": {
                # Inner hits are bounded by the result window too; highlighted in each copy, where
                # the best copy is chosen.
                "name": "copies", "size": min(MAX_COPIES, self._window), "sort": [{"fetched_at": {"order": "desc"}}],
                "highlight": {"fields": {f: {} for f in HIGHLIGHT_FIELDS}, **HIGHLIGHT_OPTIONS},
            }}
        else:
            body["highlight"] = {"fields": {f: dict(HIGHLIGHT_OPTIONS) for f in HIGHLIGHT_FIELDS}}
        return body

    def _counted(self, agg: dict) -> dict:
        """Reports are distinct keys; copies are documents (doc_count needs no sub-aggregation)."""
        if self._collapse:
            agg["aggs"] = {"reports": {"cardinality": {"field": REPORT_KEY, "precision_threshold": _PRECISION}}}
        return agg

    def _aggregations(self) -> dict:
        """Count each facet under every filter but those of its own dimension; count the hits."""
        aggs = {}
        for name, facet in self.facets.items():
            others = [query for other, queries in self._filters.items() if _dimension(other) != _dimension(name)
                      for query in queries]
            terms: dict = {"field": facet.field, "size": facet.size}
            if facet.order is not None:
                terms["order"] = facet.order
            elif self._collapse:  # most reports first, not most copies
                terms["order"] = [{"reports": "desc"}, {"_key": "asc"}]
            aggs["_filter_" + name] = {"filter": _all(others), "aggs": {name: self._counted({"terms": terms})}}
        every = [query for queries in self._filters.values() for query in queries]
        aggs["_total"] = self._counted({"filter": _all(every)})
        return aggs

    def counts(self, response: dict) -> tuple[int, dict[str, dict[str, int]]]:
        """The total and every facet's counts, in reports or in copies."""
        aggs = response["aggregations"]

        def count(bucket: dict) -> int:
            return bucket["reports"]["value"] if self._collapse else bucket["doc_count"]

        facets = {name: {str(b["key"]): count(b) for b in aggs["_filter_" + name][name]["buckets"]}
                  for name in self.facets}
        return count(aggs["_total"]), facets


def _is_query_syntax_error(exc: Exception) -> bool:
    return status_of(exc) == 400 and ("Failed to parse query" in str(exc)
                                      or "Failed to parse query" in str(getattr(exc, "body", "")))


def run_search(
    es: Searcher, index: str, query: str = "", filters: Filters | None = None, *,
    page: int = 1, per_page: int = 10, sort: str = "relevance", all_copies: bool = False,
    window: int = DEFAULT_WINDOW,
) -> dict:
    """Return the `--json` contract: total, hits (fields + score + highlight + copies), facets.

    Pages within the first `window` hits (the index's max_result_window) are fetched with
    from/size; a page past it is found by walking the hits in order with search_after.
    """
    if page < 1 or per_page < 1:
        raise ValueError("page and per_page must be at least 1")
    filters = filters or Filters()
    start = (page - 1) * per_page

    def execute(strict_syntax: bool) -> tuple[ReportSearch, dict]:
        def faceted(only: list[str] | None = None) -> ReportSearch:
            return ReportSearch(query, filters, sort, strict_syntax=strict_syntax, all_copies=all_copies,
                                only=only, window=window)

        if start + per_page <= window:
            chosen = faceted()
            return chosen, es.search(index=index, **chosen.page(start, per_page))
        walker = faceted()
        keys = keys_in_order(es, index, walker.request(), walker.group_field, start + per_page, window)
        chosen = faceted(only=keys[start:])
        return chosen, es.search(index=index, **chosen.page(0, per_page))

    try:
        faceted, response = execute(strict_syntax=True)
    except Exception as exc:
        if not _is_query_syntax_error(exc):
            raise
        # Not valid query syntax (say, an unclosed quote): search the words as typed.
        faceted, response = execute(strict_syntax=False)
    hits = [_hit(hit, collapsed=not all_copies) for hit in response["hits"]["hits"]]
    total, facets = faceted.counts(response)
    return {"total": total, "hits": hits, "facets": facets}


def search_body(es: Searcher, index: str, query: str = "", filters: Filters | None = None, *,
                all_copies: bool = False) -> dict:
    """The query and post_filter `run_search` sends, for walking every hit (an export): the query
    as typed, or its words when it is not valid query syntax, as `run_search` decides."""
    def body(strict_syntax: bool) -> dict:
        sent = ReportSearch(query, filters or Filters(), "relevance", strict_syntax=strict_syntax,
                            all_copies=all_copies).request()
        return {key: sent[key] for key in ("query", "post_filter") if key in sent}

    strict = body(True)
    try:
        es.count(index=index, query=strict.get("query"))
    except Exception as exc:
        if not _is_query_syntax_error(exc):
            raise
        return body(False)
    return strict


def _with_highlight(hit: dict) -> dict:
    return {**hit["_source"], "highlight": hit.get("highlight", {})}


def _hit(hit: dict, collapsed: bool) -> dict:
    """One hit of the contract; collapsed, it is the report's best copy with the others under it."""
    if not collapsed:
        doc = {**_with_highlight(hit), "copies": []}
    else:
        inner = {copy["_id"]: copy for copy in hit["inner_hits"]["copies"]["hits"]["hits"]}
        best, *others = best_first(ReportDocument.from_hit(copy) for copy in inner.values())
        doc = {**_with_highlight(inner[best.id]), "copies": [listed(copy) for copy in others]}
    doc["score"] = hit["_score"]  # collapsed: the best-matching copy's, which placed the report
    return doc
