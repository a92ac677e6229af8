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
"""

from __future__ import annotations

from dataclasses import dataclass, field

from elasticsearch import BadRequestError, Elasticsearch
from elasticsearch.dsl import A, FacetedSearch, Q, TermsFacet
from elasticsearch.dsl.query import MatchAll, Query

from workers.search.copies import MAX_COPIES, best_first, listed
from workers.search.paging import DEFAULT_WINDOW, keys_in_order

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
        from workers.parse.countries import lookup  # the parsers' country table: only to filter by country

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
        strict_syntax: bool = True, all_copies: bool = False, only: list[str] | None = None,
        window: int = DEFAULT_WINDOW,
    ):
        if sort not in SORTS:
            raise ValueError(f"unknown sort {sort!r}; one of {', '.join(SORTS)}")
        self._es = es
        self.index = index
        self._range = (filters.year_from, filters.year_to)
        self._strict_syntax = strict_syntax
        self._collapse = not all_copies
        self._only = only
        self._window = window
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

    @property
    def group_field(self) -> str:
        """What one hit stands for: a report (its key), or one copy (its id)."""
        return REPORT_KEY if self._collapse else "id"

    def search(self):
        # Pages that vanished from their site stay out of results even where flagged, not deleted.
        search = super().search().using(self._es)
        if self._collapse:
            search = search.extra(collapse={"field": REPORT_KEY, "inner_hits": {
                # Inner hits are bounded by the result window too.
                "name": "copies", "size": min(MAX_COPIES, self._window), "sort": [{"fetched_at": {"order": "desc"}}],
                "highlight": {"fields": {f: {} for f in HIGHLIGHT_FIELDS}, **HIGHLIGHT_OPTIONS},
            }})
        return search.exclude("term", gone=True)

    def request(self) -> dict:
        """The search body as it is sent (query, post_filter, sort), for the deep-page walk."""
        return self._s.to_dict()

    def filter(self, search):
        search = super().filter(search)
        if self._only is not None:
            # Hits only (a post_filter): the facets still count the whole result.
            search = search.post_filter("terms", **{self.group_field: self._only})
        return search

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

    def _counted(self, agg):
        """Reports are distinct keys; copies are documents (doc_count needs no sub-aggregation)."""
        if self._collapse:
            agg.metric("reports", "cardinality", field=REPORT_KEY, precision_threshold=_PRECISION)
        return agg

    def aggregate(self, search):
        """Count each facet under every filter but those of its own dimension; count the hits."""
        for name, facet in self.facets.items():
            agg_filter: Query = MatchAll()
            for other, query in self._filters.items():
                if _dimension(other) != _dimension(name):
                    agg_filter &= query
            terms = facet.get_aggregation()
            params = terms.to_dict()["terms"]
            if self._collapse and "order" not in params:  # most reports first, not most copies
                terms = A("terms", **params, order=[{"reports": "desc"}, {"_key": "asc"}])
            self._counted(search.aggs.bucket("_filter_" + name, "filter", filter=agg_filter).bucket(name, terms))
        every: Query = MatchAll()
        for query in self._filters.values():
            every &= query
        self._counted(search.aggs.bucket("_total", "filter", filter=every))

    def highlight(self, search):
        if self._collapse:  # highlighted in each copy (inner hits), where the best copy is chosen
            return search
        return search.highlight(*HIGHLIGHT_FIELDS, **HIGHLIGHT_OPTIONS)

    def counts(self, response) -> tuple[int, dict[str, dict[str, int]]]:
        """The total and every facet's counts, in reports or in copies."""
        aggs = response.aggregations.to_dict()

        def count(bucket: dict) -> int:
            return bucket["reports"]["value"] if self._collapse else bucket["doc_count"]

        facets = {name: {str(b["key"]): count(b) for b in aggs["_filter_" + name][name]["buckets"]}
                  for name in self.facets}
        return count(aggs["_total"]), facets


def _is_query_syntax_error(exc: BadRequestError) -> bool:
    return "Failed to parse query" in str(exc) or "Failed to parse query" in str(exc.body)


def run_search(
    es: Elasticsearch, index: str, query: str = "", filters: Filters | None = None, *,
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

    def execute(strict_syntax: bool):
        def faceted(only: list[str] | None = None) -> ReportSearch:
            return ReportSearch(es, index, query, filters, sort, strict_syntax=strict_syntax,
                                all_copies=all_copies, only=only, window=window)

        if start + per_page <= window:
            chosen = faceted()
            return chosen, chosen[start:start + per_page].execute()
        walker = faceted()
        keys = keys_in_order(es, index, walker.request(), walker.group_field,
                             start + per_page, window)
        chosen = faceted(only=keys[start:])
        return chosen, chosen[0:per_page].execute()

    try:
        faceted, response = execute(strict_syntax=True)
    except BadRequestError as exc:
        if not _is_query_syntax_error(exc):
            raise
        # Not valid query syntax (say, an unclosed quote): search the words as typed.
        faceted, response = execute(strict_syntax=False)
    hits = [_hit(hit, collapsed=not all_copies) for hit in response]
    total, facets = faceted.counts(response)
    return {"total": total, "hits": hits, "facets": facets}


def search_body(es: Elasticsearch, index: str, query: str = "", filters: Filters | None = None, *,
                all_copies: bool = False) -> dict:
    """The query and post_filter `run_search` sends, for walking every hit (an export): the query
    as typed, or its words when it is not valid query syntax, as `run_search` decides."""
    def body(strict_syntax: bool) -> dict:
        sent = ReportSearch(es, index, query, filters or Filters(), "relevance", strict_syntax=strict_syntax,
                            all_copies=all_copies).request()
        return {key: sent[key] for key in ("query", "post_filter") if key in sent}

    strict = body(True)
    try:
        es.count(index=index, query=strict.get("query"))
    except BadRequestError as exc:
        if not _is_query_syntax_error(exc):
            raise
        return body(False)
    return strict


def _hit(hit, collapsed: bool) -> dict:
    """One hit of the contract; collapsed, it is the report's best copy with the others under it."""
    if not collapsed:
        doc = hit.to_dict()
        doc["highlight"] = hit.meta.highlight.to_dict() if "highlight" in hit.meta else {}
        doc["copies"] = []
    else:
        copies = [{**inner.to_dict(), "highlight": inner.meta.highlight.to_dict() if "highlight" in inner.meta
                   else {}} for inner in hit.meta.inner_hits["copies"]]
        best, *others = best_first(copies)
        doc = {**best, "copies": [listed(copy) for copy in others]}
    doc["score"] = hit.meta.score  # collapsed: the best-matching copy's, which placed the report
    return doc
