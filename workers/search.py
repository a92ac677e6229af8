"""Faceted full-text search over the `reports` alias.

Query text uses the syntax people know from search boxes (quoted phrases,
AND/OR/NOT, field:value); an empty query matches everything. Facet counts
are computed with every other facet's filter applied, as users expect.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from elasticsearch import Elasticsearch
from elasticsearch.dsl import FacetedSearch, Q, TermsFacet

SEARCH_FIELDS = ["title^3", "summary^2", "body", "sections.text", "country.name^2"]
HIGHLIGHT_FIELDS = ("title", "summary", "body", "sections.text")
SORTS = {
    "relevance": ["_score", {"publication_date": {"order": "desc", "missing": "_last"}}],
    "date": [{"publication_date": {"order": "desc", "missing": "_last"}}, "_score"],
    "oldest": [{"publication_date": {"order": "asc", "missing": "_last"}}, "_score"],
    "tier": [{"tier_rank": {"order": "desc", "missing": "_last"}}, "_score"],
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


class ReportSearch(FacetedSearch):
    fields = SEARCH_FIELDS
    facets = {
        "tier": TermsFacet(field="tier", size=10),
        "country": TermsFacet(field="country.name", size=250),
        "country_code": TermsFacet(field="country.iso2", size=250),
        "region": TermsFacet(field="country.region", size=10),
        "year": TermsFacet(field="report_year", size=100, order={"_key": "desc"}),
        "publisher": TermsFacet(field="publisher", size=20),
        "role": TermsFacet(field="trafficking_roles", size=5),
        "exploitation": TermsFacet(field="exploitation_types", size=10),
        "victims": TermsFacet(field="victim_groups", size=5),
    }

    def __init__(self, es: Elasticsearch, index: str, query: str, filters: Filters, sort: str):
        self._es = es
        self.index = index
        self._range = (filters.year_from, filters.year_to)
        chosen = {
            "tier": filters.tier,
            "year": filters.year,
            "publisher": filters.publisher,
            "role": filters.role,
            "exploitation": filters.exploitation,
        }
        # Two-letter country filters are ISO codes; anything longer is a name.
        chosen["country_code"] = [c.upper() for c in filters.country if len(c) == 2]
        chosen["country"] = [c for c in filters.country if len(c) != 2]
        super().__init__(query, {k: v for k, v in chosen.items() if v}, sort=SORTS[sort])

    def search(self):
        search = super().search().using(self._es)
        low, high = self._range
        if low is not None or high is not None:
            bounds = {k: v for k, v in (("gte", low), ("lte", high)) if v is not None}
            search = search.filter("range", report_year=bounds)
        return search

    def query(self, search, query):
        if not query.strip():
            return search
        return search.query(Q(
            "query_string", query=query, fields=self.fields, default_operator="AND", lenient=True,
        ))

    def highlight(self, search):
        return search.highlight(*HIGHLIGHT_FIELDS, fragment_size=160, number_of_fragments=2)


def run_search(
    es: Elasticsearch, index: str, query: str = "", filters: Filters | None = None, *,
    page: int = 1, per_page: int = 10, sort: str = "relevance",
) -> dict:
    """Return the `--json` contract: total, hits (fields + score + highlight), facets."""
    faceted = ReportSearch(es, index, query, filters or Filters(), sort)
    start = (page - 1) * per_page
    response = faceted[start:start + per_page].execute()
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
